"""Helpers every view uses: the actor, access checks that answer 403 with the policy's reason, and
turning domain refusals into a message next to the form."""

from __future__ import annotations

from flask import abort, flash

from webapp.auth import actor
from webapp.db import db
from workflow.access import can
from workflow.errors import AccessDenied, DomainError, InvalidInput


def allow(action: str, obj=None):
    """Abort with 403 and the policy's reason unless the current actor may do `action` on `obj`."""
    decision = can(actor(), action, obj)
    if not decision:
        if actor() is None:
            abort(401)
        abort(403, description=decision.reason)
    return decision


def page_arg() -> int:
    """The ?page= of a paginated list (workflow.paging.page_number)."""
    from flask import request

    from workflow.paging import page_number

    return page_number(request.args.get("page"))


def get_or_404(model, ident):
    try:
        ident = int(ident)
    except (TypeError, ValueError):
        abort(404)
    obj = db().get(model, ident)
    if obj is None:
        abort(404)
    return obj


def refuse(form, err: DomainError) -> None:
    """Show a domain refusal next to the field it concerns, or as a message at the top."""
    db().rollback()
    field = getattr(err, "field", None) if isinstance(err, InvalidInput) else None
    if form is not None and field and hasattr(form, field):
        getattr(form, field).errors.append(str(err))
    else:
        flash(str(err), "danger")


def deny_access(err: AccessDenied):
    """An operation's refusal as the page's answer: 401 (to the login) when anonymous, else 403 with the reason."""
    if actor() is None:
        abort(401)
    abort(403, description=str(err))


def call_and_stage(call_id, kind: str):
    """The call of a URL that names one of its stages; 404 when either does not exist."""
    from workflow.models import Call

    call = get_or_404(Call, call_id)
    if call.stage(kind) is None:
        abort(404)
    return call
