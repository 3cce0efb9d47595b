"""Funder officer views (being written)."""

from webapp.funder import bp  # noqa: F401
