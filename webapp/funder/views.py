"""The funder officer's pages: the partners requesting money from their funder in a call and stage, their
verdicts (one at a time or several at once), the funder's budget, and exports.

Every route that names a partner asks the access policy about that partner's check: another funder's
partner is refused with 403 and the policy's reason, before anything of it is read into the page.
"""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from webapp.auth import actor
from webapp.db import commit, db
from webapp.exports import table_response
from webapp.funder import bp
from webapp.funder.forms import BulkSignOffForm, SignOffForm
from webapp.views import allow, get_or_404, page_arg, refuse
from webapp.views import call_and_stage as _call_and_stage
from webapp.views import deny_access as _deny
from workflow.access import can
from workflow.callconfig import PARTNER_TYPE_LABELS
from workflow.eligibility import (
    STATUS_LABELS,
    STATUSES,
    bulk_sign_off,
    check_state,
    my_funders,
    officer_partner_page,
    officer_partner_rows,
    stage_checks,
    stage_label,
    status_label,
)
from workflow.errors import AccessDenied, ChangedMeanwhile, DomainError
from workflow.lifecycle import STATE_BY_NAME
from workflow.models import Call, Document, EligibilityCheck, User
from workflow.operations import sign_off
from workflow.timefmt import format_instant


def _status_arg() -> str | None:
    status = request.args.get("status") or None
    return status if status in STATUSES else None


@bp.get("/")
def index():
    """The calls and stages the officer works on."""
    me = actor()
    if me is None:
        abort(401)
    grants = [g for g in me.grants if g.role == "officer"]
    if not grants:
        abort(403, description="only funder officers can see this page")
    call_ids = sorted({g.call_id for g in grants})
    calls = db().scalars(select(Call).where(Call.id.in_(call_ids)).order_by(Call.created_at.desc())).all()
    acronyms = {cf.funder_id: cf.funder.acronym for c in calls for cf in c.funders}
    funders: dict[int, list[str]] = {}
    for g in grants:
        funders.setdefault(g.call_id, []).append(acronyms.get(g.funder_id, "?"))
    return render_template("funder/index.html", calls=calls, funders=funders,
                           stage_label=stage_label)


def _dashboard(call: Call, kind: str, form: BulkSignOffForm, status: str | None, selected=(), code: int = 200):
    try:
        listed = officer_partner_page(db(), actor(), call, kind, status=status, page=page_arg())
    except AccessDenied as err:
        _deny(err)
    return render_template(
        "funder/dashboard.html", call=call, kind=kind, stage=call.stage(kind), stage_name=stage_label(call, kind),
        funders=listed.funders, rows=listed.rows, open_rows=listed.open_rows, window=listed.window,
        partners=listed.partners, counts=listed.counts, budgets=listed.budgets, status=status,
        statuses=STATUS_LABELS, form=form, selected={str(s) for s in selected},
    ), code


@bp.get("/calls/<int:call_id>/<kind>")
def dashboard(call_id: int, kind: str):
    call = _call_and_stage(call_id, kind)
    return _dashboard(call, kind, BulkSignOffForm(), _status_arg())


@bp.post("/calls/<int:call_id>/<kind>/sign-off")
def bulk(call_id: int, kind: str):
    call = _call_and_stage(call_id, kind)
    try:
        my_funders(db(), actor(), call)
    except AccessDenied as err:
        _deny(err)
    ids = [i for i in request.form.getlist("check") if i.isdigit()]
    items = []
    for raw in ids:
        check = get_or_404(EligibilityCheck, raw)
        allow("partner.sign_off", check)  # another funder's partner: 403, nothing of it shown
        version = request.form.get(f"version-{raw}", "")
        items.append((check.id, int(version) if version.isdigit() else None))
    form = BulkSignOffForm()
    status = _status_arg()
    if form.validate_on_submit():
        try:
            done = bulk_sign_off(db(), actor(), items, form.verdict.data, form.reason.data)
            names = ", ".join(f"{c.proposal.acronym} / {c.partner.organisation}" for c in done)
            verdict = status_label(form.verdict.data).lower()
            commit()
            flash(f"{len(done)} partner{'s' if len(done) != 1 else ''} signed off as {verdict}: {names}.", "success")
            # Back to the page the officer was on (the status filter may have moved rows off it: the page
            # number is clamped to the pages that are left).
            page = page_arg()
            return redirect(url_for(".dashboard", call_id=call.id, kind=kind, status=status,
                                    page=page if page > 1 else None))
        except DomainError as err:
            refuse(form, err)
            flash("Nothing was signed off; correct the selection and try again.", "danger")
    return _dashboard(call, kind, form, status, selected=ids, code=422)


_HEADER = ["Reference", "Acronym", "Proposal state", "Partner", "Partner type", "Country", "Funder", "PI",
           "PI e-mail", "Requested (EUR)", "Status", "Reason", "Decided by", "Decided at"]


@bp.get("/calls/<int:call_id>/<kind>/partners.<fmt>")
def export(call_id: int, kind: str, fmt: str):
    call = _call_and_stage(call_id, kind)
    if fmt not in ("csv", "xlsx"):
        abort(404)
    status = _status_arg()
    try:
        rows = officer_partner_rows(db(), actor(), call, kind, status=status)
    except AccessDenied as err:
        _deny(err)
    data = [
        [r.proposal.reference, r.proposal.acronym,
         STATE_BY_NAME[r.proposal.state].label if r.proposal.state in STATE_BY_NAME else r.proposal.state,
         r.partner.organisation, r.partner.partner_type, r.partner.country, r.funder.acronym, r.partner.pi_name,
         r.partner.pi_email, r.partner.requested_amount, r.status_label, r.check.reason or "",
         r.decided_by or "", format_instant(r.check.decided_at, call.time_zone) if r.check.decided_at else ""]
        for r in rows
    ]
    header = _HEADER[:-1] + [f"Decided at ({call.time_zone})"]
    base = f"{call.code}-{kind}-eligibility-{'-'.join(f.acronym for f in my_funders(db(), actor(), call))}"
    if status:
        base += f"-{status}"
    return table_response(fmt, base, header, data, sheet=f"{kind} eligibility")


# The applicant blueprint's download route; it asks the policy ("document.download") itself.
_DOWNLOAD = "applicant.download_document"


def _partner_page(check: EligibilityCheck, form: SignOffForm, code: int = 200):
    me = actor()
    proposal = check.proposal
    call = proposal.call
    may_view_proposal = bool(can(me, "proposal.view", proposal))
    verdicts = {}
    documents = []
    if may_view_proposal:
        for c in stage_checks(db(), proposal, check.stage):
            if c.partner_id is not None and can(me, "partner.view_verdict", c):
                verdicts[c.partner_id] = c
        latest = {}
        for d in db().scalars(select(Document).where(Document.proposal_id == proposal.id,
                                                     Document.stage == check.stage).order_by(Document.version)):
            latest[(d.kind, d.partner_id)] = d
        documents = sorted(latest.values(), key=lambda d: (d.kind, d.partner_id or 0))
    return render_template(
        "funder/partner.html", check=check, partner=check.partner, proposal=proposal, call=call,
        may_view_proposal=may_view_proposal, may_sign=bool(can(me, "partner.sign_off", check)),
        open=proposal.state == check_state(call, check.stage), verdicts=verdicts, documents=documents,
        form=form, stage_name=stage_label(call, check.stage), status_label=status_label,
        partner_types=PARTNER_TYPE_LABELS,
        decided_by=db().get(User, check.decided_by_id) if check.decided_by_id else None,
        download_endpoint=_DOWNLOAD if _DOWNLOAD in current_app.view_functions and can(me, "document.download", proposal)
        else None,
    ), code


@bp.get("/checks/<int:check_id>")
def partner(check_id: int):
    check = get_or_404(EligibilityCheck, check_id)
    allow("partner.view_verdict", check)
    if check.partner_id is None:
        abort(404)
    form = SignOffForm(data={"verdict": check.status if check.status != "pending" else None,
                             "reason": check.reason or "", "version": str(check.version)})
    return _partner_page(check, form)


@bp.post("/checks/<int:check_id>")
def sign_off_partner(check_id: int):
    check = get_or_404(EligibilityCheck, check_id)
    allow("partner.sign_off", check)
    form = SignOffForm()
    if form.validate_on_submit():
        try:
            sign_off(db(), actor(), check.id, form.verdict.data, form.reason.data, form.expected_version())
            label, organisation = status_label(check.status), check.partner.organisation
            commit()
            flash(f"Verdict saved: {organisation} is {label.lower()}.", "success")
            return redirect(url_for(".partner", check_id=check.id))
        except ChangedMeanwhile as err:
            refuse(form, err)
            # Show what the other person saved; saving again now overwrites it knowingly.
            form.version.data = str(db().get(EligibilityCheck, check_id).version)
        except DomainError as err:
            refuse(form, err)
    return _partner_page(db().get(EligibilityCheck, check_id), form, 422)
