"""The reviewer's pages: answering the mailed invitation, the profile, the confidentiality and no-conflict
declaration, declaring conflicts, the assigned proposals, the review form, and the other reviews once
their own is submitted. Every proposal page asks the access policy first: a conflicted reviewer gets 403
"not available" and nothing of the proposal."""

from flask import Blueprint

bp = Blueprint("reviewer", __name__, url_prefix="/review")

from webapp.reviewer import views  # noqa: E402,F401  (registers the views)
