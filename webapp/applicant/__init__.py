"""The applicant's pages: their proposals, the consortium editor, documents, submission, full proposal,
rebuttal and decisions. One blueprint, split by area into modules."""

from flask import Blueprint

bp = Blueprint("applicant", __name__, url_prefix="/my")

from webapp.applicant import documents, editor, submission  # noqa: E402,F401  (registers the views)
