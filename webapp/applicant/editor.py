"""Applicant views: editor (being written)."""

from webapp.applicant import bp  # noqa: F401
