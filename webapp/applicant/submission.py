"""Applicant views: submission (being written)."""

from webapp.applicant import bp  # noqa: F401
