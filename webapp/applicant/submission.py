"""Applicant views: submitting (with a confirmation step), reopening, withdrawing, starting the full
proposal, receipts, the rebuttal and the decisions; plus the data the proposal page's panels show."""

from __future__ import annotations

import io
from types import SimpleNamespace

from flask import abort, flash, redirect, render_template, request, send_file, url_for

from webapp.applicant import bp
from webapp.applicant.documents import documents_overview
from webapp.applicant.submission_forms import (
    RebuttalForm,
    ReopenForm,
    StartFullForm,
    SubmitForm,
    WithdrawForm,
)
from webapp.auth import actor
from webapp.db import commit, db
from webapp.views import allow, get_or_404, refuse
from workflow import submission as ops
from workflow.access import can
from workflow.callconfig import STAGE_NAMES, stage_name
from workflow.clock import utcnow
from workflow.errors import ChangedMeanwhile, DomainError, GuardFailed
from workflow.lifecycle import WITHDRAWABLE, Variant, stage_of
from workflow.models import Proposal, Submission
from workflow.proposals import proposal_violations
from workflow.timefmt import format_time_left


def _back(proposal_id: int):
    return redirect(url_for("applicant.proposal", proposal_id=proposal_id))


def _status(err: DomainError) -> int:
    return 409 if isinstance(err, ChangedMeanwhile) else 422


def _plain(err: DomainError, what: str) -> DomainError:
    """A guard's refusal, said to a person: 'The proposal was not submitted: the deadline passed on ...'."""
    if isinstance(err, GuardFailed):
        return DomainError(f"{what}: " + "; ".join(err.reasons) + ".")
    return err


# ---------------------------------------------------------------------------------------------------------
# What the panels and pages show


def submission_status(proposal: Proposal, user=None) -> SimpleNamespace:
    """Deadline, time left, what blocks a submission, and which buttons this person may use."""
    session, call, now = db(), proposal.call, utcnow()
    variant = Variant.of(call)
    kind = stage_of(proposal.state, variant)
    stage = call.stage(kind) or call.first_stage
    is_open = stage.is_open(now)
    editable = proposal.state in ops.SUBMIT_TRIGGER
    submitted = proposal.state in ops.REOPEN_TRIGGER
    violations = proposal_violations(session, proposal, kind) if editable else []
    changes = ops.consortium_changes(session, proposal) if editable and kind == "full" and variant.two_stage \
        else None
    submit_decision = can(user, f"proposal.{ops.submit_trigger(proposal)}", proposal)
    blocked: list[str] = []
    if editable:
        if stage.closed_at is not None:
            blocked.append("submission for this stage has been closed by the call secretariat")
        elif now < stage.opens_at:
            blocked.append("submission has not opened yet")
        elif now >= stage.deadline:
            blocked.append("the deadline has passed")
        if any(v.blocking for v in violations):
            blocked.append("the proposal breaks the call's rules listed below")
        if changes is not None and changes.pending:
            blocked.append("the consortium changes listed below need the call secretariat's approval")
    submissions = sorted(proposal.submissions, key=lambda s: s.id, reverse=True)
    latest_of_stage = {}
    for s in submissions:
        latest_of_stage.setdefault(s.stage, s.id)
    return SimpleNamespace(
        stage=kind,
        stage_title=stage_name(variant, kind),
        deadline=stage.deadline,
        opens_at=stage.opens_at,
        is_open=is_open,
        not_yet_open=now < stage.opens_at,
        time_left=format_time_left(stage.deadline - now) if is_open else "",
        editable=editable,
        submitted=submitted,
        violations=[v for v in violations if v.blocking],
        warnings=[v for v in violations if not v.blocking],
        changes=changes,
        submit_decision=submit_decision,
        can_submit=bool(submit_decision) and not blocked,
        blocked=blocked,
        can_reopen=submitted and is_open and bool(can(user, f"proposal.{ops.reopen_trigger(proposal)}", proposal)),
        can_withdraw=proposal.state in WITHDRAWABLE and bool(can(user, "proposal.withdraw", proposal)),
        can_start_full=proposal.state == "invited" and bool(can(user, "proposal.start_full", proposal)),
        full_open=variant.two_stage and bool(call.stage("full")) and call.stage("full").is_open(now),
        full_stage=call.stage("full") if variant.two_stage else None,
        submissions=submissions,
        counting={sid for sid in latest_of_stage.values()},
        can_read_receipts=bool(can(user, "proposal.read_outcome", proposal)),
        in_rebuttal=proposal.state == "rebuttal",
        has_rebuttal=call.has_rebuttal,
    )


def stage_outcomes(proposal: Proposal) -> list:
    return ops.outcome_of(db(), proposal)


@bp.app_context_processor
def _panel_helpers():
    return {"submission_status": submission_status, "documents_overview": documents_overview,
            "stage_outcomes": stage_outcomes, "applicant_can": lambda action, obj: can(actor(), action, obj)}


# ---------------------------------------------------------------------------------------------------------
# Submit (with confirmation), reopen, withdraw, start the full proposal


@bp.route("/proposals/<int:proposal_id>/submit", methods=["GET", "POST"])
def submit(proposal_id: int):
    proposal = get_or_404(Proposal, proposal_id)
    allow("proposal.view", proposal)
    form = SubmitForm()
    status = 200
    if request.method == "GET":
        form.version.data = str(proposal.version)
    else:
        allow(f"proposal.{ops.submit_trigger(proposal)}", proposal)
        what = f"The {submission_status(proposal).stage_title} was not submitted"
        if form.validate_on_submit():
            try:
                sub = ops.submit(db(), actor(), proposal.id, expected_version=form.expected_version,
                                 confirmed=bool(form.confirm.data))
                commit()
            except DomainError as err:
                refuse(form, _plain(err, what))
                status = _status(err)
                if isinstance(err, ChangedMeanwhile):
                    form.version.data = str(proposal.version)  # the page now shows what changed
            else:
                flash(f"Your {STAGE_NAMES.get(sub.stage, 'proposal')} was submitted (submission no. {sub.number}). "
                      f"The receipt is on its way to {proposal.coordinator.email}. "
                      f"SHA-256 of the submitted content: {sub.sha256}", "success")
                return _back(proposal.id)
        else:
            status = 422
    return render_template("applicant/confirm.html", mode="submit", proposal=proposal, call=proposal.call,
                           actor=actor(), form=form, s=submission_status(proposal, actor()),
                           docs=documents_overview(proposal, actor())), status


@bp.route("/proposals/<int:proposal_id>/reopen", methods=["POST"])
def reopen(proposal_id: int):
    proposal = get_or_404(Proposal, proposal_id)
    allow(f"proposal.{ops.reopen_trigger(proposal)}", proposal)
    form = ReopenForm()
    if not form.validate_on_submit():
        flash("This form is out of date; reload the page and try again.", "danger")
        return _back(proposal.id)
    try:
        ops.reopen(db(), actor(), proposal.id, expected_version=form.expected_version)
        commit()
    except DomainError as err:
        refuse(None, _plain(err, "The proposal was not reopened"))
    else:
        flash("The proposal is open for changes again. Your earlier submission is kept, but only a new "
              "submission before the deadline will count: submit it again when you are done.", "warning")
    return _back(proposal.id)


@bp.route("/proposals/<int:proposal_id>/start-full", methods=["POST"])
def start_full(proposal_id: int):
    proposal = get_or_404(Proposal, proposal_id)
    allow("proposal.start_full", proposal)
    form = StartFullForm()
    if not form.validate_on_submit():
        flash("This form is out of date; reload the page and try again.", "danger")
        return _back(proposal.id)
    try:
        ops.start_full(db(), actor(), proposal.id, expected_version=form.expected_version)
        commit()
    except DomainError as err:
        refuse(None, _plain(err, "The full proposal was not started"))
    else:
        flash("The full proposal is started from your pre-proposal: its texts and partners are filled in. "
              "The full-proposal limits apply now; changes to the consortium need the call secretariat's "
              "approval.", "success")
    return _back(proposal.id)


@bp.route("/proposals/<int:proposal_id>/withdraw", methods=["GET", "POST"])
def withdraw(proposal_id: int):
    proposal = get_or_404(Proposal, proposal_id)
    allow("proposal.view", proposal)
    form = WithdrawForm()
    status = 200
    if request.method == "GET":
        form.version.data = str(proposal.version)
    else:
        allow("proposal.withdraw", proposal)
        if form.validate_on_submit():
            try:
                ops.withdraw(db(), actor(), proposal.id, reason=form.reason.data,
                             expected_version=form.expected_version, confirmed=bool(form.confirm.data))
                commit()
            except DomainError as err:
                refuse(form, _plain(err, "The proposal was not withdrawn"))
                status = _status(err)
                if isinstance(err, ChangedMeanwhile):
                    form.version.data = str(proposal.version)
            else:
                flash("The proposal was withdrawn.", "info")
                return _back(proposal.id)
        else:
            status = 422
    return render_template("applicant/confirm.html", mode="withdraw", proposal=proposal, call=proposal.call,
                           actor=actor(), form=form, s=submission_status(proposal, actor()),
                           docs=None), status


# ---------------------------------------------------------------------------------------------------------
# Receipts


@bp.route("/proposals/<int:proposal_id>/receipts")
def receipts(proposal_id: int):
    proposal = get_or_404(Proposal, proposal_id)
    allow("proposal.read_outcome", proposal)
    return render_template("applicant/receipts.html", proposal=proposal, call=proposal.call, actor=actor(),
                           s=submission_status(proposal, actor()))


@bp.route("/proposals/<int:proposal_id>/receipts/<int:submission_id>.pdf")
def receipt_pdf(proposal_id: int, submission_id: int):
    from webapp.pdfs import receipt_pdf as render_receipt

    proposal = get_or_404(Proposal, proposal_id)
    allow("proposal.read_outcome", proposal)
    sub = db().get(Submission, submission_id)
    if sub is None or sub.proposal_id != proposal.id:
        abort(404)
    data = render_receipt(sub, proposal, proposal.call)
    response = send_file(io.BytesIO(data), mimetype="application/pdf", as_attachment=True,
                         download_name=f"receipt-{proposal.reference}-{sub.stage}-{sub.number}.pdf", max_age=0)
    response.headers["Cache-Control"] = "private, no-store"
    return response


# ---------------------------------------------------------------------------------------------------------
# Rebuttal and decisions


@bp.route("/proposals/<int:proposal_id>/rebuttal", methods=["GET", "POST"])
def rebuttal(proposal_id: int):
    from reviews.release import released_reviews

    proposal = get_or_404(Proposal, proposal_id)
    allow("proposal.read_outcome", proposal)
    call = proposal.call
    if not call.has_rebuttal:
        abort(404)
    form = RebuttalForm()
    status = 200
    if request.method == "POST":
        allow("proposal.rebut", proposal)
        if form.validate_on_submit():
            try:
                ops.submit_rebuttal(db(), actor(), proposal, form.text.data)
                commit()
            except DomainError as err:
                refuse(form, err)
                status = _status(err)
            else:
                flash("Your rebuttal was submitted. It will be shown to the evaluation panel.", "success")
                return _back(proposal.id)
        else:
            status = 422
    now = utcnow()
    window = ops.rebuttal_window_state(call, now)
    existing = ops.rebuttal_of(db(), proposal)
    rebut = can(actor(), "proposal.rebut", proposal)
    can_write = existing is None and window == "open" and proposal.state == "rebuttal" and bool(rebut)
    return render_template(
        "applicant/rebuttal.html", proposal=proposal, call=call, actor=actor(), form=form,
        reviews=released_reviews(db(), proposal), existing=existing, window=window, can_write=can_write,
        rebut=rebut, max_chars=call.settings.rebuttal.max_chars,
        used_chars=len(ops.normalise_text(form.text.data or "").strip()),
        time_left=format_time_left(call.rebuttal_closes_at - now) if window == "open" else "",
    ), status


def _released_letters(proposal: Proposal) -> list:
    """The decision letters sent to the coordinator."""
    from workflow.letters import released_letters

    return released_letters(db(), proposal)


@bp.route("/proposals/<int:proposal_id>/decision")
def decision(proposal_id: int):
    proposal = get_or_404(Proposal, proposal_id)
    allow("proposal.read_outcome", proposal)
    letters = _released_letters(proposal)
    return render_template("applicant/decision.html", proposal=proposal, call=proposal.call, actor=actor(),
                           outcomes=stage_outcomes(proposal), letters=letters,
                           letter_stages={x.stage for x in letters})


@bp.route("/proposals/<int:proposal_id>/decision/letter-<stage>.pdf")
def decision_letter(proposal_id: int, stage: str):
    """The decision letter of a stage, as it was sent, once the secretariat has released it."""
    proposal = get_or_404(Proposal, proposal_id)
    allow("proposal.read_outcome", proposal)
    letter = next((x for x in _released_letters(proposal) if x.stage == stage), None)
    if letter is None:
        abort(404)
    response = send_file(io.BytesIO(letter.pdf), mimetype="application/pdf", as_attachment=True,
                         download_name=f"decision-letter-{proposal.reference}-{stage}.pdf", max_age=0)
    response.headers["Cache-Control"] = "private, no-store"
    return response
