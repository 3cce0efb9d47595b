"""The funder officer's pages: their own partners in a call, sign-offs, budgets, exports."""

from flask import Blueprint

bp = Blueprint("funder", __name__, url_prefix="/funder")

from webapp.funder import views  # noqa: E402,F401  (registers the views)
