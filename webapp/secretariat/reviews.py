"""The secretariat's review pages: the reviewer pool (invitations, profiles, declarations), conflicts
(detected and declared, overrides with a justification), assignment (manual, and automatic as a preview
to accept or discard), review progress (reopen, reminders), the panel table and the consensus, applying
the panel's decisions, the ranking list (build, tie-breaks, approval), the pre-stage invitations with
the funders' budgets, and the exports (reviews and scores as CSV/XLSX, the ranking as XLSX/PDF).

The automatic assignment preview is not stored: the preview page carries its parameters and a digest of
its pairs in a signed token; accepting computes it again (the computation is deterministic) and writes it
only if it is still the one the secretariat saw (accept_preview re-checks every pair on top of that).
"""

from __future__ import annotations

import base64
import hashlib
import json
from zoneinfo import ZoneInfo

from flask import Response, abort, current_app, flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select
from wtforms import (
    DateTimeLocalField,
    EmailField,
    FloatField,
    Form,
    HiddenField,
    IntegerField,
    RadioField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length, NumberRange, Optional

from reviews import exports as review_exports
from reviews.aggregation import (
    CONSENSUS_STATE,
    PANEL_RECOMMENDATIONS,
    SUMMARY_MAX,
    apply_panel_decisions,
    consensus_of,
    enough_reviews_problem,
    enter_consensus,
    panel_size,
    panel_table,
    proposal_aggregate,
)
from reviews.assignment import (
    DEFAULT_COUNTRY_PENALTY,
    AssignmentPreview,
    accept_preview,
    assign_reviewer,
    discard_preview,
    forget_previews,
    keep_preview,
    kept_preview,
    preview_summary,
    propose_assignment,
    remove_assignment,
    wanted_reviewers,
)
from reviews.common import fmt_score, proposal_stage, reviewer_ids
from reviews.conflicts import call_conflicts, detect_conflicts, override_conflict
from reviews.models import Review, ReviewAssignment
from reviews.pool import invite_reviewer, reviewer_pool
from reviews.ranking import (
    INVITATION_BUDGET_GUIDANCE,
    UnresolvedTie,
    approve_ranking,
    build_ranking,
    frozen_problem,
    invitation_budget,
    ranked_proposals,
    ranking_digest,
    ranking_of,
    ranking_size,
    send_invitations,
)
from reviews.scoring import (
    assignment_table,
    in_review_count,
    parse_score,
    progress_size,
    progress_summary,
    reopen_review,
    review_counts,
    review_deadline,
    review_progress,
    send_reminders,
)
from reviews.visibility import reviews_for
from webapp.auth import actor
from webapp.db import commit, db
from webapp.exports import table_response
from webapp.pdfs import html_to_pdf
from webapp.reviewer.forms import score_choices
from webapp.reviewer.views import invitation_link
from webapp.secretariat import bp
from webapp.secretariat.calls import ConfirmForm
from webapp.views import allow, deny_access, get_or_404, page_arg, refuse
from workflow.accounts import find_user
from workflow.callconfig import STAGE_NAMES
from workflow.clock import utcnow
from workflow.errors import AccessDenied, DomainError
from workflow.models import Call, Proposal, Rebuttal, User
from workflow.paging import Window, positive_int

DATETIME_FORMAT = "%Y-%m-%dT%H:%M"
PREVIEW_SALT = "jointcall.assignment-preview"
PREVIEW_MAX_AGE = 24 * 3600



def _call(call_id: int, action: str) -> Call:
    call = get_or_404(Call, call_id)
    allow(action, call)
    return call


def _staged(call_id: int, kind: str, action: str) -> Call:
    call = get_or_404(Call, call_id)
    if kind not in STAGE_NAMES or call.settings.stage(kind) is None:
        abort(404)
    allow(action, call)
    return call


def _expired() -> None:
    flash("The form expired; nothing was changed. Reload the page and try again.", "danger")


def _stage_kinds(call: Call) -> list[str]:
    return [s.kind for s in call.settings.stages]


def _render(template: str, call: Call, code: int = 200, **context):
    return render_template(f"secretariat/{template}", call=call, stage_names=STAGE_NAMES,
                           stage_kinds=_stage_kinds(call), **context), code


# ---------------------------------------------------------------------------------------------------------
# Overview


@bp.get("/calls/<int:call_id>/reviews")
def reviews_home(call_id: int):
    call = _call(call_id, "review.assign")
    stages = [{"kind": kind, **review_counts(db(), call, kind), "ranking": ranking_of(db(), call, kind)}
              for kind in _stage_kinds(call)]
    pool_size = len(reviewer_ids(db(), call))
    return _render("reviews_home.html", call, stages=stages, pool_size=pool_size)


# ---------------------------------------------------------------------------------------------------------
# The reviewer pool


class InviteReviewerForm(FlaskForm):
    email = EmailField("E-mail address of the reviewer", validators=[Length(max=254)])
    name = StringField("Name (optional)", validators=[Length(max=200)])


def _pool_page(call: Call, form: InviteReviewerForm, code: int = 200):
    try:
        rows = reviewer_pool(db(), actor(), call)
    except AccessDenied as err:
        deny_access(err)
    p = Window(len(rows), page_arg())
    return _render("reviews_pool.html", call, code, rows=p.slice(rows), p=p, form=form)


@bp.get("/calls/<int:call_id>/reviews/pool")
def reviews_pool(call_id: int):
    call = _call(call_id, "reviewer.manage")
    return _pool_page(call, InviteReviewerForm(formdata=None))


@bp.post("/calls/<int:call_id>/reviews/pool")
def reviews_pool_invite(call_id: int):
    call = _call(call_id, "reviewer.manage")
    form = InviteReviewerForm()
    if form.validate_on_submit():
        try:
            invitation = invite_reviewer(db(), actor(), call, email=form.email.data or "", name=form.name.data,
                                         link=invitation_link)
            address = invitation.email
            commit()
        except DomainError as err:
            refuse(form, err)
        else:
            flash(f"Invitation sent to {address}. The link works once, for 30 days.", "success")
            return redirect(url_for(".reviews_pool", call_id=call.id))
    return _pool_page(call, form, 422)


# ---------------------------------------------------------------------------------------------------------
# Conflicts


class OverrideForm(FlaskForm):
    justification = TextAreaField("Justification (recorded in the audit log)", validators=[Length(max=2000)])


@bp.get("/calls/<int:call_id>/reviews/conflicts")
def reviews_conflicts(call_id: int):
    call = _call(call_id, "review.assign")
    try:
        rows = call_conflicts(db(), actor(), call)
    except AccessDenied as err:
        deny_access(err)
    p = Window(len(rows), page_arg())
    return _render("reviews_conflicts.html", call, rows=p.slice(rows), p=p, form=ConfirmForm(),
                   same_country=call.settings.evaluation.conflict_same_country)


@bp.post("/calls/<int:call_id>/reviews/conflicts/detect")
def reviews_conflicts_detect(call_id: int):
    call = _call(call_id, "review.assign")
    if ConfirmForm().validate_on_submit():
        try:
            summary = detect_conflicts(db(), actor(), call)
            commit()
        except DomainError as err:
            refuse(None, err)
        else:
            flash(f"Conflict detection stored {summary.added} new conflict{'s' if summary.added != 1 else ''} and "
                  f"dropped {summary.removed} that no longer appl{'y' if summary.removed != 1 else 'ies'}; "
                  f"{summary.active} reviewer–proposal pair{'s are' if summary.active != 1 else ' is'} conflicted.",
                  "success")
    else:
        _expired()
    return redirect(url_for(".reviews_conflicts", call_id=call.id), code=303)


def _pair(call: Call, proposal_id: int, reviewer_id: int) -> tuple[Proposal, User]:
    proposal = get_or_404(Proposal, proposal_id)
    reviewer = get_or_404(User, reviewer_id)
    if proposal.call_id != call.id:
        abort(404)
    return proposal, reviewer


def _override_page(call, proposal, reviewer, form, code=200):
    rows = [r for r in call_conflicts(db(), actor(), call)
            if r.proposal_id == proposal.id and r.reviewer_id == reviewer.id]
    return _render("reviews_override.html", call, code, proposal=proposal, reviewer=reviewer, rows=rows, form=form)


@bp.route("/calls/<int:call_id>/reviews/conflicts/<int:proposal_id>/<int:reviewer_id>/override",
          methods=["GET", "POST"])
def reviews_override(call_id: int, proposal_id: int, reviewer_id: int):
    call = _call(call_id, "review.assign")
    proposal, reviewer = _pair(call, proposal_id, reviewer_id)
    allow("conflict.override", proposal)
    if request.method == "GET":
        return _override_page(call, proposal, reviewer, OverrideForm(formdata=None))
    form = OverrideForm()
    if form.validate_on_submit():
        name, acronym = reviewer.name, proposal.acronym
        try:
            override_conflict(db(), actor(), reviewer, proposal, justification=form.justification.data or "")
            commit()
        except DomainError as err:
            refuse(form, err)
        else:
            flash(f"The conflict of {name} with {acronym} is overridden; the justification is recorded.", "success")
            return redirect(url_for(".reviews_conflicts", call_id=call.id))
    return _override_page(call, db().get(Proposal, proposal_id), db().get(User, reviewer_id), form, 422)


# ---------------------------------------------------------------------------------------------------------
# Assignment: manual, and the automatic preview


class AutoForm(Form):
    """The automatic assignment's parameters (a GET form: computing the preview writes nothing)."""

    load_cap = IntegerField("Load cap: most proposals per reviewer", validators=[
        InputRequired("give the load cap"), NumberRange(min=1, max=1000, message="from 1 to 1,000")])
    reviewers_per_proposal = IntegerField("Reviewers per proposal", validators=[
        Optional(), NumberRange(min=3, max=50, message="at least 3 (and at most 50)")])
    country_penalty = FloatField("Country penalty (0 to 1)", default=DEFAULT_COUNTRY_PENALTY, validators=[
        Optional(), NumberRange(min=0, max=1, message="between 0 and 1")])
    method = SelectField("Method", choices=[SelectChoice("flow", "Optimal (min-cost flow)"),
                                              SelectChoice("greedy", "Greedy (baseline)")],
                         default="flow")


class PreviewDecisionForm(FlaskForm):
    token = HiddenField()


# Up to this many reviewers available for a proposal are offered in a drop-down on its row; beyond, the row
# takes an e-mail with the page's one list of suggestions (600 options on each of 50 rows made 1.6 MB).
CHOICES_LISTED = 30


def _assignments_page(call: Call, kind: str, auto: AutoForm, code: int = 200):
    p = Window(in_review_count(db(), call, kind), page_arg())
    rows, load, reviewers = assignment_table(db(), call, kind, p)
    return _render("reviews_assignments.html", call, code, kind=kind, rows=rows, load=load, reviewers=reviewers,
                   auto=auto, form=ConfirmForm(), wanted=wanted_reviewers(call), p=p, choices_listed=CHOICES_LISTED,
                   long_pool=any(len(row.available) > CHOICES_LISTED for row in rows))


@bp.get("/calls/<int:call_id>/reviews/<kind>/assignments")
def reviews_assignments(call_id: int, kind: str):
    call = _staged(call_id, kind, "review.assign")
    auto = AutoForm(data={"load_cap": None, "country_penalty": DEFAULT_COUNTRY_PENALTY, "method": "flow"})
    return _assignments_page(call, kind, auto)


@bp.post("/calls/<int:call_id>/reviews/<kind>/assignments")
def reviews_assign(call_id: int, kind: str):
    call = _staged(call_id, kind, "review.assign")
    # Back to the page of the list the person was on (the form's address carries it).
    back = redirect(url_for(".reviews_assignments", call_id=call.id, kind=kind, page=_page_or_none()), code=303)
    if not ConfirmForm().validate_on_submit():
        _expired()
        return back
    proposal = get_or_404(Proposal, request.form.get("proposal_id"))
    if proposal.call_id != call.id:
        abort(404)
    try:
        reviewer_id = int(request.form.get("reviewer_id") or 0)
    except ValueError:
        reviewer_id = 0
    reviewer = db().get(User, reviewer_id) if reviewer_id else None
    typed = (request.form.get("reviewer") or "").strip()  # the e-mail typed where the list is too long
    if reviewer is None and typed:
        reviewer = find_user(db(), typed)
        if reviewer is None:
            flash(f"Nobody with the e-mail {typed} is a reviewer of this call; nothing was assigned.", "danger")
            return back
    if reviewer is None:
        flash(f"Choose the reviewer to add to {proposal.acronym}.", "danger")
        return back
    name, acronym = reviewer.name, proposal.acronym
    try:
        assign_reviewer(db(), actor(), proposal, reviewer)
        commit()
    except DomainError as err:
        refuse(None, err)
    else:
        flash(f"{name} is assigned to {acronym} and was told by e-mail.", "success")
    return back


@bp.post("/calls/<int:call_id>/reviews/<kind>/assignments/<int:assignment_id>/remove")
def reviews_unassign(call_id: int, kind: str, assignment_id: int):
    call = _staged(call_id, kind, "review.assign")
    assignment = get_or_404(ReviewAssignment, assignment_id)
    if assignment.call_id != call.id:
        abort(404)
    if ConfirmForm().validate_on_submit():
        name, acronym = assignment.reviewer.name, assignment.proposal.acronym
        try:
            remove_assignment(db(), actor(), assignment, reason=request.form.get("reason"))
            commit()
        except DomainError as err:
            refuse(None, err)
        else:
            flash(f"{name} is no longer assigned to {acronym}.", "success")
    else:
        _expired()
    return redirect(url_for(".reviews_assignments", call_id=call.id, kind=kind, page=_page_or_none()), code=303)


def _page_or_none() -> int | None:
    page = page_arg()
    return page if page > 1 else None


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=PREVIEW_SALT)


def _digest(preview: AssignmentPreview) -> str:
    pairs = sorted([p.proposal_id, p.reviewer_id] for p in preview.pairs)
    return hashlib.sha256(json.dumps(pairs).encode()).hexdigest()


def _params(auto: AutoForm) -> dict:
    return {"load_cap": auto.load_cap.data, "reviewers_per_proposal": auto.reviewers_per_proposal.data,
            "country_penalty": DEFAULT_COUNTRY_PENALTY if auto.country_penalty.data is None
            else float(auto.country_penalty.data), "method": auto.method.data or "flow"}


def _compute(call: Call, kind: str, params: dict) -> AssignmentPreview:
    return propose_assignment(db(), actor(), call, stage=kind, **params)


def _preview_page(call: Call, kind: str, preview: AssignmentPreview, params: dict, code: int = 200,
                  kept_id: int | None = None):
    token = _serializer().dumps({"call": call.id, "stage": kind, "params": params, "digest": _digest(preview),
                                 "summary": preview_summary(preview), "kept": kept_id})
    # The table shows 50 proposals' pairs a page; the summary, accept and discard concern the whole preview.
    # The other pages read the kept preview (`run`); when it is gone they compute it again from the
    # parameters, which the links carry too (it is deterministic, and accepting checks its digest).
    by_proposal: dict[int, list] = {}
    for pair in sorted(preview.pairs, key=lambda pair: (pair.reference, pair.reviewer_name)):
        by_proposal.setdefault(pair.proposal_id, []).append(pair)
    p = Window(len(by_proposal), page_arg())
    shown = [pair for pairs in p.slice(list(by_proposal.values())) for pair in pairs]
    page_args = dict(call_id=call.id, kind=kind, run=kept_id, **{k: v for k, v in params.items() if v is not None})
    return _render("reviews_preview.html", call, code, kind=kind, preview=preview, shown=shown, p=p,
                   page_args=page_args, form=PreviewDecisionForm(formdata=None, data={"token": token}),
                   fmt_score=fmt_score)


@bp.get("/calls/<int:call_id>/reviews/<kind>/assignments/preview")
def reviews_preview(call_id: int, kind: str):
    call = _staged(call_id, kind, "review.assign")
    run = positive_int(request.args.get("run"))
    kept = kept_preview(db(), actor(), call, kind, run)
    if kept is not None:
        preview, params = kept
        return _preview_page(call, kind, preview, params, kept_id=run)
    auto = AutoForm(request.args)
    if not auto.validate():
        return _assignments_page(call, kind, auto, 422)
    params = _params(auto)
    try:
        preview = _compute(call, kind, params)
        kept_id = keep_preview(db(), actor(), call, preview, params).id
        commit()
    except DomainError as err:
        refuse(auto, err)
        return _assignments_page(call, kind, auto, 422)
    return _preview_page(call, kind, preview, params, kept_id=kept_id)


def _shown_preview(call: Call, kind: str) -> dict | None:
    """What the signed token of the preview page says was shown (None, with a message, when it is not valid)."""
    form = PreviewDecisionForm()
    if not form.validate_on_submit():
        _expired()
        return None
    try:
        data = _serializer().loads(form.token.data or "", max_age=PREVIEW_MAX_AGE)
    except BadSignature:
        flash("This preview is no longer valid (older than a day, or altered); run the automatic assignment "
              "again.", "danger")
        return None
    if data.get("call") != call.id or data.get("stage") != kind:
        abort(400)
    return data


def _preview_from_token(call: Call, kind: str) -> tuple[AssignmentPreview | None, dict | None, bool]:
    """(the preview computed again, its parameters, whether it is the one that was shown)."""
    data = _shown_preview(call, kind)
    if data is None:
        return None, None, False
    preview = _compute(call, kind, data["params"])
    return preview, data["params"], _digest(preview) == data["digest"]


@bp.post("/calls/<int:call_id>/reviews/<kind>/assignments/preview/accept")
def reviews_preview_accept(call_id: int, kind: str):
    call = _staged(call_id, kind, "review.assign")
    back = redirect(url_for(".reviews_assignments", call_id=call.id, kind=kind), code=303)
    try:
        preview, params, same = _preview_from_token(call, kind)
        if preview is None:
            return back
        if not same:
            flash("The proposals, reviewers or conflicts changed since this preview, so the assignment changed: "
                  "here is the new preview. Nothing was written; check it and accept again.", "warning")
            return _preview_page(call, kind, preview, params, 409)
        created = accept_preview(db(), actor(), call, preview)
        forget_previews(db(), call, kind)  # every kept preview of the stage is out of date now
        n, people = len(created), len({a.reviewer_id for a in created})
        commit()
    except DomainError as err:
        refuse(None, err)
        return back
    flash(f"{n} assignment{'s' if n != 1 else ''} written; {people} reviewer{'s were' if people != 1 else ' was'} "
          "told by e-mail.", "success")
    return back


@bp.post("/calls/<int:call_id>/reviews/<kind>/assignments/preview/discard")
def reviews_preview_discard(call_id: int, kind: str):
    call = _staged(call_id, kind, "review.assign")
    back = redirect(url_for(".reviews_assignments", call_id=call.id, kind=kind), code=303)
    try:
        shown = _shown_preview(call, kind)
        if shown is None:
            return back
        discard_preview(db(), actor(), call, shown.get("summary") or {"stage": kind})
        if isinstance(shown.get("kept"), int):  # signed by us: the id of the kept preview
            forget_previews(db(), call, kind, shown["kept"])
        commit()
    except DomainError as err:
        refuse(None, err)
        return back
    flash("The automatic assignment was discarded; nothing was assigned.", "info")
    return back


# ---------------------------------------------------------------------------------------------------------
# Progress, reopening, reminders


class ReminderForm(FlaskForm):
    deadline = DateTimeLocalField("Review deadline", format=DATETIME_FORMAT,
                                  validators=[InputRequired("give the review deadline")])


class ReopenForm(FlaskForm):
    reason = TextAreaField("Why is the review reopened? (the reviewer reads it)", validators=[Length(max=2000)])


def _progress_page(call: Call, kind: str, form: ReminderForm, code: int = 200):
    deadline = review_deadline(db(), call, kind)
    now = utcnow()
    late_now = deadline is not None and now >= deadline
    p = Window(progress_size(db(), call, kind), page_arg())
    rows = review_progress(db(), call, kind, late_now=late_now, window=p)
    if form.deadline.data is None and deadline is not None and request.method == "GET":
        form.deadline.data = deadline.astimezone(ZoneInfo(call.time_zone)).replace(tzinfo=None)
    stage_def = call.settings.stage(kind)
    return _render("reviews_progress.html", call, code, kind=kind, rows=rows, form=form, deadline=deadline,
                   late_now=late_now, p=p, summary=progress_summary(db(), call, kind),
                   deadline_set=stage_def is not None and stage_def.review_deadline is not None)


@bp.get("/calls/<int:call_id>/reviews/<kind>/progress")
def reviews_progress(call_id: int, kind: str):
    call = _staged(call_id, kind, "review.assign")
    return _progress_page(call, kind, ReminderForm(formdata=None))


@bp.post("/calls/<int:call_id>/reviews/<kind>/progress/remind")
def reviews_remind(call_id: int, kind: str):
    call = _staged(call_id, kind, "review.assign")
    form = ReminderForm()
    if form.validate_on_submit():
        deadline = form.deadline.data.replace(tzinfo=ZoneInfo(call.time_zone))
        try:
            queued = send_reminders(db(), actor(), call, deadline=deadline, stage=kind)
            commit()
        except DomainError as err:
            refuse(form, err)
        else:
            if queued:
                flash(f"{queued} reminder{'s' if queued != 1 else ''} queued to reviewers with unfinished reviews.",
                      "success")
            else:
                flash("No reminder was queued: every review is submitted, or each reviewer was reminded today.",
                      "info")
            return redirect(url_for(".reviews_progress", call_id=call.id, kind=kind), code=303)
    return _progress_page(call, kind, form, 422)


def _review_of_call(review_id: int) -> Review:
    review = get_or_404(Review, review_id)
    allow("review.reopen", review.assignment)
    return review


def _reopen_page(review: Review, form: ReopenForm, code: int = 200):
    proposal = review.assignment.proposal
    return _render("reviews_reopen.html", proposal.call, code, review=review, proposal=proposal,
                   reviewer=review.assignment.reviewer, form=form)


@bp.route("/reviews/<int:review_id>/reopen", methods=["GET", "POST"])
def reviews_reopen(review_id: int):
    review = _review_of_call(review_id)
    if request.method == "GET":
        return _reopen_page(review, ReopenForm(formdata=None))
    form = ReopenForm()
    if form.validate_on_submit():
        proposal = review.assignment.proposal
        call_id, kind, acronym = proposal.call_id, review.stage, proposal.acronym
        name = review.assignment.reviewer.name
        try:
            reopen_review(db(), actor(), review, reason=form.reason.data or "")
            commit()
        except DomainError as err:
            refuse(form, err)
        else:
            flash(f"The review of {acronym} by {name} is reopened; {name} was told by e-mail.", "success")
            return redirect(url_for(".reviews_progress", call_id=call_id, kind=kind))
    return _reopen_page(db().get(Review, review_id), form, 422)


# ---------------------------------------------------------------------------------------------------------
# The panel: the table, the consensus, applying the decisions


@bp.get("/calls/<int:call_id>/reviews/<kind>/panel")
def reviews_panel(call_id: int, kind: str):
    call = _staged(call_id, kind, "panel.manage")
    try:
        p = Window(panel_size(db(), actor(), call, kind), page_arg())
        rows = panel_table(db(), actor(), call, kind, window=p)
    except AccessDenied as err:
        deny_access(err)
    return _render("reviews_panel.html", call, kind=kind, rows=rows, p=p, form=ConfirmForm(),
                   consensus_state=CONSENSUS_STATE[kind], frozen=frozen_problem(db(), call.id, kind),
                   recommendations=PANEL_RECOMMENDATIONS, fmt_score=fmt_score)


@bp.post("/calls/<int:call_id>/reviews/full/panel/apply")
def reviews_panel_apply(call_id: int):
    call = _staged(call_id, "full", "panel.manage")
    if ConfirmForm().validate_on_submit():
        try:
            moved = apply_panel_decisions(db(), actor(), call)
            commit()
        except DomainError as err:
            refuse(None, err)
        else:
            r, n = moved["recommend"], moved["not_recommend"]
            flash(f"The panel's decisions are applied: {r} proposal{'s' if r != 1 else ''} recommended, "
                  f"{n} not recommended.", "success")
    else:
        _expired()
    return redirect(url_for(".reviews_panel", call_id=call.id, kind="full"), code=303)


def consensus_form_class(call: Call):
    class ConsensusForm(FlaskForm):
        recommendation = RadioField("The panel's recommendation", choices=[
            SelectChoice(k, v) for k, v in PANEL_RECOMMENDATIONS.items()],
                                    validate_choice=False)
        summary = TextAreaField("The panel's summary (the applicants read it)", validators=[
            Length(max=SUMMARY_MAX, message=f"at most {SUMMARY_MAX:,} characters")])
        version = HiddenField()

        def expected_version(self) -> int | None:
            try:
                return int(self.version.data)
            except (TypeError, ValueError):
                return None

    for c in call.settings.evaluation.criteria:
        setattr(ConsensusForm, f"score_{c.key}", SelectField(
            f"Consensus score for {c.name}", choices=score_choices(c.labels), validate_choice=False))
    return ConsensusForm


def _consensus_page(proposal: Proposal, form, code: int = 200):
    call = proposal.call
    stage = proposal_stage(proposal)
    view = reviews_for(db(), actor(), proposal, stage)
    rebuttal = db().scalar(select(Rebuttal).where(Rebuttal.proposal_id == proposal.id)) if stage == "full" else None
    row = consensus_of(db(), proposal, stage)
    problem = None
    if proposal.state != CONSENSUS_STATE[stage]:
        problem = ("the panel's consensus is entered when the proposal is with the panel" if stage == "full"
                   else "the consensus is entered while the pre-proposal is under review")
    problem = problem or frozen_problem(db(), call.id, stage) or enough_reviews_problem(db(), proposal, stage)
    return _render("reviews_consensus.html", call, code, proposal=proposal, kind=stage, view=view,
                   rebuttal=rebuttal, consensus=row, aggregate=proposal_aggregate(db(), proposal, stage), form=form,
                   problem=problem, recommendations=PANEL_RECOMMENDATIONS, fmt_score=fmt_score,
                   criteria=call.settings.evaluation.criteria, evaluation=call.settings.evaluation)


def _consensus_proposal(proposal_id: int) -> Proposal:
    proposal = get_or_404(Proposal, proposal_id)
    allow("panel.manage", proposal)
    return proposal


@bp.get("/proposals/<int:proposal_id>/consensus")
def reviews_consensus(proposal_id: int):
    proposal = _consensus_proposal(proposal_id)
    form_class = consensus_form_class(proposal.call)
    row = consensus_of(db(), proposal)
    data = {}
    if row is not None:
        data = {f"score_{k}": f"{v:g}" for k, v in row.scores.items()}
        data.update(recommendation=row.recommendation, summary=row.summary, version=str(row.version))
    return _consensus_page(proposal, form_class(formdata=None, data=data))


@bp.post("/proposals/<int:proposal_id>/consensus")
def reviews_consensus_post(proposal_id: int):
    proposal = _consensus_proposal(proposal_id)
    call = proposal.call
    form = consensus_form_class(call)()
    if form.validate_on_submit():
        acronym, call_id, stage = proposal.acronym, call.id, proposal_stage(proposal)
        try:
            scores = {c.key: parse_score(getattr(form, f"score_{c.key}").data, f"score_{c.key}")
                      for c in call.settings.evaluation.criteria}
            row = enter_consensus(db(), actor(), proposal, scores=scores,
                                  recommendation=form.recommendation.data or "", summary=form.summary.data or "",
                                  expected_version=form.expected_version())
            total, label = row.weighted_total, PANEL_RECOMMENDATIONS[row.recommendation]
            commit()
        except DomainError as err:
            refuse(form, err)
        else:
            flash(f"The panel's consensus on {acronym} is recorded: total {fmt_score(total)}, {label.lower()}.",
                  "success")
            return redirect(url_for(".reviews_panel", call_id=call_id, kind=stage))
    elif "csrf_token" in form.errors:
        _expired()
    return _consensus_page(db().get(Proposal, proposal_id), form, 422)


# ---------------------------------------------------------------------------------------------------------
# The ranking list


def _ranking_context(call: Call, kind: str) -> dict:
    """The stage's ranking list and the places of the requested page (the window `p`)."""
    ranking = ranking_of(db(), call, kind)
    p = Window(ranking_size(db(), ranking) if ranking is not None else 0, page_arg())
    entries = ranked_proposals(db(), ranking, p) if ranking is not None else []
    approver = db().get(User, ranking.approved_by_id) if ranking is not None and ranking.approved_by_id else None
    return dict(p=p, ranking=ranking, entries=entries, approver=approver)


def _ranking_page(call: Call, kind: str, code: int = 200, ties=None, votes=None, vote_note: str = ""):
    return _render("reviews_ranking.html", call, code, kind=kind, form=ConfirmForm(), ties=ties or [],
                   votes=votes or {}, vote_note=vote_note, recommendations=PANEL_RECOMMENDATIONS,
                   fmt_score=fmt_score, criteria=call.settings.evaluation.criteria,
                   tie_break=[c.name for k in call.settings.evaluation.tie_break
                              for c in call.settings.evaluation.criteria if c.key == k],
                   **_ranking_context(call, kind))


@bp.get("/calls/<int:call_id>/reviews/<kind>/ranking")
def reviews_ranking(call_id: int, kind: str):
    call = _staged(call_id, kind, "panel.manage")
    return _ranking_page(call, kind)


@bp.post("/calls/<int:call_id>/reviews/<kind>/ranking/build")
def reviews_ranking_build(call_id: int, kind: str):
    call = _staged(call_id, kind, "panel.manage")
    if not ConfirmForm().validate_on_submit():
        _expired()
        return redirect(url_for(".reviews_ranking", call_id=call.id, kind=kind), code=303)
    votes = {}
    for name, value in request.form.items():
        if name.startswith("vote_") and positive_int(name[5:]) is not None:
            votes[positive_int(name[5:])] = value.strip()
    vote_note = (request.form.get("vote_note") or "").strip()
    panel_vote = None
    if votes:
        try:
            positions = {pid: int(v) for pid, v in votes.items()}
        except ValueError:
            flash("Give each tied proposal its place in the panel's vote as a whole number (1, 2, ...).", "danger")
            return _ranking_page(call, kind, 422, ties=_ties_from(votes), votes=votes, vote_note=vote_note)
        panel_vote = sorted(positions, key=lambda pid: (positions[pid], pid))
    try:
        ranking = build_ranking(db(), actor(), call, kind, panel_vote=panel_vote, vote_note=vote_note or None)
        n = len(ranking.entries)
        commit()
    except UnresolvedTie as err:
        refuse(None, err)
        return _ranking_page(call, kind, 422, ties=[[db().get(Proposal, i.proposal_id) for i in g]
                                                    for g in err.groups], votes=votes, vote_note=vote_note)
    except DomainError as err:
        refuse(None, err)
    else:
        flash(f"The ranking list is built: {n} proposal{'s' if n != 1 else ''} in a strict order, each with the "
              "reason for its place. It is a draft until approved.", "success")
    return redirect(url_for(".reviews_ranking", call_id=call.id, kind=kind), code=303)


def _ties_from(votes: dict) -> list[list[Proposal]]:
    return [[p for p in (db().get(Proposal, pid) for pid in votes) if p is not None]]


@bp.post("/calls/<int:call_id>/reviews/<kind>/ranking/approve")
def reviews_ranking_approve(call_id: int, kind: str):
    call = _staged(call_id, kind, "ranking.approve")
    if ConfirmForm().validate_on_submit():
        ranking = ranking_of(db(), call, kind)
        if ranking is None:
            flash("Build the ranking list first.", "danger")
        else:
            try:
                approve_ranking(db(), actor(), ranking)
                commit()
            except DomainError as err:
                refuse(None, err)
            else:
                flash("The ranking list is approved and frozen: it can no longer be rebuilt, and the panel's "
                      "consensus of this stage can no longer change.", "success")
    else:
        _expired()
    return redirect(url_for(".reviews_ranking", call_id=call.id, kind=kind), code=303)


# ---------------------------------------------------------------------------------------------------------
# Pre-stage invitations


class SendInvitationsForm(FlaskForm):
    reason = TextAreaField("Note for the audit log (optional)", validators=[Optional(), Length(max=2000)])


def _chosen_ids(values: list[str]) -> list[int]:
    out = []
    for v in values:
        try:
            out.append(int(v))
        except (TypeError, ValueError):
            continue
    return list(dict.fromkeys(out))


def _recommended(entries) -> list[int]:
    """The proposals the panel recommended: the choice on a first visit."""
    return [e.proposal_id for e in entries if e.recommendation is not None and e.recommendation != "not_recommended"]


def _invitations_context(call: Call) -> dict:
    """The approved pre-proposal ranking list and its places (reviews.ranking.RankedBrief, the whole list:
    the choice, the budgets and the counts are over all of it)."""
    ranking = ranking_of(db(), call, "pre")
    return {"ranking": ranking, "entries": ranking_digest(db(), ranking) if ranking is not None else []}


def _invitations_page(call: Call, chosen: list[int], form: SendInvitationsForm, code: int = 200, *,
                      ctx: dict | None = None):
    ctx = ctx or _invitations_context(call)
    entries = ctx["entries"]
    listed = {e.proposal_id for e in entries}
    chosen = [pid for pid in chosen if pid in listed]
    chosen_set = set(chosen)
    budget = invitation_budget(db(), call, chosen)
    decided = [e for e in entries if e.state in ("invited", "not_invited")]
    pending = [e for e in entries if e.state == "pre_review"]
    requested = sum(e.requested for e in entries if e.proposal_id in chosen_set)
    invited_now = [e.acronym for e in pending if e.proposal_id in chosen_set]
    # One page of the ranking list; the budgets, counts and the send form cover the whole list.
    p = Window(len(entries), page_arg())
    shown = p.slice(entries)
    pending_shown = [e for e in shown if e.state == "pre_review"]
    # Links and the update form carry the choice as one bit per proposal of the list (?sel=...): a list of
    # ids outgrew a URL at a few hundred; this stays about N/6 characters whatever is chosen.
    sel = _encode_choice(entries, chosen_set) if chosen_set != set(_recommended(entries)) else None
    page_args = dict(call_id=call.id, sel=sel) if sel else dict(call_id=call.id)
    return _render("reviews_invitations.html", call, code, kind="pre", chosen=chosen, chosen_set=chosen_set,
                   budget=budget, form=form, guidance=INVITATION_BUDGET_GUIDANCE, decided=decided, pending=pending,
                   requested=requested, invited_now=invited_now,
                   decided_shown=[e for e in shown if e.state in ("invited", "not_invited")],
                   pending_shown=pending_shown, sel=_encode_choice(entries, chosen_set), p=p, page_args=page_args,
                   recommendations=PANEL_RECOMMENDATIONS, fmt_score=fmt_score, **ctx)


def _id_set(name: str) -> set[int]:
    return set(_chosen_ids(request.args.getlist(name)))


def _encode_choice(entries, chosen: set[int]) -> str:
    """The chosen proposals as one bit per entry of the (frozen) ranking list, URL-safe base64."""
    bits = bytearray((len(entries) + 7) // 8)
    for i, e in enumerate(entries):
        if e.proposal_id in chosen:
            bits[i // 8] |= 1 << (i % 8)
    return base64.urlsafe_b64encode(bytes(bits)).decode().rstrip("=")


def _decode_choice(entries, sel: str) -> set[int] | None:
    """The proposals `sel` chooses; None when it does not fit this list (altered, or another list)."""
    try:
        bits = base64.urlsafe_b64decode(sel + "=" * (-len(sel) % 4))
    except (ValueError, TypeError):
        return None
    if len(bits) != (len(entries) + 7) // 8:
        return None
    return {e.proposal_id for i, e in enumerate(entries) if bits[i // 8] >> (i % 8) & 1}


@bp.get("/calls/<int:call_id>/reviews/pre/invitations")
def reviews_invitations(call_id: int):
    """The choice comes as a full list (?chosen=1&invite=..., what the send form posts), as bits over the
    list (?sel=..., plus the ticks of the page the update form was on: shown=... and invite=...), or, on a
    first visit, is the panel's recommendation."""
    call = _staged(call_id, "pre", "panel.manage")
    ctx = _invitations_context(call)
    entries = ctx["entries"]
    recommended = _recommended(entries)
    if request.args.get("chosen"):
        chosen = _chosen_ids(request.args.getlist("invite"))
    elif request.args.get("sel") is not None:
        base = _decode_choice(entries, request.args.get("sel", ""))
        chosen_set = set(recommended) if base is None else base
        ticked = _id_set("invite")
        for pid in _id_set("shown"):  # the rows of the page the form was on say what they are now
            if pid in ticked:
                chosen_set.add(pid)
            else:
                chosen_set.discard(pid)
        chosen = [e.proposal_id for e in entries if e.proposal_id in chosen_set]
    else:
        chosen = recommended
    return _invitations_page(call, chosen, SendInvitationsForm(formdata=None), ctx=ctx)


@bp.post("/calls/<int:call_id>/reviews/pre/invitations")
def reviews_invitations_send(call_id: int):
    call = _staged(call_id, "pre", "panel.manage")
    chosen = _chosen_ids(request.form.getlist("invite"))
    form = SendInvitationsForm()
    if form.validate_on_submit():
        try:
            outcome = send_invitations(db(), actor(), call, chosen, reason=form.reason.data)
            i, n = len(outcome.invited), len(outcome.not_invited)
            commit()
        except DomainError as err:
            refuse(form, err)
        else:
            flash(f"{i} proposal{'s are' if i != 1 else ' is'} invited to the full stage and {n} "
                  f"{'are' if n != 1 else 'is'} not invited; every coordinator is told by e-mail.", "success")
            return redirect(url_for(".reviews_invitations", call_id=call.id), code=303)
    elif "csrf_token" in form.errors:
        _expired()
    return _invitations_page(call, chosen, form, 422)


# ---------------------------------------------------------------------------------------------------------
# Exports


FIXED_LABELS = {
    "reference": "Reference", "acronym": "Acronym", "title": "Title", "reviewer": "Reviewer",
    "reviewer_email": "Reviewer e-mail", "assignment": "Assignment", "status": "Status",
    "submitted_at": "Submitted at (UTC)", "recommendation": "Recommendation", "state": "State",
    "completed_reviews": "Completed reviews", "mean_weighted_total": "Weighted total of the means",
    "max_total": "Maximum total", "meets_thresholds": "Meets every threshold", "consensus_total": "Consensus total",
    "panel_summary": "Panel summary", "requested_amount": "Requested (EUR)", "rank": "Rank",
    "coordinator": "Coordinator", "coordinator_organisation": "Coordinator organisation", "total": "Consensus total",
    "tie_break": "Why at this place", "list_status": "List status", "approved_at": "Approved at (UTC)",
}
SUFFIX_LABELS = {"score": "score", "comment": "comment", "mean": "mean", "min": "min", "max": "max",
                 "disagreement": "disagreement", "consensus": "consensus"}


def column_label(call: Call, key: str) -> str:
    if key in FIXED_LABELS:
        return FIXED_LABELS[key]
    for c in call.settings.evaluation.criteria:
        if key == c.key:
            return c.name
        for suffix, word in SUFFIX_LABELS.items():
            if key == f"{c.key}_{suffix}":
                return f"{c.name} {word}"
    return key


def _table(call: Call, rows: list[dict], keys: list[str] | None = None) -> tuple[list[str], list[list]]:
    keys = keys or (list(rows[0]) if rows else [])
    return [column_label(call, k) for k in keys], [[r.get(k) for k in keys] for r in rows]


def _empty_keys(call: Call, what: str) -> list[str]:
    crit = [c.key for c in call.settings.evaluation.criteria]
    if what == "reviews":
        return (["reference", "acronym", "reviewer", "reviewer_email", "assignment", "status", "submitted_at"]
                + [f"{k}_{s}" for k in crit for s in ("score", "comment")] + ["recommendation"])
    if what == "scores":
        return (["reference", "acronym", "title", "state", "completed_reviews"]
                + [f"{k}_{s}" for k in crit for s in ("mean", "min", "max", "disagreement")]
                + ["mean_weighted_total", "max_total", "meets_thresholds"] + [f"{k}_consensus" for k in crit]
                + ["consensus_total", "recommendation", "panel_summary", "requested_amount"])
    return (["rank", "reference", "acronym", "title", "coordinator", "coordinator_organisation"] + crit
            + ["total", "recommendation", "requested_amount", "tie_break", "list_status", "approved_at"])


EXPORTS = {"reviews": review_exports.review_rows, "scores": review_exports.score_rows,
           "ranking": review_exports.ranking_rows}


@bp.get("/calls/<int:call_id>/reviews/<kind>/export/<what>.<fmt>")
def reviews_export(call_id: int, kind: str, what: str, fmt: str):
    call = _staged(call_id, kind, "panel.manage")
    if what not in EXPORTS or fmt not in ("csv", "xlsx", "pdf") or (fmt == "pdf" and what != "ranking"):
        abort(404)
    try:
        rows = EXPORTS[what](db(), actor(), call, kind)
    except AccessDenied as err:
        deny_access(err)
    if fmt == "pdf":
        return _ranking_pdf(call, kind, rows)
    header, data = _table(call, rows, None if rows else _empty_keys(call, what))
    return table_response(fmt, f"{call.code}-{kind}-{what}", header, data, sheet=f"{kind} {what}")


def _ranking_pdf(call: Call, kind: str, rows: list[dict]) -> Response:
    ranking = ranking_of(db(), call, kind)
    html = render_template("secretariat/reviews_ranking_pdf.html", call=call, kind=kind, rows=rows,
                           ranking=ranking, stage_names=STAGE_NAMES, fmt_score=fmt_score,
                           criteria=call.settings.evaluation.criteria)
    pdf = html_to_pdf(html)
    return Response(pdf, mimetype="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="{call.code}-{kind}-ranking.pdf"',
        "Cache-Control": "no-store"})

