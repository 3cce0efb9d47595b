"""Applicant views: documents (being written)."""

from webapp.applicant import bp  # noqa: F401
