"""Bulk import of households from NDJSON or CSV, one member per row, streamed one KK at a time."""
