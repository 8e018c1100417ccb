"""The household's access log: every read of the family's data, in this service and the others, and its report."""
