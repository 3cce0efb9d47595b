"""The secretariat's eligibility pages: closing submission of a stage, the formal check of each proposal
(with the rules engine's findings), the proposals × funders matrix, reminders to funders, closing the
eligibility step, and the matrix as CSV/XLSX."""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, url_for
from sqlalchemy import select

from webapp.auth import actor
from webapp.db import commit, db
from webapp.exports import table_response
from webapp.funder.forms import SignOffForm
from webapp.secretariat import bp
from webapp.secretariat.calls import ConfirmForm
from webapp.views import allow, get_or_404, page_arg, refuse
from webapp.views import call_and_stage as _call_and_stage
from webapp.views import deny_access as _deny
from workflow.access import is_secretariat
from workflow.eligibility import (
    cell_text,
    check_state,
    close_eligibility_step,
    closing_page,
    closing_preview,
    eligibility_matrix,
    findings_note,
    formal_findings,
    outcome_for,
    remind_funders,
    stage_checks,
    stage_label,
    status_label,
    step_closing_event,
)
from workflow.errors import AccessDenied, ChangedMeanwhile, DomainError, NotFound
from workflow.lifecycle import STATE_BY_NAME
from workflow.models import Call, EligibilityCheck, Proposal
from workflow.operations import close_stage as close_stage_operation
from workflow.operations import sign_off


def _state(state: str) -> str:
    return STATE_BY_NAME[state].label if state in STATE_BY_NAME else state


@bp.get("/eligibility")
def calls():
    """The calls this person runs, with their stages."""
    me = actor()
    if me is None:
        abort(401)
    every = db().scalars(select(Call).order_by(Call.created_at.desc(), Call.id.desc())).all()
    mine = [c for c in every if is_secretariat(me, c.id)]
    if not mine:
        abort(403, description="only a call secretariat can see this page")
    return render_template("secretariat/calls.html", calls=mine, stage_label=stage_label)


# ---------------------------------------------------------------------------------------------------------
# Closing submission


def _close_page(call: Call, kind: str, form: ConfirmForm, code: int = 200):
    try:
        preview = closing_preview(db(), actor(), call, kind)
    except AccessDenied as err:
        _deny(err)
    return render_template("secretariat/close_stage.html", call=call, kind=kind, preview=preview, form=form,
                           stage_name=stage_label(call, kind)), code


@bp.get("/calls/<int:call_id>/stages/<kind>/close")
def close_stage(call_id: int, kind: str):
    call = _call_and_stage(call_id, kind)
    allow("call.manage", call)
    return _close_page(call, kind, ConfirmForm())


@bp.post("/calls/<int:call_id>/stages/<kind>/close")
def close_stage_post(call_id: int, kind: str):
    call = _call_and_stage(call_id, kind)
    allow("call.manage", call)
    form = ConfirmForm()
    if form.validate_on_submit():
        try:
            counts = close_stage_operation(db(), actor(), call, kind)
            commit()
            n, d = counts["to_eligibility"], counts["not_submitted"]
            flash(f"Submission of the {stage_label(call, kind)} stage is closed: {n} proposal{'s' if n != 1 else ''} "
                  f"went to the eligibility check; {d} draft{'s were' if d != 1 else ' was'} marked not submitted.",
                  "success")
            return redirect(url_for(".matrix", call_id=call.id, kind=kind))
        except DomainError as err:
            refuse(None, err)
    return _close_page(call, kind, form, 422)


# ---------------------------------------------------------------------------------------------------------
# The matrix, reminders, closing the step


def _matrix(call: Call, kind: str, page: int | None = None):
    try:
        return eligibility_matrix(db(), actor(), call, kind, page=page)
    except AccessDenied as err:
        _deny(err)


@bp.get("/calls/<int:call_id>/eligibility/<kind>")
def matrix(call_id: int, kind: str):
    call = _call_and_stage(call_id, kind)
    m = _matrix(call, kind, page_arg())
    return render_template("secretariat/matrix.html", call=call, kind=kind, m=m, form=ConfirmForm(),
                           stage=call.stage(kind), stage_name=stage_label(call, kind), forecast=m.summary.forecast,
                           status_label=status_label)


@bp.get("/calls/<int:call_id>/eligibility/<kind>/matrix.<fmt>")
def matrix_export(call_id: int, kind: str, fmt: str):
    call = _call_and_stage(call_id, kind)
    if fmt not in ("csv", "xlsx"):
        abort(404)
    m = _matrix(call, kind)
    header = (["Reference", "Acronym", "Proposal state", "Formal check"] + [cf.funder.acronym for cf in m.funders]
              + ["Pending checks", "Outcome"])
    data = [
        [r.proposal.reference, r.proposal.acronym, _state(r.proposal.state),
         cell_text([r.formal] if r.formal else [])]
        + [cell_text(r.cells.get(cf.funder_id, [])) for cf in m.funders]
        + [r.pending, r.outcome.label if r.open else "decided"]
        for r in m.rows
    ]
    return table_response(fmt, f"{call.code}-{kind}-eligibility-matrix", header, data, sheet=f"{kind} eligibility")


@bp.post("/calls/<int:call_id>/eligibility/<kind>/remind")
def remind(call_id: int, kind: str):
    call = _call_and_stage(call_id, kind)
    allow("eligibility.manage", call)
    form = ConfirmForm()
    if form.validate_on_submit():
        base = current_app.config["JOINTCALL"].get("base_url", "").rstrip("/")
        try:
            result = remind_funders(db(), actor(), call, kind,
                                    link=base + url_for("funder.dashboard", call_id=call.id, kind=kind))
            commit()
            flash(result.summary, "success" if result.queued else "info")
        except DomainError as err:
            refuse(None, err)
    else:
        flash("The form expired; nothing was sent. Try again.", "danger")
    return redirect(url_for(".matrix", call_id=call.id, kind=kind))


@bp.post("/calls/<int:call_id>/eligibility/<kind>/close")
def close_step(call_id: int, kind: str):
    call = _call_and_stage(call_id, kind)
    allow("eligibility.manage", call)
    form = ConfirmForm()
    if not form.validate_on_submit():
        flash("The form expired; nothing was changed. Try again.", "danger")
        return redirect(url_for(".matrix", call_id=call.id, kind=kind))
    try:
        result = close_eligibility_step(db(), actor(), call, kind)
        commit()
    except DomainError as err:
        refuse(None, err)
        return redirect(url_for(".matrix", call_id=call.id, kind=kind))
    return redirect(url_for(".step_closed", call_id=call.id, kind=kind, event_id=result.event_id))


@bp.get("/calls/<int:call_id>/eligibility/<kind>/closings/<int:event_id>")
def step_closed(call_id: int, kind: str, event_id: int):
    call = _call_and_stage(call_id, kind)
    try:
        event = step_closing_event(db(), actor(), call, event_id)
    except AccessDenied as err:
        _deny(err)
    except NotFound:
        abort(404)
    window, shown = closing_page(event.after, page_arg())
    return render_template("secretariat/step_closed.html", call=call, kind=kind, event=event, s=event.after,
                           window=window, shown=shown, stage_name=stage_label(call, kind), state_label=_state)


# ---------------------------------------------------------------------------------------------------------
# One proposal: the formal check and every funder's verdict


def _proposal_page(proposal: Proposal, kind: str, form: SignOffForm | None, code: int = 200):
    call = proposal.call
    checks = stage_checks(db(), proposal, kind)
    formal = next((c for c in checks if c.partner_id is None), None)
    findings = formal_findings(db(), proposal, kind)
    if form is None:
        data = {"version": str(formal.version) if formal else ""}
        if formal is not None and formal.status != "pending":
            data.update(verdict=formal.status, reason=formal.reason or "")
        elif findings:
            data.update(verdict="ineligible", reason=findings_note(findings))
        form = SignOffForm(data=data)
    return render_template(
        "secretariat/proposal_checks.html", call=call, proposal=proposal, kind=kind, checks=checks, formal=formal,
        partner_checks=[c for c in checks if c.partner_id is not None], findings=findings, form=form,
        open=proposal.state == check_state(call, kind), outcome=outcome_for(db(), proposal, kind, checks),
        stage_name=stage_label(call, kind), status_label=status_label,
    ), code


@bp.get("/proposals/<int:proposal_id>/eligibility/<kind>")
def proposal_checks(proposal_id: int, kind: str):
    proposal = get_or_404(Proposal, proposal_id)
    allow("eligibility.manage", proposal)
    if proposal.call.stage(kind) is None:
        abort(404)
    return _proposal_page(proposal, kind, None)


@bp.post("/proposals/<int:proposal_id>/eligibility/<kind>")
def formal_sign_off(proposal_id: int, kind: str):
    proposal = get_or_404(Proposal, proposal_id)
    allow("eligibility.manage", proposal)
    if proposal.call.stage(kind) is None:
        abort(404)
    formal = db().scalar(select(EligibilityCheck).where(
        EligibilityCheck.proposal_id == proposal.id, EligibilityCheck.stage == kind,
        EligibilityCheck.partner_id.is_(None)))
    if formal is None:
        abort(404)
    form = SignOffForm()
    if form.validate_on_submit():
        try:
            sign_off(db(), actor(), formal.id, form.verdict.data, form.reason.data, form.expected_version())
            label = status_label(formal.status).lower()
            commit()
            flash(f"Formal check saved: {proposal.acronym} is {label} under the call rules.", "success")
            return redirect(url_for(".proposal_checks", proposal_id=proposal.id, kind=kind))
        except ChangedMeanwhile as err:
            refuse(form, err)
            form.version.data = str(db().get(EligibilityCheck, formal.id).version)
        except DomainError as err:
            refuse(form, err)
    return _proposal_page(db().get(Proposal, proposal_id), kind, form, 422)
