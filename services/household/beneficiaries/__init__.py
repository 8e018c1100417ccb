"""Programme beneficiary lists: the programmes this service has heard of, their uploaded lists, and the aid reports."""
