"""Immunisation: the versioned national schedule, the doses given per child, the computed status, FHIR exchange."""
