"""The access policy: `can(actor, action, obj) -> Decision(allowed, reason)`. Nothing else decides access.

Views and operations both ask it. A refusal's reason is shown to the person, so it never reveals what
they may not know (a conflicted reviewer is told "not available", not who the conflict is with).

Actors: `None` (anonymous) or a `User` with its role grants. Roles per call: secretariat, officer of one
funder, reviewer; applicants are users linked to a proposal as coordinator or invited member; admin is
global. Reviewer facts (assignment, conflicts) live in reviews/, which plugs them in with
`set_reviewer_facts` so that this module stays the one place where the policy is written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from workflow.lifecycle import COORDINATOR, SECRETARIAT, TRANSITIONS
from workflow.models import Call, EligibilityCheck, Partner, Proposal, User

EDITABLE_STATES = ("draft", "full_draft")


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""

    def __bool__(self) -> bool:
        return self.allowed


ALLOW = Decision(True)


def deny(reason: str) -> Decision:
    return Decision(False, reason)


# ---------------------------------------------------------------------------------------------------------
# Facts about an actor


def _call_id(obj) -> int | None:
    if isinstance(obj, Call):
        return obj.id
    if isinstance(obj, Proposal):
        return obj.call_id
    if isinstance(obj, Partner):
        return obj.proposal.call_id
    if isinstance(obj, EligibilityCheck):
        return obj.proposal.call_id
    return getattr(obj, "call_id", None)


def is_admin(actor: User | None) -> bool:
    return bool(actor and actor.is_admin)


def is_secretariat(actor: User | None, call_id: int | None) -> bool:
    if actor is None or call_id is None:
        return False
    return actor.is_admin or any(g.role == "secretariat" and g.call_id == call_id for g in actor.grants)


def officer_funders(actor: User | None, call_id: int | None) -> set[int]:
    if actor is None or call_id is None:
        return set()
    return {g.funder_id for g in actor.grants if g.role == "officer" and g.call_id == call_id}


def is_reviewer(actor: User | None, call_id: int | None) -> bool:
    return bool(actor) and any(g.role == "reviewer" and g.call_id == call_id for g in actor.grants)


def is_coordinator(actor: User | None, proposal: Proposal) -> bool:
    return actor is not None and proposal.coordinator_id == actor.id


def membership(actor: User | None, proposal: Proposal):
    if actor is None:
        return None
    return next((m for m in proposal.members if m.user_id == actor.id), None)


def in_consortium(actor: User | None, proposal: Proposal) -> bool:
    return is_coordinator(actor, proposal) or membership(actor, proposal) is not None


# Reviewer facts come from reviews/: (actor, proposal) -> "assigned" | "conflicted" | None.
ReviewerFacts = Callable[[User, Proposal], str | None]
_reviewer_facts: ReviewerFacts = lambda actor, proposal: None  # noqa: E731


def set_reviewer_facts(fn: ReviewerFacts) -> None:
    global _reviewer_facts
    _reviewer_facts = fn


# ---------------------------------------------------------------------------------------------------------
# The policy

_TRIGGER_WHO = {}
for _row in TRANSITIONS:
    _TRIGGER_WHO.setdefault(_row.trigger, set()).update(_row.who)


def can(actor: User | None, action: str, obj=None) -> Decision:
    rule = _POLICY.get(action)
    if rule is None:
        if action.startswith("proposal.") and action[len("proposal."):] in _TRIGGER_WHO:
            return _can_fire(actor, action[len("proposal."):], obj)
        raise KeyError(f"the access policy has no rule for {action!r}")
    return rule(actor, obj)


def _needs_login(actor: User | None) -> Decision | None:
    return deny("please log in first") if actor is None else None


def _can_fire(actor: User | None, trigger: str, proposal: Proposal) -> Decision:
    if (d := _needs_login(actor)) is not None:
        return d
    who = _TRIGGER_WHO[trigger]
    if COORDINATOR in who and is_coordinator(actor, proposal):
        return ALLOW
    if SECRETARIAT in who and is_secretariat(actor, proposal.call_id):
        return ALLOW
    if COORDINATOR in who and in_consortium(actor, proposal):
        return deny("only the coordinator can do this for the consortium")
    if who == {SECRETARIAT}:
        return deny("only the call secretariat can do this")
    return deny("only the coordinator can do this")


def _call_view(actor, call: Call) -> Decision:
    return ALLOW


def _call_manage(actor, call: Call) -> Decision:
    if (d := _needs_login(actor)) is not None:
        return d
    return ALLOW if is_secretariat(actor, call.id) else deny("only the call secretariat can manage this call")


def _proposal_create(actor, call: Call) -> Decision:
    if (d := _needs_login(actor)) is not None:
        return d
    if actor.email_confirmed_at is None:
        return deny("confirm your e-mail address first (see the link we sent you)")
    return ALLOW


def _proposal_view(actor, proposal: Proposal) -> Decision:
    if (d := _needs_login(actor)) is not None:
        return d
    if in_consortium(actor, proposal) or is_secretariat(actor, proposal.call_id):
        return ALLOW
    funders = officer_funders(actor, proposal.call_id)
    if funders:
        if not proposal.submissions:
            return deny("this proposal has not been submitted")
        if proposal.call.settings.officers_read_all_proposals:
            return ALLOW
        if any(p.funder_id in funders for p in proposal.partners):
            return ALLOW
        return deny("this proposal has no partner funded by your organisation")
    if is_reviewer(actor, proposal.call_id):
        fact = _reviewer_facts(actor, proposal)
        if fact == "assigned":
            return ALLOW
        if fact == "needs_declaration":
            return deny(DECLARATION_FIRST)
        return deny(NOT_AVAILABLE)
    return deny("you are not part of this proposal's consortium")


def _proposal_edit(actor, proposal: Proposal) -> Decision:
    if (d := _needs_login(actor)) is not None:
        return d
    member = membership(actor, proposal)
    if not (is_coordinator(actor, proposal) or (member is not None and member.can_edit)):
        if member is not None:
            return deny("the coordinator gave you read-only access")
        return deny("only the consortium can edit this proposal")
    if proposal.state not in EDITABLE_STATES:
        return deny("a submitted proposal cannot be edited; reopen it first if the deadline allows")
    return ALLOW


def _proposal_manage_members(actor, proposal: Proposal) -> Decision:
    if (d := _needs_login(actor)) is not None:
        return d
    if is_coordinator(actor, proposal):
        return ALLOW
    return deny("only the coordinator can invite or remove co-applicants")


def _proposal_rebut(actor, proposal: Proposal) -> Decision:
    if (d := _needs_login(actor)) is not None:
        return d
    if is_coordinator(actor, proposal):
        return ALLOW
    if in_consortium(actor, proposal):
        return deny("only the coordinator can write the rebuttal for the consortium")
    return deny("you are not part of this proposal's consortium")


def _proposal_read_outcome(actor, proposal: Proposal) -> Decision:
    """Decisions and released reviews are for the consortium (and the secretariat)."""
    if (d := _needs_login(actor)) is not None:
        return d
    if in_consortium(actor, proposal) or is_secretariat(actor, proposal.call_id):
        return ALLOW
    return deny("you are not part of this proposal's consortium")


def _partner_sign_off(actor, obj) -> Decision:
    """An officer signs off only partners that request money from their own funder in this call."""
    if (d := _needs_login(actor)) is not None:
        return d
    if isinstance(obj, EligibilityCheck) and obj.partner_id is None:
        return deny("this is the call secretariat's own check")
    funder_id = obj.funder_id if isinstance(obj, EligibilityCheck) else obj.funder_id
    funders = officer_funders(actor, _call_id(obj))
    if not funders:
        return deny("only funder officers of this call can sign off partners")
    if funder_id not in funders:
        return deny("this partner is not funded by your organisation")
    return ALLOW


def _partner_view_verdict(actor, obj) -> Decision:
    if is_secretariat(actor, _call_id(obj)):
        return ALLOW
    return _partner_sign_off(actor, obj)


def _funding_view(actor, obj) -> Decision:
    if (d := _needs_login(actor)) is not None:
        return d
    call_id = _call_id(obj)
    if is_secretariat(actor, call_id) or officer_funders(actor, call_id):
        return ALLOW
    return deny("only the call secretariat and the funders' officers can see the funding scenario")


def _funding_increase_budget(actor, obj) -> Decision:
    """obj: anything with call_id and funder_id (a CallFunder)."""
    if (d := _needs_login(actor)) is not None:
        return d
    funders = officer_funders(actor, _call_id(obj))
    if is_secretariat(actor, _call_id(obj)) or obj.funder_id in funders:
        return ALLOW
    if funders:
        return deny("you can raise the budget of your own organisation only")
    return deny("only the call secretariat or the funder's officers can raise its budget")


def _funding_confirm(actor, obj) -> Decision:
    """obj: a FundingConfirmation (call_id, funder_id): only that funder's officers decide for their partners."""
    if (d := _needs_login(actor)) is not None:
        return d
    funders = officer_funders(actor, _call_id(obj))
    if obj.funder_id in funders:
        return ALLOW
    if funders:
        return deny("this funding is for another organisation to confirm")
    return deny("only the funder's officers can confirm the funding of its partners")


NOT_AVAILABLE = "this proposal is not available to you"
DECLARATION_FIRST = "accept the confidentiality and no-conflict declaration first"


def _review_write(actor, assignment) -> Decision:
    """A reviewer writes only their own review of a proposal they are assigned to and not conflicted with."""
    if (d := _needs_login(actor)) is not None:
        return d
    if assignment.reviewer_id != actor.id or not is_reviewer(actor, assignment.call_id):
        return deny("this review is assigned to someone else")
    fact = _reviewer_facts(actor, assignment.proposal)
    if fact == "needs_declaration":
        return deny(DECLARATION_FIRST)
    if fact != "assigned":
        return deny(NOT_AVAILABLE)
    return ALLOW


def _proposal_reviews(actor, proposal) -> Decision:
    """A proposal's reviews and panel discussion: the secretariat, and its non-conflicted reviewers (what
    each reviewer sees of the others' reviews is reviews.visibility's business)."""
    if (d := _needs_login(actor)) is not None:
        return d
    if is_secretariat(actor, proposal.call_id):
        return ALLOW
    if is_reviewer(actor, proposal.call_id):
        fact = _reviewer_facts(actor, proposal)
        if fact == "assigned":
            return ALLOW
        if fact == "needs_declaration":
            return deny(DECLARATION_FIRST)
        return deny(NOT_AVAILABLE)
    return deny("only the call secretariat and the proposal's reviewers can read its reviews")


def _conflict_declare(actor, proposal) -> Decision:
    if (d := _needs_login(actor)) is not None:
        return d
    if is_reviewer(actor, proposal.call_id):
        return ALLOW
    return deny("only reviewers of this call can declare a conflict of interest")


def _reviewer_profile(actor, profile) -> Decision:
    """A reviewer edits their own profile in a call; the secretariat any reviewer's."""
    if (d := _needs_login(actor)) is not None:
        return d
    if is_secretariat(actor, profile.call_id):
        return ALLOW
    if profile.user_id == actor.id and is_reviewer(actor, profile.call_id):
        return ALLOW
    return deny("this is another reviewer's profile")


def _secretariat_only(what: str):
    def rule(actor, obj) -> Decision:
        if (d := _needs_login(actor)) is not None:
            return d
        return ALLOW if is_secretariat(actor, _call_id(obj)) else deny(f"only the call secretariat can {what}")

    return rule


def _admin_only(actor, obj) -> Decision:
    if (d := _needs_login(actor)) is not None:
        return d
    return ALLOW if is_admin(actor) else deny("only an administrator can do this")


_POLICY: dict[str, Callable[[User | None, object], Decision]] = {
    "call.view": _call_view,
    "call.manage": _call_manage,
    "proposal.create": _proposal_create,
    "proposal.view": _proposal_view,
    "proposal.edit": _proposal_edit,
    "proposal.manage_members": _proposal_manage_members,
    # Uploading documents is editing; downloading them is reading the proposal.
    "proposal.upload": _proposal_edit,
    "document.download": _proposal_view,
    "proposal.rebut": _proposal_rebut,
    "proposal.read_outcome": _proposal_read_outcome,
    "proposal.approve_changes": _secretariat_only("approve consortium changes"),
    "partner.sign_off": _partner_sign_off,
    "partner.view_verdict": _partner_view_verdict,
    "eligibility.manage": _secretariat_only("run the eligibility step"),
    "audit.view": _secretariat_only("read the audit log"),
    "review.write": _review_write,  # obj: ReviewAssignment
    "proposal.reviews": _proposal_reviews,
    "conflict.declare": _conflict_declare,
    "reviewer.profile": _reviewer_profile,  # obj: ReviewerProfile
    "reviewer.manage": _secretariat_only("manage the reviewers"),
    "review.assign": _secretariat_only("assign reviewers"),
    "review.reopen": _secretariat_only("reopen a submitted review"),
    "conflict.override": _secretariat_only("override a conflict of interest"),
    "panel.manage": _secretariat_only("run the panel"),
    "ranking.approve": _secretariat_only("record the approval of the ranking list"),
    "funding.view": _funding_view,
    "funding.what_if": _secretariat_only("try budget increases"),
    "funding.approve": _secretariat_only("record the steering committee's approval of the funding list"),
    "funding.recompute": _secretariat_only("recompute the funding list"),
    "funding.increase_budget": _funding_increase_budget,
    "funding.confirm": _funding_confirm,
    "admin": _admin_only,
}

TRIGGER_ACTIONS = tuple(f"proposal.{t}" for t in _TRIGGER_WHO)
ACTIONS = tuple(_POLICY) + TRIGGER_ACTIONS
