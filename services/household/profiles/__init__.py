"""Typed per-field household profile sections (DOMAIN.md §3)."""
