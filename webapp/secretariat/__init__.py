"""The call secretariat's console: calls and their settings, stages, eligibility, people and roles, the
dashboard and state diagram, the proposal list, mail, and the audit log."""

from flask import Blueprint

bp = Blueprint("secretariat", __name__, url_prefix="/secretariat")

from webapp.secretariat import (  # noqa: E402,F401  (registers the views)
    audit,
    calls,
    dashboard,
    eligibility,
    mail,
    people,
    proposals,
    reviews,
)
