"""Reviewer views. Thin: a form in, the access policy, one reviews operation, commit, redirect."""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import login_user
from sqlalchemy import select

from reviews import pool
from reviews.aggregation import proposal_aggregate
from reviews.common import proposal_stage
from reviews.conflicts import declare_conflict, live_count, proposals_for_declaration
from reviews.models import ReviewAssignment
from reviews.scoring import (
    RECOMMENDATIONS,
    edit_problem,
    my_assignments,
    parse_score,
    review_deadline,
    review_form,
    review_of,
    save_review,
    submit_review,
)
from reviews.visibility import reviews_for
from webapp.auth import LoginUser, _safe_next, actor
from webapp.db import commit, db
from webapp.reviewer import bp
from webapp.reviewer.forms import (
    ConfirmForm,
    ConflictForm,
    DeclarationForm,
    DeclineForm,
    FirstPasswordForm,
    ProfileForm,
    review_form_class,
)
from webapp.views import allow, deny_access, get_or_404, page_arg, refuse
from workflow import accounts
from workflow.access import DECLARATION_FIRST, can, is_reviewer
from workflow.callconfig import STAGE_NAMES
from workflow.documents import document_slots
from workflow.errors import AccessDenied, ChangedMeanwhile, DomainError
from workflow.models import Call, Proposal, Rebuttal
from workflow.paging import Window

NO_ASSIGNMENT = "no review of this proposal is assigned to you"


def _reviewer_call(call_id: int) -> Call:
    call = get_or_404(Call, call_id)
    me = actor()
    if me is None:
        abort(401)
    if not is_reviewer(me, call.id):
        abort(403, description="only reviewers of this call can see this page")
    return call


def _open(proposal_id: int) -> Proposal:
    """The proposal, if this person may read it and its reviews. Refused before anything of it is read:
    a conflicted (or unassigned) reviewer gets 403 "not available"; a reviewer who has not accepted the
    declaration is sent to it."""
    proposal = get_or_404(Proposal, proposal_id)
    decision = can(actor(), "proposal.reviews", proposal)
    if not decision:
        if actor() is not None and decision.reason == DECLARATION_FIRST:
            flash("Please accept the confidentiality and no-conflict declaration before reading any proposal.",
                  "warning")
            abort(redirect(url_for(".declaration", call_id=proposal.call_id, next=request.path)))
        deny_access(AccessDenied(decision.reason))
    return proposal


def _my_assignment(proposal: Proposal) -> ReviewAssignment:
    me = actor()
    assignment = db().scalar(select(ReviewAssignment).where(
        ReviewAssignment.proposal_id == proposal.id, ReviewAssignment.reviewer_id == me.id,
        ReviewAssignment.stage == proposal_stage(proposal)))
    if assignment is None:
        deny_access(AccessDenied(NO_ASSIGNMENT))
    allow("review.write", assignment)
    return assignment


def _status() -> int:
    return 422 if request.method == "POST" else 200


# ---------------------------------------------------------------------------------------------------------
# The calls this person reviews in


@bp.get("/")
def home():
    me = actor()
    if me is None:
        abort(401)
    call_ids = sorted({g.call_id for g in me.grants if g.role == "reviewer"})
    calls = [db().get(Call, cid) for cid in call_ids]
    if not calls:
        abort(403, description="you are not a reviewer in any call")
    return render_template("reviewer/home.html", calls=calls,
                           declared={c.id: pool.declaration_accepted(db(), me, c) for c in calls})


@bp.get("/calls/<int:call_id>")
def call_page(call_id: int):
    call = _reviewer_call(call_id)
    me = actor()
    declared = pool.declaration_accepted(db(), me, call)
    # Nothing of any proposal (not even its acronym) before the declaration is accepted.
    rows = my_assignments(db(), me, call) if declared else []
    due = {stage: review_deadline(db(), call, stage) for stage in sorted({r.stage for r in rows})}
    return render_template("reviewer/call.html", call=call, declared=declared, rows=rows,
                           profile=pool.profile_of(db(), me, call), stage_names=STAGE_NAMES,
                           due={stage: when for stage, when in due.items() if when is not None})


# ---------------------------------------------------------------------------------------------------------
# The mailed invitation


def _invitation_page(token: str, invitation, *, password_form=None, decline_form=None, code: int = 200):
    me = actor()
    user = invitation.user
    page = {"invitation": invitation, "call": invitation.call, "token": token, "problem": None,
            "decline_form": decline_form or DeclineForm(formdata=None), "password_form": None,
            "login_url": None, "wrong_account": False}
    if me is None:
        if user.password_hash is None:
            page["password_form"] = password_form or FirstPasswordForm(formdata=None)
        else:
            page["login_url"] = url_for("auth.login", next=url_for(".invitation", token=token))
    elif me.id != user.id:
        page["wrong_account"] = True
    return render_template("reviewer/invitation.html", **page), code


def _invitation_or_problem(token: str):
    invitation = pool.find_reviewer_invitation(db(), token)
    if invitation is None:
        return None, (render_template(
            "reviewer/invitation.html", invitation=None, token=token,
            problem="This invitation link is not valid. Check that you opened the whole link from the e-mail."), 404)
    problem = pool.invitation_problem(invitation)
    if problem:
        return None, (render_template("reviewer/invitation.html", invitation=invitation, call=invitation.call,
                                      token=token, problem=problem[0].upper() + problem[1:] + "."), 410)
    return invitation, None


@bp.route("/invitations/<token>", methods=["GET", "POST"])
def invitation(token: str):
    invitation, refused = _invitation_or_problem(token)
    if refused is not None:
        return refused
    if request.method == "GET":
        return _invitation_page(token, invitation)
    me = actor()
    password_form = None
    call_id, title = invitation.call_id, invitation.call.title
    try:
        if me is None:
            user = invitation.user
            if user.password_hash is not None:
                abort(401)
            password_form = FirstPasswordForm()
            if not password_form.validate_on_submit():
                return _invitation_page(token, invitation, password_form=password_form, code=422)
            accounts.set_first_password(db(), user, password_form.password.data or "",
                                        password_form.confirm.data or "", via="reviewer invitation")
            pool.accept_reviewer_invitation(db(), user, token)
            commit()
            session.clear()  # a fresh session at login: no fixation
            login_user(LoginUser(user))
        else:
            if not ConfirmForm().validate_on_submit():
                flash("The form expired; nothing was changed. Try again.", "danger")
                return _invitation_page(token, invitation, code=400)
            pool.accept_reviewer_invitation(db(), me, token)
            commit()
    except AccessDenied as err:
        refuse(None, err)
        return _invitation_page(token, db().get(type(invitation), invitation.id), code=403)
    except DomainError as err:
        refuse(password_form, err)
        invitation = db().get(type(invitation), invitation.id)
        if pool.invitation_problem(invitation):
            return _invitation_or_problem(token)[1]
        return _invitation_page(token, invitation, password_form=password_form, code=422)
    flash(f"Thank you: you are a reviewer in {title}. Please read and accept the declaration below before "
          "any proposal is shown to you.", "success")
    return redirect(url_for(".declaration", call_id=call_id))


@bp.post("/invitations/<token>/decline")
def decline(token: str):
    invitation, refused = _invitation_or_problem(token)
    if refused is not None:
        return refused
    form = DeclineForm()
    if not form.validate_on_submit():
        return _invitation_page(token, invitation, decline_form=form, code=422)
    title = invitation.call.title
    try:
        pool.decline_reviewer_invitation(db(), token, reason=form.reason.data)
        commit()
    except DomainError as err:
        refuse(form, err)
        return _invitation_page(token, db().get(type(invitation), invitation.id), decline_form=form, code=422)
    flash(f"You declined the invitation to review in {title}. Thank you for letting the secretariat know.",
          "info")
    return redirect(url_for("public.index"))


# ---------------------------------------------------------------------------------------------------------
# Declaration and profile


@bp.route("/calls/<int:call_id>/declaration", methods=["GET", "POST"])
def declaration(call_id: int):
    call = _reviewer_call(call_id)
    me = actor()
    form = DeclarationForm()
    nxt = _safe_next(request.args.get("next"))
    if request.method == "POST":
        if form.validate_on_submit():
            try:
                pool.accept_declaration(db(), me, call, confirmed=bool(form.confirm.data))
                commit()
            except DomainError as err:
                refuse(form, err)
            else:
                flash("Thank you: you accepted the confidentiality and no-conflict declaration.", "success")
                return redirect(nxt or url_for(".call_page", call_id=call.id))
    profile = pool.profile_of(db(), me, call)
    return render_template("reviewer/declaration.html", call=call, form=form, text=pool.DECLARATION_TEXT,
                           accepted_at=profile.declaration_accepted_at if profile else None), _status()


@bp.route("/calls/<int:call_id>/profile", methods=["GET", "POST"])
def profile(call_id: int):
    call = _reviewer_call(call_id)
    me = actor()
    current = pool.profile_of(db(), me, call)
    if request.method == "GET":
        form = ProfileForm(formdata=None, data={
            "keywords": "; ".join(current.keywords or []) if current else "",
            "organisation": (current.organisation if current else me.organisation) or "",
            "country": (current.country if current else me.country) or "",
            "email_domain": (current.email_domain if current else "") or "",
        })
    else:
        form = ProfileForm()
    form.set_countries()
    if request.method == "POST" and form.validate_on_submit():
        try:
            pool.update_profile(db(), me, call, me, keywords=form.keywords.data or "",
                                organisation=form.organisation.data, country=form.country.data,
                                email_domain=form.email_domain.data)
            commit()
        except DomainError as err:
            refuse(form, err)
        else:
            flash("Your profile is saved.", "success")
            return redirect(url_for(".call_page", call_id=call.id))
    return render_template("reviewer/profile.html", call=call, form=form), _status()


# ---------------------------------------------------------------------------------------------------------
# Declaring conflicts: acronym, title and partner organisations only


def _conflicts_page(call: Call, forms: dict, code: int = 200):
    # A refused declaration comes back to the page it was sent from (its form carries ?page=).
    p = Window(live_count(db(), call), page_arg())
    try:
        items = proposals_for_declaration(db(), actor(), call, p)
    except DomainError as err:
        deny_access(err)
    for item in items:
        form = forms.setdefault(item.proposal_id, ConflictForm(formdata=None, prefix=f"p{item.proposal_id}"))
        form.reason.label.text = f"What is your conflict with {item.acronym}?"
    return render_template("reviewer/conflicts.html", call=call, items=items, forms=forms, p=p), code


@bp.get("/calls/<int:call_id>/conflicts")
def conflicts(call_id: int):
    call = _reviewer_call(call_id)
    if not pool.declaration_accepted(db(), actor(), call):
        return redirect(url_for(".declaration", call_id=call.id, next=request.path))
    return _conflicts_page(call, {})


@bp.post("/calls/<int:call_id>/conflicts/<int:proposal_id>")
def declare(call_id: int, proposal_id: int):
    call = _reviewer_call(call_id)
    proposal = get_or_404(Proposal, proposal_id)
    if proposal.call_id != call.id:
        abort(404)
    allow("conflict.declare", proposal)
    form = ConflictForm(prefix=f"p{proposal.id}")
    if form.validate_on_submit():
        acronym = proposal.acronym
        try:
            declare_conflict(db(), actor(), proposal, reason=form.reason.data or "")
            commit()
        except DomainError as err:
            refuse(form, err)
        else:
            flash(f"Your conflict of interest with {acronym} is recorded. You will not be asked to review it "
                  "and it is not shown to you.", "success")
            return redirect(url_for(".conflicts", call_id=call.id, page=page_arg()))
    return _conflicts_page(call, {proposal.id: form}, 422)


# ---------------------------------------------------------------------------------------------------------
# A proposal: its text, the review form, its reviews and discussion


@bp.get("/proposals/<int:proposal_id>")
def proposal(proposal_id: int):
    p = _open(proposal_id)
    assignment = db().scalar(select(ReviewAssignment).where(
        ReviewAssignment.proposal_id == p.id, ReviewAssignment.reviewer_id == actor().id,
        ReviewAssignment.stage == proposal_stage(p)))
    review = review_of(db(), assignment) if assignment else None
    return render_template("reviewer/proposal.html", proposal=p, call=p.call, assignment=assignment,
                           review=review, slots=document_slots(db(), p), stage=proposal_stage(p),
                           stage_names=STAGE_NAMES)


def _review_data(review) -> dict:
    data = {"recommendation": (review.recommendation if review else None) or "",
            "version": str(review.version) if review else ""}
    scores = (review.scores if review else None) or {}
    comments = (review.comments if review else None) or {}
    for key, value in scores.items():
        data[f"score_{key}"] = f"{value:g}"
    for key, value in comments.items():
        data[f"comment_{key}"] = value
    return data


def _review_page(proposal: Proposal, assignment, form, code: int = 200):
    review = review_of(db(), assignment)
    why_not = edit_problem(proposal, assignment.stage, review)
    return render_template("reviewer/review.html", proposal=proposal, call=proposal.call, form=form,
                           criteria=review_form(proposal.call), review=review, why_not=why_not,
                           recommendations=RECOMMENDATIONS, stage_names=STAGE_NAMES,
                           stage=assignment.stage), code


def _missing_by_field(call: Call, form) -> dict[str, str]:
    """What submission still needs, as messages for the fields they belong to."""
    missing = {}
    for c in call.settings.evaluation.criteria:
        if not (getattr(form, f"score_{c.key}").data or "").strip():
            missing[f"score_{c.key}"] = f"give a score for {c.name}"
        if not (getattr(form, f"comment_{c.key}").data or "").strip():
            missing[f"comment_{c.key}"] = f"write a comment on {c.name}"
    if (form.recommendation.data or "") not in RECOMMENDATIONS:
        missing["recommendation"] = "choose a recommendation"
    return missing


@bp.route("/proposals/<int:proposal_id>/review", methods=["GET", "POST"])
def review(proposal_id: int):
    p = _open(proposal_id)
    assignment = _my_assignment(p)
    call = p.call
    form_class = review_form_class(review_form(call))
    if request.method == "GET":
        return _review_page(p, assignment, form_class(formdata=None, data=_review_data(review_of(db(), assignment))))
    form = form_class()
    existing = review_of(db(), assignment)
    if (why := edit_problem(p, assignment.stage, existing)) is not None:
        flash(why[0].upper() + why[1:] + ".", "danger")
        return _review_page(p, assignment, form_class(formdata=None, data=_review_data(existing)), 409)
    if not form.validate_on_submit():
        if "csrf_token" in form.errors:
            flash("The form expired; nothing was saved. Copy your text, reload the page and try again.", "danger")
        return _review_page(p, assignment, form, 422)
    action = request.form.get("action", "save")
    criteria = call.settings.evaluation.criteria
    try:
        scores = {c.key: parse_score(getattr(form, f"score_{c.key}").data, f"score_{c.key}") for c in criteria}
        comments = {c.key: getattr(form, f"comment_{c.key}").data or "" for c in criteria}
        saved = save_review(db(), actor(), assignment, scores=scores, comments=comments,
                            recommendation=form.recommendation.data or None, expected_version=form.expected_version())
        version = saved.version
        commit()  # the draft is kept even when submission is refused below
    except ChangedMeanwhile as err:
        refuse(form, err)
        current = review_of(db(), assignment)
        form.version.data = str(current.version) if current else ""
        return _review_page(p, assignment, form, 409)
    except DomainError as err:
        refuse(form, err)
        return _review_page(p, assignment, form, 422)
    form.version.data = str(version)
    if action != "submit":
        flash("Your draft is saved. Nothing is shared until you submit the review.", "success")
        return redirect(url_for(".review", proposal_id=p.id))
    missing = _missing_by_field(call, form)
    if missing:
        for name, message in missing.items():
            getattr(form, name).errors = [*getattr(form, name).errors, message]
        flash(f"Your draft is saved, but the review is not complete: {len(missing)} field"
              f"{'s need' if len(missing) != 1 else ' needs'} your attention (marked below).", "danger")
        return _review_page(p, assignment, form, 422)
    acronym = p.acronym
    try:
        submit_review(db(), actor(), assignment, expected_version=version)
        commit()
    except DomainError as err:
        refuse(form, err)
        return _review_page(p, assignment, form, 422)
    flash(f"Your review of {acronym} is submitted and locked. You can now read the other reviews.", "success")
    return redirect(url_for(".reviews", proposal_id=p.id))


@bp.get("/proposals/<int:proposal_id>/reviews")
def reviews(proposal_id: int):
    p = _open(proposal_id)
    try:
        view = reviews_for(db(), actor(), p)
    except AccessDenied as err:
        deny_access(err)
    return render_template("reviewer/reviews.html", proposal=p, call=p.call, view=view)


@bp.get("/proposals/<int:proposal_id>/discussion")
def discussion(proposal_id: int):
    """What the reviewers discuss before the panel: the spread of the submitted scores, where they
    disagree, and the applicants' rebuttal. Like the other reviews, only once one's own is submitted."""
    p = _open(proposal_id)
    try:
        view = reviews_for(db(), actor(), p)
    except AccessDenied as err:
        deny_access(err)
    aggregate = rebuttal = None
    if view.others_hidden is None:
        aggregate = proposal_aggregate(db(), p)
        if proposal_stage(p) == "full":
            rebuttal = db().scalar(select(Rebuttal).where(Rebuttal.proposal_id == p.id))
    return render_template("reviewer/discussion.html", proposal=p, call=p.call, view=view, aggregate=aggregate,
                           rebuttal=rebuttal)


def base_url() -> str:
    return current_app.config["JOINTCALL"]["base_url"].rstrip("/")


def invitation_link(token: str) -> str:
    """The absolute link mailed to an invited reviewer (used by the secretariat's pool page)."""
    return base_url() + url_for("reviewer.invitation", token=token)

