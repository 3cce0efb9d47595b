"""The funding decision and the decision letters: budgets, the scenario in rank order, what-if, the steering
committee's approval, each funder confirming its own partners, per-funder funding lists, and the letters
(template, previews, ZIP export with progress, sending)."""

from flask import Blueprint

bp = Blueprint("funding", __name__, url_prefix="/funding")

from webapp.funding import letters_views, views  # noqa: E402,F401  (registers the views)
