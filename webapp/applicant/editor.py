"""Applicant views: the dashboard, creating a proposal, the overview, the editor (texts and partners),
co-applicants and accepting an invitation.

Each view: allow(...) on the proposal, one operation, commit, redirect; a refusal is shown next to its
field with the typed input kept (422).
"""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from sqlalchemy import select
from sqlalchemy.orm.exc import StaleDataError

from webapp.applicant import bp
from webapp.applicant.editor_forms import OWN_FUNDING, InviteForm, NewProposalForm, PartnerForm, TextsForm
from webapp.auth import actor
from webapp.db import commit, db
from webapp.views import allow, get_or_404, refuse
from workflow import members as co_applicants
from workflow.access import can
from workflow.callconfig import PARTNER_TYPE_LABELS
from workflow.calls import get_call
from workflow.clock import utcnow
from workflow.countries import country_name
from workflow.errors import ChangedMeanwhile, DomainError
from workflow.models import Call, Partner, Proposal, ProposalInvitation, ProposalMember, User
from workflow.paging import positive_int
from workflow.proposals import (
    ACRONYM_MAX,
    COST_CATEGORIES,
    COST_CATEGORY_LABELS,
    TITLE_COLUMN_MAX,
    PartnerData,
    add_partner,
    current_stage,
    move_partner,
    partner_problems,
    proposal_violations,
    remove_partner,
    stage_closed_reason,
    stage_def,
    stage_kind,
    stage_name,
    start_proposal,
    text_limits,
    text_problems,
    update_partner,
    update_proposal,
)
from workflow.timefmt import format_time_left

# ---------------------------------------------------------------------------------------------------------
# Helpers


def _commit() -> None:
    try:
        commit()
    except StaleDataError:
        raise ChangedMeanwhile() from None


def _load(proposal_id: int, action: str) -> Proposal:
    proposal = get_or_404(Proposal, proposal_id)
    allow(action, proposal)
    return proposal


def _partner_of(proposal: Proposal, partner_id: int) -> Partner:
    partner = next((p for p in proposal.partners if p.id == partner_id), None)
    if partner is None:
        abort(404)
    return partner


def _stage_facts(call: Call, stage, now) -> dict:
    """The stage's deadline and how much time is left, for display."""
    if stage is None:
        return {"stage": None, "stage_label": "", "time_left": "", "stage_open": False}
    why = stage_closed_reason(call, stage, now)
    return {
        "stage": stage,
        "stage_label": stage_name(stage.kind, call).capitalize(),
        "stage_open": why is None,
        "time_left": format_time_left(stage.deadline - now) if why is None else why,
    }


def _violation_link(proposal: Proposal, field: str | None, editable: bool) -> str | None:
    if not editable or not field:
        return None
    if field.startswith("partners[") and "]" in field:
        number = field[len("partners["):field.index("]")]
        rest = field[field.index("]") + 1:].lstrip(".")
        partner = next((p for p in proposal.partners if str(p.position) == number), None)
        if partner is not None:
            anchor = {"own_funded": "funder", "budget": "budget"}.get(rest, rest or "organisation")
            return url_for(".partner_edit", proposal_id=proposal.id, partner_id=partner.id) + f"#{anchor}"
    if field == "partners":
        return url_for(".proposal", proposal_id=proposal.id) + "#partners"
    if field in ("acronym", "title", "abstract", "keywords", "topic", "duration_months"):
        return url_for(".edit", proposal_id=proposal.id) + f"#{field}"
    return None


def _context(proposal: Proposal, **extra) -> dict:
    """What every editor page shows: the stage and its deadline, rights, the rules and the violations."""
    call = proposal.call
    now = utcnow()
    me = actor()
    can_edit = can(me, "proposal.edit", proposal)
    can_manage = can(me, "proposal.manage_members", proposal)
    kind = stage_kind(proposal)
    violations = proposal_violations(db(), proposal, kind)
    items = [(v, _violation_link(proposal, v.field, bool(can_edit))) for v in violations]
    totals: dict[str, int] = {}
    for p in proposal.partners:
        key = p.funder.acronym if (p.funder is not None and not p.own_funded) else (
            "Own funding" if p.own_funded else "No funder chosen")
        totals[key] = totals.get(key, 0) + (p.requested_amount or 0)
    return {
        "proposal": proposal,
        "call": call,
        "actor": me,
        "now": now,
        "stage_kind": kind,
        "stage_def": stage_def(proposal),
        **_stage_facts(call, current_stage(proposal), now),
        "violations": violations,
        "blocking": [item for item in items if item[0].blocking],
        "warnings": [item for item in items if not item[0].blocking],
        "rules": call.settings.consortium,
        "can_edit": can_edit,
        "can_manage": can_manage,
        "is_coordinator": me is not None and proposal.coordinator_id == me.id,
        "funder_totals": sorted(totals.items()),
        "total_requested": sum(p.requested_amount or 0 for p in proposal.partners),
        "type_labels": PARTNER_TYPE_LABELS,
        "cost_labels": COST_CATEGORY_LABELS,
        "cost_categories": COST_CATEGORIES,
        **extra,
    }


# ---------------------------------------------------------------------------------------------------------
# Dashboard and a new proposal


@bp.route("/")
def dashboard():
    me = actor()
    if me is None:
        abort(401)
    now = utcnow()
    groups: list[tuple[Call, list[dict]]] = []
    for proposal in co_applicants.proposals_of(db(), me):
        call = proposal.call
        if not groups or groups[-1][0].id != call.id:
            groups.append((call, []))
        member = next((m for m in proposal.members if m.user_id == me.id), None)
        role = "Coordinator" if proposal.coordinator_id == me.id else (
            "Co-applicant (view and edit)" if member and member.can_edit else "Co-applicant (view only)")
        groups[-1][1].append({"proposal": proposal, "role": role,
                              **_stage_facts(call, current_stage(proposal), now)})
    open_calls = []
    for call in db().scalars(select(Call).order_by(Call.title, Call.id)):
        stage = call.first_stage if call.stages else None
        if stage is not None and stage_closed_reason(call, stage, now) is None:
            open_calls.append({"call": call, "may_start": can(me, "proposal.create", call),
                               **_stage_facts(call, stage, now)})
    return render_template("applicant/dashboard.html", groups=groups, open_calls=open_calls, now=now)


@bp.route("/calls/<code>/proposals/new", methods=["GET", "POST"])
def new_proposal(code: str):
    call = get_call(db(), code)
    if call is None:
        abort(404)
    allow("proposal.create", call)
    form = NewProposalForm()
    now = utcnow()
    stage = call.first_stage
    if form.validate_on_submit():
        try:
            proposal = start_proposal(db(), actor(), call, acronym=form.acronym.data, title=form.title.data or "")
            _commit()
        except DomainError as err:
            refuse(form, err)
        else:
            flash(f"Proposal {proposal.acronym} created ({proposal.reference}). "
                  "Next: add partner 1, your own organisation.", "success")
            return redirect(url_for(".proposal", proposal_id=proposal.id))
    status = 422 if request.method == "POST" else 200
    return render_template("applicant/edit.html", creating=True, form=form, call=call,
                           closed_reason=stage_closed_reason(call, stage, now),
                           title_limit=min(call.settings.stages[0].title_max_chars, TITLE_COLUMN_MAX),
                           acronym_limit=ACRONYM_MAX,
                           **_stage_facts(call, stage, now)), status


# ---------------------------------------------------------------------------------------------------------
# The overview and the texts


@bp.route("/proposals/<int:proposal_id>")
def proposal(proposal_id: int):
    proposal = _load(proposal_id, "proposal.view")
    return render_template("applicant/proposal.html", **_context(proposal))


@bp.route("/proposals/<int:proposal_id>/edit", methods=["GET", "POST"])
def edit(proposal_id: int):
    proposal = _load(proposal_id, "proposal.edit")
    form = TextsForm(obj=proposal)
    status = 200
    if request.method == "GET":
        form.version.data = str(proposal.version)
    else:
        form.validate()  # then the call's limits too, so that every problem shows at once
        changes = form.changes()
        for key, message in text_problems(proposal, {k: v for k, v in changes.items()
                                                     if not getattr(form, k).errors}).items():
            getattr(form, key).errors.append(message)
        if not any(f.errors for f in form):
            seen = request.form.get("version", "")  # the version the editor showed, if it sent one
            try:
                update_proposal(db(), actor(), proposal,
                                expected_version=positive_int(seen), **changes)
                _commit()
            except ChangedMeanwhile:
                refuse(form, ChangedMeanwhile())
                flash("Someone else saved this proposal while you were editing. Your text is kept below: "
                      "compare it with the overview, then save again to replace theirs.", "warning")
                form.version.data = str(proposal.version)
                status = 409
            except DomainError as err:
                refuse(form, err)
                status = 422
            else:
                flash("Draft saved.", "success")
                return redirect(url_for(".edit", proposal_id=proposal.id))
        else:
            status = 422
    return render_template("applicant/edit.html", creating=False, form=form,
                           limits=text_limits(proposal), **_context(proposal)), status


# ---------------------------------------------------------------------------------------------------------
# Partners


def _funder_groups(call: Call) -> list[tuple[str, str, list]]:
    """The call's funders grouped by country: [(country code, country name, [CallFunder, ...])]."""
    groups: dict[str, list] = {}
    for cf in call.funders:
        groups.setdefault(cf.funder.country, []).append(cf)
    return [(code, country_name(code), sorted(cfs, key=lambda cf: cf.funder.acronym))
            for code, cfs in sorted(groups.items(), key=lambda item: country_name(item[0]))]


def _partner_initial(partner: Partner | None, proposal: Proposal) -> dict:
    if partner is not None:
        data = {
            "organisation": partner.organisation, "partner_type": partner.partner_type,
            "country": partner.country, "region": partner.region or "",
            "funder": OWN_FUNDING if partner.own_funded else (str(partner.funder_id) if partner.funder_id else ""),
            "pi_name": partner.pi_name, "pi_email": partner.pi_email,
        }
        for c in COST_CATEGORIES:
            data[f"budget_{c}"] = (partner.budget or {}).get(c, 0)
        return data
    me = actor()
    if not proposal.partners and me is not None and proposal.coordinator_id == me.id:
        # Partner 1 is the coordinator's own organisation: start from what their account says.
        return {"organisation": me.organisation or "", "country": me.country or "",
                "pi_name": me.name, "pi_email": me.email}
    return {}


def _partner_page(proposal: Proposal, partner: Partner | None):
    call = proposal.call
    funder_ids = {cf.funder_id for cf in call.funders}
    if request.method == "POST":
        form = PartnerForm(funder_ids=funder_ids)
    else:
        form = PartnerForm(funder_ids=funder_ids, formdata=None, data=_partner_initial(partner, proposal))
        if partner is not None:
            form.version.data = str(partner.version)
    status = 200
    if request.method == "POST":
        form.validate_on_submit()
        funder_id, own = form.funder_choice()
        data = PartnerData(
            organisation=form.organisation.data or "", country=form.country.data or "",
            pi_name=form.pi_name.data or "", pi_email=form.pi_email.data or "",
            partner_type=form.partner_type.data or "", region=form.region.data or None,
            funder_id=funder_id, own_funded=own,
            budget={c: v for c, v in form.budget().items() if isinstance(v, int) and v},
        )
        for key, message in partner_problems(call, data).items():
            field = getattr(form, key, None)
            if field is not None and not field.errors:
                field.errors.append(message)
        if not any(f.errors for f in form):
            try:
                if partner is None:
                    saved = add_partner(db(), actor(), proposal, data)
                    done = "added"
                else:
                    seen = form.version.data or ""
                    saved = update_partner(db(), actor(), partner, data,
                                           expected_version=positive_int(seen))
                    done = "saved"
                label = f"Partner {saved.position} ({saved.organisation}) {done}."
                _commit()
            except ChangedMeanwhile:
                db().rollback()  # one message, the one that says what was kept
                flash("Someone else saved this partner while you were editing. What you typed is kept below: "
                      "compare it with the proposal's overview, then save again to replace theirs.", "warning")
                form.version.data = str(db().get(Partner, partner.id).version)
                status = 409
            except DomainError as err:
                refuse(form, err)
            else:
                flash(label, "success")
                return redirect(url_for(".proposal", proposal_id=proposal.id) + "#partners")
        if status != 409:
            status = 422
    position = partner.position if partner is not None else len(proposal.partners) + 1
    return render_template(
        "applicant/partner.html", form=form, partner=partner, position=position,
        funder_groups=_funder_groups(call), own_funding=OWN_FUNDING, form_total=form.total(),
        **_context(proposal),
    ), status


@bp.route("/proposals/<int:proposal_id>/partners/new", methods=["GET", "POST"])
def partner_new(proposal_id: int):
    proposal = _load(proposal_id, "proposal.edit")
    me = actor()
    if not proposal.partners and proposal.coordinator_id != me.id:
        flash("The coordinator adds partner 1, their own organisation, first.", "info")
        return redirect(url_for(".proposal", proposal_id=proposal.id))
    return _partner_page(proposal, None)


@bp.route("/proposals/<int:proposal_id>/partners/<int:partner_id>/edit", methods=["GET", "POST"])
def partner_edit(proposal_id: int, partner_id: int):
    proposal = _load(proposal_id, "proposal.edit")
    return _partner_page(proposal, _partner_of(proposal, partner_id))


@bp.route("/proposals/<int:proposal_id>/partners/<int:partner_id>/remove", methods=["POST"])
def partner_remove(proposal_id: int, partner_id: int):
    proposal = _load(proposal_id, "proposal.edit")
    partner = _partner_of(proposal, partner_id)
    label = f"Partner {partner.position} ({partner.organisation})"
    try:
        remove_partner(db(), actor(), partner)
        _commit()
    except DomainError as err:
        refuse(None, err)
    else:
        flash(f"{label} removed; the partners after it moved up.", "success")
    return redirect(url_for(".proposal", proposal_id=proposal_id) + "#partners", code=303)


@bp.route("/proposals/<int:proposal_id>/partners/<int:partner_id>/move", methods=["POST"])
def partner_move(proposal_id: int, partner_id: int):
    proposal = _load(proposal_id, "proposal.edit")
    partner = _partner_of(proposal, partner_id)
    try:
        move_partner(db(), actor(), partner, request.form.get("direction", ""))
        message = f"{partner.organisation} is now partner {partner.position}."
        _commit()
    except DomainError as err:
        refuse(None, err)
    else:
        flash(message, "success")
    return redirect(url_for(".proposal", proposal_id=proposal_id) + "#partners", code=303)


# ---------------------------------------------------------------------------------------------------------
# Co-applicants


def _invitation_link(token: str) -> str:
    base = current_app.config["JOINTCALL"]["base_url"].rstrip("/")
    return base + url_for(".accept_invitation", token=token)


@bp.route("/proposals/<int:proposal_id>/members", methods=["GET", "POST"])
def members(proposal_id: int):
    proposal = _load(proposal_id, "proposal.manage_members")
    form = InviteForm(formdata=None) if request.method == "GET" else None
    status = 200
    if request.method == "POST":
        action = request.form.get("action", "")
        if action == "invite":
            form = InviteForm()
            if form.validate_on_submit():
                try:
                    invitation = co_applicants.invite_co_applicant(
                        db(), actor(), proposal, email=form.email.data, can_edit=form.access.data == "edit",
                        link=_invitation_link)
                    address = invitation.email
                    _commit()
                except DomainError as err:
                    refuse(form, err)
                else:
                    flash(f"Invitation sent to {address}. The link works once, for 14 days.", "success")
                    return redirect(url_for(".members", proposal_id=proposal.id))
            status = 422
        elif action in ("revoke", "remove"):
            ident = request.form.get("id", "")
            try:
                if action == "revoke":
                    invitation = get_or_404(ProposalInvitation, ident)
                    if invitation.proposal_id != proposal.id:
                        abort(404)
                    co_applicants.revoke_invitation(db(), actor(), invitation)
                    message = f"The invitation to {invitation.email} was withdrawn; its link no longer works."
                else:
                    member = get_or_404(ProposalMember, ident)
                    if member.proposal_id != proposal.id:
                        abort(404)
                    name = member.user.name
                    co_applicants.remove_member(db(), actor(), member)
                    message = f"{name} is no longer a co-applicant of this proposal."
                _commit()
            except DomainError as err:
                refuse(None, err)
            else:
                flash(message, "success")
            return redirect(url_for(".members", proposal_id=proposal.id), code=303)
        else:
            abort(400)
    if form is None:
        form = InviteForm(formdata=None)
    invitations = co_applicants.pending_invitations(db(), proposal)
    taken = {proposal.coordinator.email.lower()} | {m.user.email.lower() for m in proposal.members} | {
        i.email.lower() for i in invitations}
    suggestions = []
    for p in proposal.partners:
        email = (p.pi_email or "").strip().lower()
        if email and email not in taken and email not in {s.pi_email.lower() for s in suggestions}:
            suggestions.append(p)
    return render_template("applicant/members.html", form=form, invitations=invitations,
                           suggestions=suggestions, **_context(proposal)), status


@bp.route("/invitations/<token>", methods=["GET", "POST"])
def accept_invitation(token: str):
    invitation = co_applicants.find_invitation(db(), token)
    me = actor()
    page = {"invitation": invitation, "token": token, "problem": None}
    if invitation is None:
        page["problem"] = "This invitation link is not valid. Check that you opened the whole link from the e-mail."
        return render_template("applicant/accept_invitation.html", **page), 404
    page.update(proposal=invitation.proposal, call=invitation.proposal.call, inviter_name=_inviter(invitation))
    problem = co_applicants.invitation_problem(invitation)
    if problem:
        page["problem"] = problem[0].upper() + problem[1:] + "."
        return render_template("applicant/accept_invitation.html", **page), 410
    if me is None:
        if request.method == "POST":
            abort(401)
        here = url_for(".accept_invitation", token=token)
        page["login_url"] = url_for("auth.login", next=here)
        register = next((e for e in ("auth.register", "auth.signup") if e in current_app.view_functions), None)
        page["register_url"] = url_for(register, next=here) if register else None
        return render_template("applicant/accept_invitation.html", **page)
    status = 200
    if request.method == "POST":
        try:
            member = co_applicants.accept_invitation(db(), me, token)
            proposal_id, acronym, can_edit = member.proposal_id, invitation.proposal.acronym, member.can_edit
            _commit()
        except DomainError as err:
            refuse(None, err)
            status = 409
        else:
            flash(f"You joined {acronym} as a co-applicant "
                  f"({'view and edit' if can_edit else 'view only'}).", "success")
            return redirect(url_for(".proposal", proposal_id=proposal_id))
    page["already"] = (invitation.proposal.coordinator_id == me.id
                       or any(m.user_id == me.id for m in invitation.proposal.members))
    return render_template("applicant/accept_invitation.html", **page), status


def _inviter(invitation: ProposalInvitation) -> str:
    user = db().get(User, invitation.invited_by_id)
    return user.name if user is not None else "The coordinator"
