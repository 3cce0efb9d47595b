"""The access policy (workflow.access.can) per role, as a table.

One world per test: a call ("test-call") and a second call ("other-call"), a valid four-partner proposal
(two DFG-T partners, one ANR-T, one ISCIII-T; CIHR-T funds nobody in it), and one actor per role.
The table below says, per action, which actors are allowed on a draft; every other actor must be refused
with a reason that is a sentence and names nothing the actor may not know (funders, partners, people,
the proposal itself, conflicts).

Users are created without a password: hashing one (argon2) costs ~0.1 s and access does not need it.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass

import pytest

from tests import factories
from tests.factories import BASE_DEFINITION, PRE_CLOSED, PRE_OPEN
from workflow import access
from workflow.access import ACTIONS, TRIGGER_ACTIONS, can
from workflow.accounts import create_user, grant_role
from workflow.callconfig import CallDef
from workflow.calls import load_call
from workflow.errors import AccessDenied
from workflow.models import Call, EligibilityCheck, Partner, Proposal, ProposalMember
from workflow.operations import open_checks, sign_off, transition

# --------------------------------------------------------------------------------------------------
# Actors and the world they act in
# --------------------------------------------------------------------------------------------------

ANON = "anonymous"
OUTSIDER = "applicant outside the consortium"
COORD = "coordinator"
EDITOR = "member with edit rights"
READER = "read-only member"
OFFICER = "officer of DFG-T (funds partners)"
OTHER_OFFICER = "officer of CIHR-T (funds no partner)"
REVIEWER = "reviewer of the call"
SECRETARIAT = "secretariat of this call"
OTHER_SECRETARIAT = "secretariat of the other call"
ADMIN = "admin"

ACTORS = (ANON, OUTSIDER, COORD, EDITOR, READER, OFFICER, OTHER_OFFICER, REVIEWER, SECRETARIAT,
          OTHER_SECRETARIAT, ADMIN)
LOGGED_IN = frozenset(ACTORS) - {ANON}

_emails = itertools.count(1)


def person(session, name: str, *, confirmed: bool = True, **kwargs):
    return create_user(session, None, email=f"access{next(_emails)}@example.org", name=name,
                       confirmed=confirmed, **kwargs)


@dataclass
class World:
    call: Call
    other_call: Call
    proposal: Proposal
    actors: dict
    partner_dfg: Partner
    partner_anr: Partner

    def actor(self, key: str):
        return self.actors[key]

    def obj(self, key: str | None):
        return None if key is None else getattr(self, key)

    def secrets(self) -> list[str]:
        """What a refusal must never mention: funders, partners, PIs, the proposal, the people in it."""
        words = [self.proposal.acronym, self.proposal.title, self.proposal.reference, "conflict"]
        for cf in self.call.funders:
            words += [cf.funder.acronym, cf.funder.name]
        for p in self.proposal.partners:
            words += [p.organisation, p.pi_name, p.pi_email]
        for user in self.actors.values():
            if user is not None:
                words += [user.name, user.email]
        return words


def restricted_definition(code: str = "test-call") -> CallDef:
    """BASE_DEFINITION with officers_read_all_proposals = False."""
    data = copy.deepcopy(BASE_DEFINITION)
    data["code"] = code
    data["officers_read_all_proposals"] = False
    return CallDef.model_validate(data)


def build_world(session, definition: CallDef | None = None) -> World:
    call = load_call(session, None, definition).call if definition else factories.make_call(session)
    other_call = factories.make_call(session, code="other-call")
    coordinator = person(session, "Cora Coordinator")
    proposal = factories.valid_proposal(session, call, coordinator)
    actors = {
        ANON: None,
        OUTSIDER: person(session, "Otto Outsider"),
        COORD: coordinator,
        EDITOR: person(session, "Edda Editor"),
        READER: person(session, "Rita Reader"),
        OFFICER: person(session, "Oskar Officer"),
        OTHER_OFFICER: person(session, "Olivia Other-Officer"),
        REVIEWER: person(session, "Ravi Reviewer"),
        SECRETARIAT: person(session, "Sam Secretariat"),
        OTHER_SECRETARIAT: person(session, "Sasha Other-Secretariat"),
        ADMIN: person(session, "Ada Admin", is_admin=True),
    }
    proposal.members.append(ProposalMember(user_id=actors[EDITOR].id, can_edit=True))
    proposal.members.append(ProposalMember(user_id=actors[READER].id, can_edit=False))
    grant_role(session, None, actors[OFFICER], "officer", call.id, factories.funder(session, "DFG-T").id)
    grant_role(session, None, actors[OTHER_OFFICER], "officer", call.id, factories.funder(session, "CIHR-T").id)
    grant_role(session, None, actors[REVIEWER], "reviewer", call.id)
    grant_role(session, None, actors[SECRETARIAT], "secretariat", call.id)
    grant_role(session, None, actors[OTHER_SECRETARIAT], "secretariat", other_call.id)
    session.flush()
    by_funder = {p.funder.acronym: p for p in reversed(proposal.partners)}  # first partner per funder
    return World(call, other_call, proposal, actors, by_funder["DFG-T"], by_funder["ANR-T"])


def submit(session, world: World, frozen) -> None:
    frozen(PRE_OPEN)
    transition(session, world.actor(COORD), world.proposal.id, "submit")
    assert world.proposal.state == "submitted"


def assert_discreet_refusal(decision, world: World, who: str = "") -> None:
    """A refusal whose reason is a sentence and names nothing hidden."""
    assert not decision.allowed
    reason = decision.reason
    assert reason and reason == reason.strip(), f"{who}: empty or padded reason {reason!r}"
    assert reason[0].isalpha() and len(reason.split()) >= 3, f"{who}: not a sentence: {reason!r}"
    leaked = [w for w in world.secrets() if w and w.lower() in reason.lower()]
    assert not leaked, f"{who}: the reason {reason!r} mentions {leaked}"


@pytest.fixture
def world(session) -> World:
    return build_world(session)


@pytest.fixture
def reviewer_facts():
    """`set_reviewer_facts`, with the default plugged back in afterwards."""
    previous = access._reviewer_facts
    yield access.set_reviewer_facts
    access.set_reviewer_facts(previous)


def test_the_leak_check_catches_a_leak(world):
    """The helper above is what makes the refusal checks worth anything; make sure it bites."""
    for leaky in ("this partner is not funded by DFG-T", "the proposal has a conflict with you",
                  f"only {world.actor(COORD).name} can do this", "no"):
        with pytest.raises(AssertionError):
            assert_discreet_refusal(access.Decision(False, leaky), world)


# --------------------------------------------------------------------------------------------------
# The table: on a draft proposal, who may do what. Everyone not listed is refused.
# --------------------------------------------------------------------------------------------------

ON_DRAFT = [
    # action                       object          allowed
    ("call.view",                  "call",         frozenset(ACTORS)),
    ("call.manage",                "call",         {SECRETARIAT, ADMIN}),
    ("proposal.create",            "call",         LOGGED_IN),
    ("proposal.view",              "proposal",     {COORD, EDITOR, READER, SECRETARIAT, ADMIN}),
    ("proposal.edit",              "proposal",     {COORD, EDITOR}),
    ("proposal.manage_members",    "proposal",     {COORD}),
    ("proposal.submit",            "proposal",     {COORD}),
    ("proposal.withdraw",          "proposal",     {COORD, SECRETARIAT, ADMIN}),
    ("proposal.declare_eligible",  "proposal",     {SECRETARIAT, ADMIN}),
    ("partner.sign_off",           "partner_dfg",  {OFFICER}),
    ("partner.sign_off",           "partner_anr",  set()),
    ("partner.view_verdict",       "partner_dfg",  {OFFICER, SECRETARIAT, ADMIN}),
    ("eligibility.manage",         "proposal",     {SECRETARIAT, ADMIN}),
    ("audit.view",                 "call",         {SECRETARIAT, ADMIN}),
    ("admin",                      None,           {ADMIN}),
]  # fmt: skip


def test_the_table_covers_the_actions_named_in_the_brief():
    named = {"proposal.view", "proposal.edit", "proposal.manage_members", "proposal.submit",
             "proposal.withdraw", "proposal.declare_eligible", "call.manage", "partner.sign_off",
             "eligibility.manage", "audit.view", "admin", "proposal.create"}
    assert named <= set(ACTIONS)
    assert named <= {action for action, _, _ in ON_DRAFT}


@pytest.mark.parametrize(("action", "obj_key", "allowed"), ON_DRAFT,
                         ids=[f"{a}-{o}" for a, o, _ in ON_DRAFT])
def test_policy_on_a_draft(world, action, obj_key, allowed):
    obj = world.obj(obj_key)
    wrong = []
    for key in ACTORS:
        decision = can(world.actor(key), action, obj)
        if decision.allowed != (key in allowed):
            wrong.append(f"{key}: {'allowed' if decision.allowed else 'refused'} ({decision.reason!r})")
            continue
        if not decision.allowed:
            assert_discreet_refusal(decision, world, f"{action} / {key}")
    assert not wrong, f"{action} on {obj_key}: " + "; ".join(wrong)


def test_anonymous_is_asked_to_log_in(world):
    for action, obj_key, _ in ON_DRAFT:
        if action == "call.view":
            continue
        decision = can(None, action, world.obj(obj_key))
        assert not decision and "log in" in decision.reason, action


def test_the_other_calls_secretariat_manages_its_own_call(world):
    """The positive control for the refusals above: the grant is real, it is just for another call."""
    other = world.actor(OTHER_SECRETARIAT)
    assert can(other, "call.manage", world.other_call)
    assert can(other, "audit.view", world.other_call)
    assert not can(world.actor(SECRETARIAT), "call.manage", world.other_call)


def test_read_only_member_is_told_why(world):
    decision = can(world.actor(READER), "proposal.edit", world.proposal)
    assert not decision and "read-only" in decision.reason


def test_a_member_is_told_only_the_coordinator_can_submit(world):
    for key in (EDITOR, READER):
        decision = can(world.actor(key), "proposal.submit", world.proposal)
        assert not decision and "coordinator" in decision.reason


def test_creating_a_proposal_needs_a_confirmed_email(session, world):
    unconfirmed = person(session, "Una Unconfirmed", confirmed=False)
    decision = can(unconfirmed, "proposal.create", world.call)
    assert not decision and "confirm" in decision.reason


def test_lifecycle_triggers_are_only_for_coordinator_and_secretariat(world):
    """Every trigger action (proposal.<trigger>) answers for everyone; no officer, reviewer, outsider
    or member ever fires one."""
    triggers = list(TRIGGER_ACTIONS)
    assert {"proposal.submit", "proposal.withdraw", "proposal.declare_eligible"} <= set(triggers)
    never = (ANON, OUTSIDER, EDITOR, READER, OFFICER, OTHER_OFFICER, REVIEWER, OTHER_SECRETARIAT)
    for action in triggers:
        for key in never:
            decision = can(world.actor(key), action, world.proposal)
            assert_discreet_refusal(decision, world, f"{action} / {key}")
        assert can(world.actor(COORD), action, world.proposal) or can(world.actor(SECRETARIAT), action,
                                                                       world.proposal), action


@pytest.mark.parametrize("action", ["proposal.teleport", "nonsense", "call.delete", "", "proposal."])
def test_unknown_actions_raise_key_error(world, action):
    with pytest.raises(KeyError):
        can(world.actor(ADMIN), action, world.proposal)
    with pytest.raises(KeyError):
        can(None, action, world.proposal)


# --------------------------------------------------------------------------------------------------
# Officers: nothing before submission, then all proposals or only their own partners'
# --------------------------------------------------------------------------------------------------


def test_officers_cannot_view_a_draft(world):
    for key in (OFFICER, OTHER_OFFICER):
        decision = can(world.actor(key), "proposal.view", world.proposal)
        assert_discreet_refusal(decision, world, key)
        assert "submitted" in decision.reason


def test_officers_read_all_submitted_proposals_by_default(session, world, frozen):
    assert world.call.settings.officers_read_all_proposals is True
    submit(session, world, frozen)
    assert can(world.actor(OFFICER), "proposal.view", world.proposal)
    assert can(world.actor(OTHER_OFFICER), "proposal.view", world.proposal)


def test_only_the_concerned_funders_officer_reads_when_the_call_says_so(session, frozen):
    world = build_world(session, restricted_definition())
    assert world.call.settings.officers_read_all_proposals is False
    assert not can(world.actor(OFFICER), "proposal.view", world.proposal)  # still a draft
    submit(session, world, frozen)
    assert can(world.actor(OFFICER), "proposal.view", world.proposal)
    decision = can(world.actor(OTHER_OFFICER), "proposal.view", world.proposal)
    assert_discreet_refusal(decision, world, OTHER_OFFICER)


def test_after_submission_nobody_edits_but_the_consortium_still_reads(session, world, frozen):
    submit(session, world, frozen)
    for key in (COORD, EDITOR):
        decision = can(world.actor(key), "proposal.edit", world.proposal)
        assert_discreet_refusal(decision, world, key)
        assert "submitted" in decision.reason
    for key in (COORD, EDITOR, READER, SECRETARIAT, ADMIN):
        assert can(world.actor(key), "proposal.view", world.proposal), key
    for key in (OUTSIDER, REVIEWER, OTHER_SECRETARIAT, ANON):
        assert not can(world.actor(key), "proposal.view", world.proposal), key


# --------------------------------------------------------------------------------------------------
# Reviewers: facts from reviews/ decide, and a conflict is never explained
# --------------------------------------------------------------------------------------------------


def test_reviewer_is_refused_by_default(session, world, frozen):
    submit(session, world, frozen)
    decision = can(world.actor(REVIEWER), "proposal.view", world.proposal)
    assert_discreet_refusal(decision, world, REVIEWER)
    assert "not available" in decision.reason


def test_assigned_reviewer_may_view(session, world, frozen, reviewer_facts):
    submit(session, world, frozen)
    asked = []

    def facts(actor, proposal):
        asked.append((actor, proposal))
        return "assigned"

    reviewer_facts(facts)
    assert can(world.actor(REVIEWER), "proposal.view", world.proposal)
    assert asked == [(world.actor(REVIEWER), world.proposal)]
    # Being "assigned" by the plug-in makes nobody a reviewer who has no reviewer grant in the call.
    assert not can(world.actor(OUTSIDER), "proposal.view", world.proposal)
    # Viewing is all it grants.
    assert not can(world.actor(REVIEWER), "proposal.edit", world.proposal)
    assert not can(world.actor(REVIEWER), "partner.sign_off", world.partner_dfg)


def test_conflicted_reviewer_is_told_not_available_and_nothing_more(session, world, frozen, reviewer_facts):
    submit(session, world, frozen)
    reviewer_facts(lambda actor, proposal: "conflicted")
    decision = can(world.actor(REVIEWER), "proposal.view", world.proposal)
    assert_discreet_refusal(decision, world, REVIEWER)
    assert "not available" in decision.reason
    assert decision == can(world.actor(REVIEWER), "proposal.view", world.proposal)
    # The same words as a reviewer who is simply not assigned: the refusal reveals nothing.
    reviewer_facts(lambda actor, proposal: None)
    assert can(world.actor(REVIEWER), "proposal.view", world.proposal).reason == decision.reason


def test_reviewer_facts_default_is_restored(world):
    """Runs after the tests above: the fixture put the default back."""
    assert access._reviewer_facts(world.actor(REVIEWER), world.proposal) is None


# --------------------------------------------------------------------------------------------------
# Sign-off through EligibilityCheck objects
# --------------------------------------------------------------------------------------------------


@pytest.fixture
def checks(session, world, frozen) -> dict[str, list[EligibilityCheck]]:
    """The proposal submitted, the stage closed, the checks opened: {funder acronym or "formal": checks}."""
    submit(session, world, frozen)
    frozen(PRE_CLOSED)
    transition(session, world.actor(SECRETARIAT), world.proposal.id, "close_submission")
    assert world.proposal.state == "eligibility_check"
    by_funder: dict[str, list[EligibilityCheck]] = {}
    for check in open_checks(session, world.proposal, "pre"):
        key = check.partner.funder.acronym if check.partner else "formal"
        by_funder.setdefault(key, []).append(check)
    assert {k: len(v) for k, v in by_funder.items()} == {"formal": 1, "DFG-T": 2, "ANR-T": 1, "ISCIII-T": 1}
    return by_funder


def test_sign_off_via_eligibility_checks(world, checks):
    officer, other = world.actor(OFFICER), world.actor(OTHER_OFFICER)
    for check in checks["DFG-T"]:
        assert can(officer, "partner.sign_off", check)
        assert can(officer, "partner.view_verdict", check)
        assert can(world.actor(SECRETARIAT), "partner.view_verdict", check)
    for check in checks["ANR-T"] + checks["ISCIII-T"]:
        decision = can(officer, "partner.sign_off", check)
        assert_discreet_refusal(decision, world, "DFG-T officer on another funder's partner")
        assert "not funded by your organisation" in decision.reason
    for check in checks["DFG-T"] + checks["ANR-T"] + checks["ISCIII-T"]:
        for key in (ANON, OUTSIDER, COORD, EDITOR, READER, OTHER_OFFICER, REVIEWER, SECRETARIAT,
                    OTHER_SECRETARIAT, ADMIN):
            decision = can(world.actor(key), "partner.sign_off", check)
            assert_discreet_refusal(decision, world, f"{key} on a {check.partner.funder.acronym} check")
    assert "only funder officers" in can(world.actor(SECRETARIAT), "partner.sign_off", checks["DFG-T"][0]).reason
    assert not can(other, "partner.view_verdict", checks["DFG-T"][0])


def test_sign_off_operation_asks_the_policy(session, world, checks):
    officer = world.actor(OFFICER)
    with pytest.raises(AccessDenied, match="not funded by your organisation"):
        sign_off(session, officer, checks["ANR-T"][0].id, "eligible")
    with pytest.raises(AccessDenied):
        sign_off(session, world.actor(OTHER_OFFICER), checks["DFG-T"][0].id, "eligible")
    done = sign_off(session, officer, checks["DFG-T"][0].id, "eligible")
    assert done.status == "eligible" and done.decided_by_id == officer.id
    # The formal check is the secretariat's (eligibility.manage), not an officer's.
    with pytest.raises(AccessDenied, match="secretariat"):
        sign_off(session, officer, checks["formal"][0].id, "eligible")
    assert sign_off(session, world.actor(SECRETARIAT), checks["formal"][0].id, "eligible").status == "eligible"


def test_partner_sign_off_on_the_formal_check_is_refused_not_a_crash(world, checks):
    formal = checks["formal"][0]
    assert not can(world.actor(OFFICER), "partner.sign_off", formal)
    assert not can(world.actor(OFFICER), "partner.view_verdict", formal)
