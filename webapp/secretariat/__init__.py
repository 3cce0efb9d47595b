"""The call secretariat's console: stages, eligibility, and (later) people, reviews, funding, mail, audit."""

from flask import Blueprint

bp = Blueprint("secretariat", __name__, url_prefix="/secretariat")

from webapp.secretariat import eligibility  # noqa: E402,F401  (registers the views)
