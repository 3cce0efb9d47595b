"""The audit log in the console: a call's events for its secretariat, every event for an administrator;
filters by actor, action, object and time (days in the call's zone), 50 per page; and a button that walks
the whole hash chain (workflow.audit.verify, as `jointcall audit verify` would) and shows the result."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for

from webapp.auth import actor
from webapp.db import db
from webapp.secretariat import bp
from webapp.secretariat.calls import ConfirmForm
from webapp.views import allow, deny_access, get_or_404
from workflow import console
from workflow.errors import AccessDenied
from workflow.models import Call


def _page(call: Call | None):
    f = console.AuditFilter.from_args(request.args)
    try:
        page = console.audit_log(db(), actor(), call, f)
    except AccessDenied as err:
        deny_access(err)
    actions, types = console.audit_vocabulary(db(), call)
    return render_template("secretariat/audit.html", call=call, p=page, f=f, actions=actions, types=types,
                           form=ConfirmForm(), zone=call.time_zone if call is not None else "UTC")


@bp.get("/calls/<int:call_id>/audit")
def audit_log(call_id: int):
    call = get_or_404(Call, call_id)
    allow("audit.view", call)
    return _page(call)


@bp.get("/audit")
def audit_all():
    if actor() is None:
        abort(401)
    allow("admin")
    return _page(None)


def _verify(call: Call | None, back: str):
    if not ConfirmForm().validate_on_submit():
        flash("The form expired; nothing was checked. Try again.", "danger")
        return redirect(back)
    try:
        result = console.verify_audit(db(), actor(), call)
    except AccessDenied as err:
        deny_access(err)
    flash(("Audit chain verified: " if result.ok else "Audit chain BROKEN: ") + str(result),
          "success" if result.ok else "danger")
    return redirect(back)


@bp.post("/calls/<int:call_id>/audit/verify")
def audit_verify(call_id: int):
    call = get_or_404(Call, call_id)
    allow("audit.view", call)
    return _verify(call, url_for(".audit_log", call_id=call.id))


@bp.post("/audit/verify")
def audit_verify_all():
    if actor() is None:
        abort(401)
    allow("admin")
    return _verify(None, url_for(".audit_all"))
