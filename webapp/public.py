"""Pages anyone may see: the list of calls and a call's public facts."""

from __future__ import annotations

from flask import Blueprint, abort, render_template
from sqlalchemy import select

from webapp.db import db
from workflow.clock import utcnow
from workflow.models import Call
from workflow.timefmt import format_time_left

bp = Blueprint("public", __name__)


@bp.route("/")
def index():
    calls = db().scalars(select(Call).order_by(Call.created_at.desc(), Call.id.desc())).all()
    return render_template("index.html", calls=calls, now=utcnow(), time_left=format_time_left)


@bp.route("/calls/<code>")
def call(code: str):
    call = db().scalar(select(Call).where(Call.code == code))
    if call is None:
        abort(404)
    return render_template("call.html", call=call, settings=call.settings, now=utcnow(), time_left=format_time_left)
