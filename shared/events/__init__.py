"""Events: the CloudEvents envelope, the topic names and the catalogue of event types."""
