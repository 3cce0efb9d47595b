"""The secretariat's proposal list: search, filters, sort, 50 per page; exactly the filtered list as
CSV/XLSX; bulk actions the lifecycle allows, confirmed on a page that says what will happen, and applied
all-or-nothing."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from webapp.auth import actor
from webapp.db import commit, db
from webapp.exports import table_response
from webapp.secretariat import bp
from webapp.secretariat.calls import ConfirmForm, _console_call, confirmed
from webapp.views import deny_access, refuse
from workflow import console
from workflow.countries import country_name
from workflow.errors import AccessDenied, DomainError
from workflow.lifecycle import STATE_BY_NAME, states_for
from workflow.models import Call, FundingOrganisation, Partner, Proposal
from workflow.paging import positive_int


def _filter_choices(call: Call) -> dict:
    countries = db().scalars(
        select(Partner.country).join(Proposal, Partner.proposal_id == Proposal.id)
        .where(Proposal.call_id == call.id).distinct()
    ).all()
    return {
        "states": [(s.name, s.label) for s in states_for(console.Variant.of(call))],
        "funders": sorted(((cf.funder_id, cf.funder.acronym) for cf in call.funders), key=lambda x: x[1].lower()),
        "countries": sorted(((c, country_name(c)) for c in countries), key=lambda x: x[1]),
        "scopes": console.SCOPES,
    }


@bp.get("/calls/<int:call_id>/proposals")
def proposal_list(call_id: int):
    call = _console_call(call_id)
    f = console.ProposalFilter.from_args(request.args)
    try:
        page = console.search_proposals(db(), actor(), call, f)
    except AccessDenied as err:
        deny_access(err)
    funder = db().get(FundingOrganisation, f.funder_id) if f.funder_id else None
    return render_template("secretariat/proposals.html", call=call, p=page, f=f, choices=_filter_choices(call),
                           funder=funder, bulk=console.bulk_triggers(call), form=ConfirmForm(),
                           labels=STATE_BY_NAME, sorts=console.SORTS)


@bp.get("/calls/<int:call_id>/proposals.<fmt>")
def proposal_export(call_id: int, fmt: str):
    call = _console_call(call_id)
    if fmt not in ("csv", "xlsx"):
        abort(404)
    f = console.ProposalFilter.from_args(request.args)
    try:
        rows = console.filtered_proposals(db(), actor(), call, f)
    except AccessDenied as err:
        deny_access(err)
    return table_response(fmt, f"{call.code}-proposals", console.EXPORT_HEADER, console.export_rows(rows),
                          sheet="Proposals")


def _back(call: Call):
    return redirect(request.form.get("back") if (request.form.get("back") or "").startswith("/secretariat/")
                    else url_for(".proposal_list", call_id=call.id))


@bp.post("/calls/<int:call_id>/proposals/bulk")
def proposal_bulk(call_id: int):
    """The confirmation page: what the chosen action does to each selected proposal."""
    call = _console_call(call_id)
    if not confirmed():
        return _back(call)
    trigger = request.form.get("trigger", "")
    try:
        plan = console.bulk_plan(db(), actor(), call, trigger, request.form.getlist("proposal_ids"))
    except AccessDenied as err:
        deny_access(err)
    except DomainError as err:
        refuse(None, err)
        return _back(call)
    return render_template("secretariat/bulk_confirm.html", call=call, plan=plan, form=ConfirmForm(),
                           labels=STATE_BY_NAME, back=request.form.get("back", ""))


@bp.post("/calls/<int:call_id>/proposals/bulk/apply")
def proposal_bulk_apply(call_id: int):
    call = _console_call(call_id)
    if not confirmed():
        return _back(call)
    trigger = request.form.get("trigger", "")
    items = []
    for value in request.form.getlist("items"):
        pid, _, version = value.partition(":")
        if positive_int(pid) is not None:
            items.append((positive_int(pid), positive_int(version)))
    reason = (request.form.get("reason") or "").strip()[:500] or None
    try:
        moved = console.bulk_transition(db(), actor(), call, trigger, items, reason=reason)
        commit()
    except AccessDenied as err:
        db().rollback()
        deny_access(err)
    except DomainError as err:
        refuse(None, err)  # rolls back: all or nothing
        return _back(call)
    label = console.bulk_triggers(call)[trigger][0]
    flash(f"{label}: done for {moved} proposal{'s' if moved != 1 else ''}.", "success")
    return _back(call)
