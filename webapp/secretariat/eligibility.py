"""Secretariat eligibility views (being written)."""

from webapp.secretariat import bp  # noqa: F401
