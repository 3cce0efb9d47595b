"""Proposal transitions through workflow.operations, on the database (DOMAIN.md §8-§9, rules 1, 3, 12, 16,
19, 24).

Two sweeps over the lifecycle table: every (variant, trigger, source state) row fires when its guards
hold and lands where the table says, with its audit event; and every trigger that the table does not
offer from a state is refused with TransitionNotAllowed, leaving the proposal as it was. Then the guards'
and the access policy's refusals with their reasons, the side effects (submission snapshots, outbox rows),
atomicity of a failed operation, closing a stage, the funders' sign-off and optimistic concurrency.

The review guards (registered by reviews/ when the package is imported, as tests/conftest.py does) are
satisfied the way the secretariat and the reviewers satisfy them: reviewers assigned and their reviews
submitted (reviews.assignment, reviews.scoring), the panel's consensus entered (reviews.aggregation), the
pre-stage ranking list built and approved (reviews.ranking).

Factories create users with an argon2 password hash (~0.2 s each); the `_cheap_password_hashes` fixture
replaces the hash for these tests, which never log in.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import func, select

from reviews.aggregation import enter_consensus
from reviews.assignment import assign_reviewer
from reviews.common import REVIEW_STATE
from reviews.ranking import approve_ranking, build_ranking
from reviews.scoring import save_review, submit_review
from tests.factories import (
    FULL_CLOSED,
    FULL_OPEN,
    PRE_CLOSED,
    PRE_OPEN,
    funder,
    make_call,
    make_user,
    officer,
    secretariat,
    valid_proposal,
)
from tests.unit.reviews_helpers import make_reviewer
from workflow import accounts, audit, lifecycle, operations
from workflow.errors import (
    AccessDenied,
    ChangedMeanwhile,
    DomainError,
    GuardFailed,
    InvalidInput,
    TransitionNotAllowed,
)
from workflow.lifecycle import (
    ALL_VARIANTS,
    COORDINATOR,
    SECRETARIAT,
    TRANSITIONS,
    Variant,
    available_triggers,
    stage_of,
    states_for,
    transitions_for,
)
from workflow.models import (
    AuditEvent,
    AuditHead,
    CallStage,
    EligibilityCheck,
    OutboxMessage,
    Proposal,
    ProposalMember,
    Submission,
    User,
)
from workflow.operations import close_stage, decide_eligibility, open_checks, sign_off, transition
from workflow.proposals import PartnerData, add_partner, create_proposal, update_proposal

UTC = dt.UTC
SECOND = dt.timedelta(seconds=1)
# The test call's stage instants (Europe/Paris, CET in winter): pre / single stage, and full.
PRE_OPENS = dt.datetime(2030, 1, 10, 8, 0, tzinfo=UTC)  # 09:00 Paris
PRE_DEADLINE = dt.datetime(2030, 3, 5, 16, 0, tzinfo=UTC)  # 17:00 Paris
FULL_DEADLINE = dt.datetime(2030, 6, 20, 15, 0, tzinfo=UTC)  # 17:00 Paris, CEST

# What the reviewers write and the panel agrees (the test call: thresholds 3 per criterion, 10 in total).
REVIEW_SCORES = (
    {"excellence": 4.0, "impact": 3.5, "implementation": 4.5},
    {"excellence": 4.5, "impact": 3.0, "implementation": 4.0},
    {"excellence": 3.5, "impact": 4.0, "implementation": 4.0},
)
REVIEW_COMMENTS = {"excellence": "Original and well argued.", "impact": "A plausible route to patients.",
                   "implementation": "Feasible plan, realistic budget."}
CONSENSUS = {"excellence": 4.0, "impact": 3.5, "implementation": 4.0}
BELOW_A_THRESHOLD = {"excellence": 2.5, "impact": 4.5, "implementation": 4.5}  # total 11.5, Excellence < 3

TWO_STAGE = Variant(two_stage=True, rebuttal=True)
SINGLE_STAGE = Variant(two_stage=False, rebuttal=True)
ALL_TRIGGERS = tuple(dict.fromkeys(t.trigger for t in TRANSITIONS))


@pytest.fixture(autouse=True)
def _cheap_password_hashes(monkeypatch):
    monkeypatch.setattr(accounts, "hash_password", lambda password: "test-only-not-a-hash")


def variant_id(variant: Variant) -> str:
    return f"{'two' if variant.two_stage else 'single'}-stage-{'with' if variant.rebuttal else 'no'}-rebuttal"


# ---------------------------------------------------------------------------------------------------------
# Helpers


class World:
    """A call of one variant, its secretariat, and one valid draft proposal with its coordinator."""

    def __init__(self, session, variant: Variant = TWO_STAGE, **consortium):
        self.session = session
        self.variant = variant
        self.call = make_call(session, two_stage=variant.two_stage, rebuttal=variant.rebuttal, **consortium)
        self.sec = secretariat(session, self.call)
        self.proposal = valid_proposal(session, self.call)
        self.coordinator = self.proposal.coordinator
        session.commit()

    def put(self, state: str, proposal: Proposal | None = None) -> Proposal:
        """Set the state directly, as if the proposal had got there, and commit."""
        proposal = proposal or self.proposal
        proposal.state = state
        self.session.commit()
        return proposal

    def actor_for(self, who) -> object:
        return self.coordinator if COORDINATOR in who else self.sec

    def write_reviews(self, completed: int = 3, drafts: int = 0) -> None:
        """New reviewers are assigned by the secretariat and write their reviews (`completed` submitted,
        `drafts` only saved), in the state where the proposal's stage is reviewed (pre_review or
        under_review); then the proposal is put back where it was."""
        proposal = self.proposal
        back = proposal.state
        proposal.state = REVIEW_STATE[stage_of(back, self.variant)]
        self.session.flush()
        for n in range(completed + drafts):
            reviewer = make_reviewer(self.session, self.call, f"Reviewer {n + 1}")
            assignment = assign_reviewer(self.session, self.sec, proposal, reviewer)
            form = dict(scores=REVIEW_SCORES[n % 3], comments=REVIEW_COMMENTS, recommendation="recommended")
            (submit_review if n < completed else save_review)(self.session, reviewer, assignment, **form)
        proposal.state = back
        self.session.commit()

    def consensus(self, recommendation: str = "recommended", scores: dict = CONSENSUS) -> None:
        """The secretariat records the panel's consensus for the proposal's stage."""
        enter_consensus(self.session, self.sec, self.proposal, scores=scores, recommendation=recommendation,
                        summary="The panel discussed the reviews.")
        self.session.commit()

    def approve_pre_ranking(self) -> None:
        """Reviews, consensus, and the pre-stage ranking list built and approved: invitations may go out."""
        self.write_reviews()
        self.consensus()
        approve_ranking(self.session, self.sec, build_ranking(self.session, self.sec, self.call, "pre"))
        self.session.commit()

    def checks(self, statuses: dict | None = None, stage: str | None = None, proposal=None):
        """Open the checks of the proposal's stage; `statuses` maps an index (0 = formal check) to a status."""
        proposal = proposal or self.proposal
        stage = stage or stage_of(proposal.state, self.variant)
        checks = open_checks(self.session, proposal, stage)
        for i, status in (statuses or {}).items():
            checks[i].status = status
            checks[i].reason = "reason given in the test" if status == "ineligible" else None
        self.session.commit()
        return checks


def instant(variant: Variant, stage: str, *, open_: bool) -> dt.datetime:
    if not variant.two_stage or stage == "pre":
        return PRE_OPEN if open_ else PRE_CLOSED
    return FULL_OPEN if open_ else FULL_CLOSED


def count(session, model, **where) -> int:
    query = select(func.count()).select_from(model)
    for key, value in where.items():
        query = query.where(getattr(model, key) == value)
    return session.scalar(query)


def db_state(session, proposal_id: int) -> tuple[str, int]:
    return session.execute(select(Proposal.state, Proposal.version).where(Proposal.id == proposal_id)).one()


def audit_events(session, action: str, object_id: int | None = None) -> list[AuditEvent]:
    query = select(AuditEvent).where(AuditEvent.action == action)
    if object_id is not None:
        query = query.where(AuditEvent.object_id == object_id)
    return list(session.scalars(query.order_by(AuditEvent.seq)))


def footprint(session) -> dict[str, int]:
    """What an operation leaves behind."""
    return {
        "audit events": count(session, AuditEvent),
        "audit head": session.scalar(select(AuditHead.seq).where(AuditHead.id == 1)),
        "submissions": count(session, Submission),
        "outbox messages": count(session, OutboxMessage),
        "eligibility checks": count(session, EligibilityCheck),
    }


# ---------------------------------------------------------------------------------------------------------
# Every row of the table fires when its guards hold


def _row_cases():
    for variant in ALL_VARIANTS:
        for row in transitions_for(variant):
            for source in row.sources:
                yield pytest.param(variant, row, source,
                                   id=f"{variant_id(variant)}:{source}-{row.trigger}->{row.dest}")


def satisfy_guards(world: World, row: lifecycle.Transition, source: str, frozen) -> None:
    stage = stage_of(source, world.variant)
    now = instant(world.variant, stage, open_=False)
    for guard in row.guards:
        if guard == "stage_open":
            now = instant(world.variant, stage, open_=True)
        elif guard == "stage_closed":
            now = instant(world.variant, stage, open_=False)
        elif guard == "consortium_valid":
            pass  # valid_proposal breaks no rule
        elif guard == "checks_all_eligible":
            world.checks({i: "eligible" for i in range(5)}, stage)
        elif guard == "checks_found_ineligible":
            # The formal check: a partner found ineligible by its own funder may be replaceable instead.
            world.checks({0: "ineligible", 1: "eligible", 2: "eligible", 3: "eligible", 4: "eligible"}, stage)
        elif guard == "changes_approved":
            pass  # the consortium is the one submitted at the pre stage (or there was none): nothing changed
        elif guard == "enough_reviews":
            world.write_reviews(completed=3)
        elif guard == "consensus_recommends":
            world.consensus("recommended")
        elif guard == "consensus_not_recommended":
            world.consensus("not_recommended", BELOW_A_THRESHOLD)
        elif guard == "ranking_approved":
            world.approve_pre_ranking()
        else:
            pytest.fail(f"this test does not know how to satisfy the guard {guard!r}; teach satisfy_guards")
    frozen(now)


@pytest.mark.parametrize("variant, row, source", list(_row_cases()))
def test_each_row_fires_when_its_guards_hold(session, frozen, variant, row, source):
    world = World(session, variant)
    proposal = world.put(source)
    satisfy_guards(world, row, source, frozen)
    actor = world.actor_for(row.who)
    _, version = db_state(session, proposal.id)

    transition(session, actor, proposal.id, row.trigger, expected_version=version)
    session.commit()

    assert db_state(session, proposal.id) == (row.dest, version + 1)
    (event,) = audit_events(session, f"proposal.{row.trigger}", proposal.id)
    assert event.object_type == "proposal"
    assert event.actor_id == actor.id
    assert event.call_id == world.call.id
    assert event.before == {"state": source}
    assert event.after == {"state": row.dest}
    assert audit.verify(session).ok


@pytest.mark.parametrize("state", ["draft", "eligibility_check", "panel", "selected"])
def test_the_secretariat_can_withdraw_a_proposal_too(session, frozen, state):
    world = World(session)
    world.put(state)
    frozen(PRE_OPEN)
    transition(session, world.sec, world.proposal.id, "withdraw", reason="the consortium asked us to")
    session.commit()
    assert db_state(session, world.proposal.id)[0] == "withdrawn"
    (event,) = audit_events(session, "proposal.withdraw")
    assert event.actor_id == world.sec.id and event.reason == "the consortium asked us to"


# ---------------------------------------------------------------------------------------------------------
# Every trigger the table does not offer from a state is refused


def _state_cases():
    for variant in ALL_VARIANTS:
        for state in states_for(variant):
            yield pytest.param(variant, state.name, id=f"{variant_id(variant)}:{state.name}")


def _who(trigger: str) -> set[str]:
    return {w for t in TRANSITIONS if t.trigger == trigger for w in t.who}


@pytest.mark.parametrize("variant, state", list(_state_cases()))
def test_triggers_not_available_from_a_state_are_refused(session, frozen, variant, state):
    """One test per (variant, state); inside, every trigger of the whole table that this state lacks."""
    world = World(session, variant)
    proposal = world.put(state)
    frozen(PRE_OPEN)
    _, version = db_state(session, proposal.id)
    before = footprint(session)
    unavailable = [t for t in ALL_TRIGGERS if t not in available_triggers(variant, state)]
    assert unavailable

    for trigger in unavailable:
        with pytest.raises(TransitionNotAllowed) as refused:
            transition(session, world.actor_for(_who(trigger)), proposal.id, trigger)
        assert (refused.value.state, refused.value.trigger) == (state, trigger)
        message = str(refused.value)
        assert f"'{state}'" in message and f"'{trigger}'" in message, message
        session.rollback()

    assert db_state(session, proposal.id) == (state, version)
    assert footprint(session) == before


# ---------------------------------------------------------------------------------------------------------
# Guards refuse with reasons


def test_the_stage_instants_are_the_calls_paris_times_in_utc(session):
    world = World(session)
    pre = world.call.stage("pre")
    assert (pre.opens_at, pre.deadline) == (PRE_OPENS, PRE_DEADLINE)
    assert world.call.stage("full").deadline == FULL_DEADLINE


@pytest.mark.parametrize("variant", [TWO_STAGE, SINGLE_STAGE], ids=variant_id)
@pytest.mark.parametrize("now, on_time", [
    pytest.param(PRE_DEADLINE - SECOND, True, id="one-second-before-the-deadline"),
    pytest.param(PRE_DEADLINE, False, id="exactly-at-the-deadline"),
    pytest.param(PRE_DEADLINE + SECOND, False, id="one-second-after-the-deadline"),
])
def test_submit_at_the_deadline(session, frozen, variant, now, on_time):
    world = World(session, variant)
    frozen(now)
    if on_time:
        transition(session, world.coordinator, world.proposal.id, "submit")
        session.commit()
        assert db_state(session, world.proposal.id)[0] == "submitted"
        return
    with pytest.raises(GuardFailed) as refused:
        transition(session, world.coordinator, world.proposal.id, "submit")
    assert refused.value.reasons == ["the deadline passed on 5 March 2030, 17:00 CET"]
    assert str(refused.value) == "cannot 'submit' from 'draft': the deadline passed on 5 March 2030, 17:00 CET"
    session.rollback()
    assert db_state(session, world.proposal.id)[0] == "draft"


def test_submit_before_the_stage_opens_then_when_it_opens(session, frozen):
    world = World(session)
    frozen(PRE_OPENS - SECOND)
    with pytest.raises(GuardFailed) as refused:
        transition(session, world.coordinator, world.proposal.id, "submit")
    assert refused.value.reasons == ["submission opens on 10 January 2030, 09:00 CET"]
    session.rollback()

    frozen(PRE_OPENS)
    transition(session, world.coordinator, world.proposal.id, "submit")
    assert world.proposal.state == "submitted"


def test_submit_after_the_secretariat_closed_the_stage_early(session, frozen):
    world = World(session)
    world.call.stage("pre").closed_at = PRE_OPEN - dt.timedelta(days=1)
    session.commit()
    frozen(PRE_OPEN)
    with pytest.raises(GuardFailed, match="closed by the call secretariat"):
        transition(session, world.coordinator, world.proposal.id, "submit")


def test_submit_with_a_blocking_consortium_violation_names_it(session, frozen):
    call = make_call(session)
    coordinator = make_user(session, "Cora Coordinator")
    proposal = create_proposal(session, coordinator, call, acronym="TWO", title="Only two partners")
    update_proposal(session, coordinator, proposal, abstract="Two partners only.", duration_months=24)
    for org, country, acronym in (("Charité Berlin", "DE", "DFG-T"), ("Institut Curie", "FR", "ANR-T")):
        add_partner(session, coordinator, proposal, PartnerData(
            organisation=org, country=country, pi_name=f"PI {org}", pi_email=f"pi.{country.lower()}@example.org",
            funder_id=funder(session, acronym).id, budget={"personnel": 100_000},
        ))
    session.commit()
    frozen(PRE_OPEN)
    with pytest.raises(GuardFailed) as refused:
        transition(session, coordinator, proposal.id, "submit")
    message = str(refused.value)
    assert "at least 3 partners requesting funding are needed; you have 2" in message
    assert "partners from at least 3 participating countries are needed; you have 2" in message
    session.rollback()
    assert db_state(session, proposal.id)[0] == "draft"
    assert count(session, Submission) == 0


def test_submit_with_a_missing_abstract_names_it(session, frozen):
    world = World(session)
    world.proposal.abstract = ""
    session.commit()
    frozen(PRE_OPEN)
    with pytest.raises(GuardFailed, match="write the abstract"):
        transition(session, world.coordinator, world.proposal.id, "submit")


def test_close_submission_before_the_deadline_is_refused(session, frozen):
    world = World(session)
    world.put("submitted")
    frozen(PRE_DEADLINE - SECOND)
    with pytest.raises(GuardFailed) as refused:
        transition(session, world.sec, world.proposal.id, "close_submission")
    assert refused.value.reasons == ["submission is open until 5 March 2030, 17:00 CET"]


@pytest.mark.parametrize("pending, reason", [
    pytest.param(1, "1 eligibility check is still pending", id="one-pending"),
    pytest.param(2, "2 eligibility checks are still pending", id="two-pending"),
    pytest.param(5, "5 eligibility checks are still pending", id="all-pending"),
])
def test_declare_eligible_with_pending_checks_is_refused(session, frozen, pending, reason):
    world = World(session)
    world.put("eligibility_check")
    world.checks({i: "eligible" for i in range(5 - pending)})
    frozen(PRE_CLOSED)
    with pytest.raises(GuardFailed) as refused:
        transition(session, world.sec, world.proposal.id, "declare_eligible")
    assert refused.value.reasons == [reason]
    session.rollback()
    assert db_state(session, world.proposal.id)[0] == "eligibility_check"


def test_declare_eligible_without_any_check_is_refused(session, frozen):
    world = World(session)
    world.put("eligibility_check")
    frozen(PRE_CLOSED)
    with pytest.raises(GuardFailed, match="no eligibility checks have been opened"):
        transition(session, world.sec, world.proposal.id, "declare_eligible")


def test_declare_eligible_with_an_ineligible_partner_is_refused(session, frozen):
    world = World(session)
    world.put("eligibility_check")
    world.checks({0: "eligible", 1: "ineligible", 2: "eligible", 3: "eligible", 4: "eligible"})
    frozen(PRE_CLOSED)
    with pytest.raises(GuardFailed, match="a check found the proposal or a partner ineligible"):
        transition(session, world.sec, world.proposal.id, "declare_eligible")


def test_declare_ineligible_with_all_checks_eligible_is_refused(session, frozen):
    world = World(session)
    world.put("eligibility_check")
    world.checks({i: "eligible" for i in range(5)})
    frozen(PRE_CLOSED)
    with pytest.raises(GuardFailed) as refused:
        transition(session, world.sec, world.proposal.id, "declare_ineligible")
    assert refused.value.reasons == [
        "no check found the proposal or a partner ineligible (beyond partners that may be replaced)"]
    session.rollback()
    assert db_state(session, world.proposal.id)[0] == "eligibility_check"


def test_checks_of_the_other_stage_do_not_count(session, frozen):
    world = World(session)
    world.put("full_eligibility_check")
    world.checks({i: "eligible" for i in range(5)}, stage="pre")
    frozen(FULL_CLOSED)
    with pytest.raises(GuardFailed, match="no eligibility checks have been opened"):
        transition(session, world.sec, world.proposal.id, "declare_eligible")


def test_the_panel_needs_three_completed_reviews_and_says_how_many_there_are(session, frozen):
    """Rule 16: two submitted reviews and a draft are not enough; the refusal names the count."""
    world = World(session)
    world.put("panel")
    world.write_reviews(completed=2, drafts=1)
    frozen(FULL_CLOSED)
    _, version = db_state(session, world.proposal.id)
    before = footprint(session)
    for trigger in ("recommend", "not_recommend"):
        with pytest.raises(GuardFailed) as refused:
            transition(session, world.sec, world.proposal.id, trigger)
        assert refused.value.reasons == ["the panel needs at least 3 completed reviews; this proposal has 2",
                                         "the panel's consensus has not been entered"]
        session.rollback()
    # Nor can the panel's consensus be entered that would let it through.
    with pytest.raises(DomainError, match="at least 3 completed reviews; this proposal has 2"):
        world.consensus()
    session.rollback()
    assert db_state(session, world.proposal.id) == ("panel", version)
    assert footprint(session) == before


def test_a_consensus_below_a_criterion_threshold_cannot_recommend(session, frozen):
    """Rule 19: the panel cannot recommend below a threshold, so the proposal can only be not recommended."""
    world = World(session)
    world.put("panel")
    world.write_reviews(completed=3)
    frozen(FULL_CLOSED)
    with pytest.raises(InvalidInput, match="Excellence 2.5 is below its threshold 3"):
        world.consensus("recommended", BELOW_A_THRESHOLD)
    session.rollback()
    world.consensus("not_recommended", BELOW_A_THRESHOLD)
    with pytest.raises(GuardFailed) as refused:
        transition(session, world.sec, world.proposal.id, "recommend")
    assert refused.value.reasons == ["the panel did not recommend this proposal"]
    session.rollback()
    assert db_state(session, world.proposal.id)[0] == "panel"
    transition(session, world.sec, world.proposal.id, "not_recommend")
    session.commit()
    assert db_state(session, world.proposal.id)[0] == "not_recommended"
    # ... and a not recommended proposal has no way to funding (rule 19).
    assert not {"recommend", "select", "fund"} & set(available_triggers(world.variant, "not_recommended"))


def test_a_recommending_consensus_cannot_not_recommend(session, frozen):
    world = World(session, SINGLE_STAGE)
    world.put("panel")
    world.write_reviews(completed=3)
    world.consensus("recommended_if_funds")
    frozen(FULL_CLOSED)
    with pytest.raises(GuardFailed) as refused:
        transition(session, world.sec, world.proposal.id, "not_recommend")
    assert refused.value.reasons == ["the panel recommended this proposal"]
    session.rollback()
    transition(session, world.sec, world.proposal.id, "recommend")
    assert world.proposal.state == "recommended"


@pytest.mark.parametrize("trigger", ["invite", "not_invite"])
def test_invitations_wait_for_the_approved_pre_stage_ranking(session, frozen, trigger):
    world = World(session)
    world.put("pre_review")
    world.write_reviews(completed=3)
    world.consensus()
    frozen(PRE_CLOSED)

    def refused_reasons() -> list[str]:
        with pytest.raises(GuardFailed) as refused:
            transition(session, world.sec, world.proposal.id, trigger)
        session.rollback()
        return refused.value.reasons

    assert refused_reasons() == ["the pre-stage ranking list has not been approved"]
    ranking = build_ranking(session, world.sec, world.call, "pre")
    session.commit()
    assert refused_reasons() == ["the pre-stage ranking list has not been approved"]  # a draft list is not enough
    assert db_state(session, world.proposal.id)[0] == "pre_review"
    approve_ranking(session, world.sec, ranking)
    transition(session, world.sec, world.proposal.id, trigger)
    session.commit()
    assert db_state(session, world.proposal.id)[0] == {"invite": "invited", "not_invite": "not_invited"}[trigger]


# ---------------------------------------------------------------------------------------------------------
# Who may fire


def _member(session, world):
    user = make_user(session, "Mia Member")
    session.add(ProposalMember(proposal_id=world.proposal.id, user_id=user.id, can_edit=True))
    session.commit()
    session.refresh(world.proposal)
    return user


@pytest.mark.parametrize("who, reason", [
    pytest.param("another user", "only the coordinator can do this", id="another-user"),
    pytest.param("invited member", "only the coordinator can do this for the consortium", id="invited-member"),
    pytest.param("secretariat", "only the coordinator can do this", id="the-secretariat"),
    pytest.param("anonymous", "please log in first", id="anonymous"),
])
def test_only_the_coordinator_can_submit(session, frozen, who, reason):
    world = World(session)
    actor = {
        "another user": lambda: make_user(session, "Otto Other"),
        "invited member": lambda: _member(session, world),
        "secretariat": lambda: world.sec,
        "anonymous": lambda: None,
    }[who]()
    session.commit()
    frozen(PRE_OPEN)
    before = footprint(session)
    with pytest.raises(AccessDenied) as refused:
        transition(session, actor, world.proposal.id, "submit")
    assert str(refused.value) == reason
    session.rollback()
    assert db_state(session, world.proposal.id)[0] == "draft"
    assert footprint(session) == before


def test_an_invited_member_cannot_withdraw_either(session, frozen):
    world = World(session)
    member = _member(session, world)
    frozen(PRE_OPEN)
    with pytest.raises(AccessDenied, match="only the coordinator"):
        transition(session, member, world.proposal.id, "withdraw")


SECRETARIAT_TRIGGERS = [t for t in ALL_TRIGGERS if _who(t) == {SECRETARIAT}]


@pytest.mark.parametrize("trigger", SECRETARIAT_TRIGGERS)
def test_a_coordinator_cannot_fire_secretariat_triggers(session, frozen, trigger):
    row = next(t for t in TRANSITIONS if t.trigger == trigger)
    world = World(session, Variant(two_stage="single_stage" not in row.needs, rebuttal="no_rebuttal" not in row.needs))
    world.put(row.sources[0])
    frozen(FULL_CLOSED)
    with pytest.raises(AccessDenied) as refused:
        transition(session, world.coordinator, world.proposal.id, trigger)
    assert str(refused.value) == "only the call secretariat can do this"
    session.rollback()
    assert db_state(session, world.proposal.id)[0] == row.sources[0]


def test_secretariat_of_another_call_cannot_fire(session, frozen):
    world = World(session)
    other_call = make_call(session, code="other-call")
    outsider = secretariat(session, other_call)
    world.put("submitted")
    frozen(PRE_CLOSED)
    with pytest.raises(AccessDenied, match="only the call secretariat"):
        transition(session, outsider, world.proposal.id, "close_submission")


# ---------------------------------------------------------------------------------------------------------
# Effects


def test_submit_writes_a_snapshot_and_a_receipt_in_the_same_transaction(session, session_factory, frozen):
    world = World(session)
    frozen(PRE_OPEN)
    transition(session, world.coordinator, world.proposal.id, "submit")

    (sub,) = session.scalars(select(Submission)).all()
    (msg,) = session.scalars(select(OutboxMessage)).all()
    other = session_factory()
    try:  # nothing is visible outside the transaction before the commit
        assert count(other, Submission) == count(other, OutboxMessage) == 0
        other.rollback()
        session.commit()
        assert count(other, Submission) == count(other, OutboxMessage) == 1
    finally:
        other.close()

    assert (sub.proposal_id, sub.stage, sub.number) == (world.proposal.id, "pre", 1)
    assert sub.submitted_by_id == world.coordinator.id
    assert sub.submitted_at == PRE_OPEN
    assert re.fullmatch(r"[0-9a-f]{64}", sub.sha256)
    assert sub.sha256 == operations.content_hash(sub.content)
    assert sub.content["acronym"] == "PRECISE"
    assert [p["organisation"] for p in sub.content["partners"]] == [
        "Charité Berlin", "Institut Curie", "Hospital Clínic", "Universität Heidelberg"]
    assert sub.previous_stage_submission_id is None

    assert msg.kind == "submission_receipt"
    assert msg.to_address == world.coordinator.email
    assert msg.status == "queued"
    assert msg.dedup_key == f"receipt:submission:{sub.id}"
    assert sub.sha256 in msg.body_text
    assert world.proposal.reference in msg.body_text
    assert msg.attachments == [{"kind": "receipt", "submission_id": sub.id}]


def test_reopen_and_resubmit_keeps_the_first_submission(session, frozen):
    world = World(session)
    pid = world.proposal.id
    frozen(PRE_OPEN)
    transition(session, world.coordinator, pid, "submit")
    session.commit()
    first = session.scalars(select(Submission)).one()
    first_hash = first.sha256

    frozen(PRE_OPEN + dt.timedelta(days=1))
    transition(session, world.coordinator, pid, "reopen")
    update_proposal(session, world.coordinator, world.proposal, title="Precision oncology for everyone")
    transition(session, world.coordinator, pid, "submit")
    session.commit()

    subs = session.scalars(select(Submission).order_by(Submission.id)).all()
    assert [(s.stage, s.number) for s in subs] == [("pre", 1), ("pre", 2)]
    assert subs[0].sha256 == first_hash and subs[0].content["title"] == "Precision oncology for all"
    assert subs[1].content["title"] == "Precision oncology for everyone"
    assert subs[1].sha256 != first_hash
    receipts = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "submission_receipt")).all()
    assert sorted(m.dedup_key for m in receipts) == [f"receipt:submission:{s.id}" for s in subs]
    assert [e.after for e in audit_events(session, "proposal.reopen")] == [{"state": "draft"}]


def _through_pre_stage(session, world, frozen) -> Submission:
    """Submit the pre-proposal, close the stage, find it eligible, invite it."""
    pid = world.proposal.id
    frozen(PRE_OPEN)
    transition(session, world.coordinator, pid, "submit")
    session.commit()
    frozen(PRE_CLOSED)
    assert close_stage(session, world.sec, world.call, "pre") == {"to_eligibility": 1, "not_submitted": 0}
    for check in session.scalars(select(EligibilityCheck).where(EligibilityCheck.proposal_id == pid)):
        check.status = "eligible"
    decide_eligibility(session, world.sec, pid)
    session.commit()
    world.approve_pre_ranking()
    transition(session, world.sec, pid, "invite")
    session.commit()
    return session.scalars(select(Submission).where(Submission.stage == "pre")).one()


def test_submit_full_links_to_the_pre_proposal_submission(session, frozen):
    world = World(session)
    pre = _through_pre_stage(session, world, frozen)
    frozen(FULL_OPEN)
    transition(session, world.coordinator, world.proposal.id, "start_full")
    transition(session, world.coordinator, world.proposal.id, "submit_full")
    session.commit()

    full = session.scalars(select(Submission).where(Submission.stage == "full")).one()
    assert full.number == 1
    assert full.previous_stage_submission_id == pre.id
    assert db_state(session, world.proposal.id)[0] == "full_submitted"
    assert count(session, OutboxMessage, kind="submission_receipt") == 2


def test_invite_queues_an_invitation(session, frozen):
    world = World(session)
    world.put("pre_review")
    world.approve_pre_ranking()
    frozen(PRE_CLOSED)
    transition(session, world.sec, world.proposal.id, "invite")
    session.commit()
    (msg,) = session.scalars(select(OutboxMessage).where(OutboxMessage.kind != "review_assignment")).all()
    assert msg.kind == "invitation"
    assert msg.to_address == world.coordinator.email
    assert msg.dedup_key == f"invitation:proposal:{world.proposal.id}:invited"
    assert "invited" in msg.subject and world.proposal.acronym in msg.subject


@pytest.mark.parametrize("trigger, kind", [("not_invite", "decision"), ("declare_ineligible", "decision")])
def test_negative_decisions_queue_a_message(session, frozen, trigger, kind):
    world = World(session)
    if trigger == "declare_ineligible":
        world.put("eligibility_check")
        world.checks({0: "ineligible", 1: "eligible", 2: "eligible", 3: "eligible", 4: "eligible"})
    else:
        world.put("pre_review")
        world.approve_pre_ranking()
    frozen(PRE_CLOSED)
    transition(session, world.sec, world.proposal.id, trigger)
    session.commit()
    (msg,) = session.scalars(select(OutboxMessage).where(OutboxMessage.kind != "review_assignment")).all()
    assert (msg.kind, msg.to_address) == (kind, world.coordinator.email)


# ---------------------------------------------------------------------------------------------------------
# A failing operation leaves nothing behind


def _refuse_late_submit(session, world, frozen):
    frozen(PRE_DEADLINE)
    transition(session, world.coordinator, world.proposal.id, "submit")


def _refuse_stranger(session, world, frozen):
    frozen(PRE_OPEN)
    transition(session, make_user(session, "Otto Other"), world.proposal.id, "submit")


def _refuse_wrong_state(session, world, frozen):
    frozen(PRE_OPEN)
    transition(session, world.sec, world.proposal.id, "invite")


def _fail_while_queueing_the_receipt(session, world, frozen):
    """The Submission is flushed and the audit chain advanced before the outbox write fails."""
    frozen(PRE_OPEN)
    transition(session, world.coordinator, world.proposal.id, "submit")


class MailQueueDown(Exception):
    pass


@pytest.mark.parametrize("fail, error", [
    pytest.param(_refuse_late_submit, GuardFailed, id="guard-refuses"),
    pytest.param(_refuse_stranger, AccessDenied, id="access-refused"),
    pytest.param(_refuse_wrong_state, TransitionNotAllowed, id="wrong-state"),
    pytest.param(_fail_while_queueing_the_receipt, MailQueueDown, id="effect-fails-after-flush"),
])
def test_a_failed_operation_leaves_nothing_behind(session, frozen, monkeypatch, fail, error):
    world = World(session)
    before = footprint(session)
    state_before = db_state(session, world.proposal.id)
    enqueue = operations.outbox.enqueue
    if error is MailQueueDown:
        def broken_enqueue(*args, **kwargs):
            raise MailQueueDown("the outbox is unavailable")
        monkeypatch.setattr(operations.outbox, "enqueue", broken_enqueue)
    with pytest.raises(error):
        fail(session, world, frozen)
    session.rollback()

    assert footprint(session) == before
    assert db_state(session, world.proposal.id) == state_before
    assert audit.verify(session).ok
    # and the next operation continues the audit chain where it was
    monkeypatch.setattr(operations.outbox, "enqueue", enqueue)
    frozen(PRE_OPEN)
    transition(session, world.coordinator, world.proposal.id, "submit")
    session.commit()
    assert audit.verify(session).ok
    assert count(session, Submission) == 1


# ---------------------------------------------------------------------------------------------------------
# Closing a stage


def test_close_stage_sends_submitted_proposals_to_eligibility_and_lapses_drafts(session, frozen):
    world = World(session)
    call = world.call
    submitted = world.proposal
    own = valid_proposal(session, call, acronym="OWNFUND")
    add_partner(session, own.coordinator, own, PartnerData(
        organisation="Università di Milano", country="IT", pi_name="PI Milano",
        pi_email="pi.milano@example.org", own_funded=True,
    ))
    draft = valid_proposal(session, call, acronym="LATE")
    session.commit()
    frozen(PRE_OPEN)
    for p in (submitted, own):
        transition(session, p.coordinator, p.id, "submit")
    session.commit()

    frozen(PRE_DEADLINE)  # the deadline is exclusive: at that instant submission is over
    assert close_stage(session, world.sec, call, "pre") == {"to_eligibility": 2, "not_submitted": 1}
    session.commit()

    assert db_state(session, submitted.id)[0] == "eligibility_check"
    assert db_state(session, own.id)[0] == "eligibility_check"
    assert db_state(session, draft.id)[0] == "not_submitted"
    for p in (submitted, own):
        checks = session.scalars(select(EligibilityCheck).where(EligibilityCheck.proposal_id == p.id)).all()
        assert {c.status for c in checks} == {"pending"} and {c.stage for c in checks} == {"pre"}
        formal = [c for c in checks if c.partner_id is None]
        assert len(formal) == 1 and formal[0].funder_id is None
        funded = [x for x in p.partners if x.requests_funding]
        assert len(funded) == 4
        assert sorted((c.partner_id, c.funder_id) for c in checks if c.partner_id is not None) == sorted(
            (x.id, x.funder_id) for x in funded)
    (lapse,) = audit_events(session, "proposal.lapse")
    assert (lapse.object_id, lapse.reason) == (draft.id, "not submitted before the deadline")
    assert call.stage("pre").closed_at == PRE_DEADLINE
    assert len(audit_events(session, "stage.closed")) == 1


def test_close_stage_before_the_deadline_is_refused(session, frozen):
    world = World(session)
    frozen(PRE_OPEN)
    transition(session, world.coordinator, world.proposal.id, "submit")
    session.commit()
    before = footprint(session)
    frozen(PRE_DEADLINE - SECOND)
    with pytest.raises(InvalidInput, match="cannot be closed before it") as refused:
        close_stage(session, world.sec, world.call, "pre")
    assert "5 March 2030, 17:00 CET" in str(refused.value)
    session.rollback()
    assert db_state(session, world.proposal.id)[0] == "submitted"
    assert session.scalar(select(CallStage.closed_at).where(CallStage.kind == "pre")) is None
    assert footprint(session) == before


def test_only_the_secretariat_closes_a_stage(session, frozen):
    world = World(session)
    frozen(PRE_CLOSED)
    with pytest.raises(AccessDenied, match="only the call secretariat"):
        close_stage(session, world.coordinator, world.call, "pre")


def test_close_the_full_stage(session, frozen):
    world = World(session)
    call = world.call
    invited = world.put("invited", valid_proposal(session, call, acronym="INV"))
    full_draft = world.put("full_draft", valid_proposal(session, call, acronym="FDRAFT"))
    full_submitted = world.put("full_submitted", world.proposal)
    frozen(FULL_CLOSED)
    assert close_stage(session, world.sec, call, "full") == {"to_eligibility": 1, "not_submitted": 2}
    session.commit()
    assert db_state(session, invited.id)[0] == "not_submitted"
    assert db_state(session, full_draft.id)[0] == "not_submitted"
    assert db_state(session, full_submitted.id)[0] == "full_eligibility_check"
    stages = session.scalars(select(EligibilityCheck.stage).where(
        EligibilityCheck.proposal_id == full_submitted.id)).all()
    assert stages == ["full"] * 5


def test_close_the_single_stage(session, frozen):
    world = World(session, SINGLE_STAGE)
    world.put("submitted")
    frozen(PRE_CLOSED)
    with pytest.raises(InvalidInput, match="this call has no pre stage"):
        close_stage(session, world.sec, world.call, "pre")
    assert close_stage(session, world.sec, world.call, "full") == {"to_eligibility": 1, "not_submitted": 0}
    assert db_state(session, world.proposal.id)[0] == "eligibility_check"
    assert set(session.scalars(select(EligibilityCheck.stage))) == {"full"}


# ---------------------------------------------------------------------------------------------------------
# Funders sign off their partners; the secretariat decides


def _in_eligibility(session, world) -> dict[str, EligibilityCheck]:
    """The proposal in eligibility check; its checks by funder acronym (DFG-T has two: DFG-T and DFG-T#2)."""
    world.put("eligibility_check")
    checks = world.checks()
    by: dict[str, EligibilityCheck] = {"formal": checks[0]}
    for check in checks[1:]:
        key = check.partner.funder.acronym
        by[key if key not in by else f"{key}#2"] = check
    return by


def test_an_officer_of_another_funder_cannot_sign_off(session, frozen):
    world = World(session)
    checks = _in_eligibility(session, world)
    anr = officer(session, world.call, "ANR-T")
    session.commit()
    frozen(PRE_CLOSED)
    with pytest.raises(AccessDenied, match="this partner is not funded by your organisation"):
        sign_off(session, anr, checks["DFG-T"].id, "eligible")
    session.rollback()
    assert session.get(EligibilityCheck, checks["DFG-T"].id).status == "pending"
    # its own partner, yes
    sign_off(session, anr, checks["ANR-T"].id, "eligible")
    session.commit()
    assert session.get(EligibilityCheck, checks["ANR-T"].id).status == "eligible"


def test_an_officer_cannot_sign_the_formal_check_nor_the_secretariat_a_partner(session, frozen):
    world = World(session)
    checks = _in_eligibility(session, world)
    dfg = officer(session, world.call, "DFG-T")
    frozen(PRE_CLOSED)
    with pytest.raises(AccessDenied, match="only the call secretariat"):
        sign_off(session, dfg, checks["formal"].id, "eligible")
    with pytest.raises(AccessDenied, match="only funder officers"):
        sign_off(session, world.sec, checks["DFG-T"].id, "eligible")


@pytest.mark.parametrize("reason", [None, "", "   "], ids=["none", "empty", "blank"])
def test_ineligible_needs_a_reason(session, frozen, reason):
    world = World(session)
    checks = _in_eligibility(session, world)
    isciii = officer(session, world.call, "ISCIII-T")
    frozen(PRE_CLOSED)
    with pytest.raises(InvalidInput) as refused:
        sign_off(session, isciii, checks["ISCIII-T"].id, "ineligible", reason)
    assert refused.value.field == "reason"
    session.rollback()
    assert session.get(EligibilityCheck, checks["ISCIII-T"].id).status == "pending"


def test_sign_off_refuses_an_unknown_verdict(session, frozen):
    world = World(session)
    checks = _in_eligibility(session, world)
    frozen(PRE_CLOSED)
    with pytest.raises(InvalidInput) as refused:
        sign_off(session, world.sec, checks["formal"].id, "maybe")
    assert refused.value.field == "verdict"


def _sign_all(session, world, checks, ineligible: str | None = None, reason: str = ""):
    officers = {a: officer(session, world.call, a) for a in ("DFG-T", "ANR-T", "ISCIII-T")}
    for key, check in checks.items():
        actor = world.sec if key == "formal" else officers[key.split("#")[0]]
        if key == ineligible:
            sign_off(session, actor, check.id, "ineligible", reason)
        else:
            sign_off(session, actor, check.id, "eligible")
    session.commit()


def test_a_partner_its_own_funder_rejects_may_be_replaced_so_the_proposal_goes_on(session, frozen):
    world = World(session)
    checks = _in_eligibility(session, world)
    frozen(PRE_CLOSED)
    why = "the Spanish partner's PI has no contract beyond the project's start"
    _sign_all(session, world, checks, ineligible="ISCIII-T", reason=why)
    decide_eligibility(session, world.sec, world.proposal.id)
    session.commit()
    assert db_state(session, world.proposal.id)[0] == "pre_review"
    (event,) = audit_events(session, "proposal.declare_eligible", world.proposal.id)
    assert "to replace or remove at the full stage" in event.reason and why in event.reason


def test_decide_eligibility_with_one_ineligible_partner(session, frozen):
    world = World(session, allow_replacing_ineligible_partner=False)
    checks = _in_eligibility(session, world)
    frozen(PRE_CLOSED)
    why = "the Spanish partner's PI has no contract beyond the project's start"
    _sign_all(session, world, checks, ineligible="ISCIII-T", reason=why)
    assert len(audit_events(session, "eligibility.signed_off")) == 5

    decide_eligibility(session, world.sec, world.proposal.id)
    session.commit()
    assert db_state(session, world.proposal.id)[0] == "ineligible"
    (event,) = audit_events(session, "proposal.declare_ineligible", world.proposal.id)
    assert why in event.reason
    assert event.after == {"state": "ineligible"}
    assert count(session, OutboxMessage, kind="decision") == 1


@pytest.mark.parametrize("variant, onwards", [(TWO_STAGE, "pre_review"), (SINGLE_STAGE, "under_review")],
                         ids=["two-stage", "single-stage"])
def test_decide_eligibility_with_all_eligible(session, frozen, variant, onwards):
    world = World(session, variant)
    checks = _in_eligibility(session, world)
    frozen(PRE_CLOSED)
    _sign_all(session, world, checks)
    decide_eligibility(session, world.sec, world.proposal.id)
    session.commit()
    assert db_state(session, world.proposal.id)[0] == onwards


def test_decide_eligibility_while_a_check_is_pending_is_refused(session, frozen):
    world = World(session)
    checks = _in_eligibility(session, world)
    frozen(PRE_CLOSED)
    anr = officer(session, world.call, "ANR-T")
    sign_off(session, anr, checks["ANR-T"].id, "ineligible", "not a research organisation")
    with pytest.raises(GuardFailed, match="4 eligibility checks are still pending"):
        decide_eligibility(session, world.sec, world.proposal.id)


def test_sign_off_after_the_eligibility_step_is_refused(session, frozen):
    world = World(session)
    checks = _in_eligibility(session, world)
    world.put("pre_review")
    frozen(PRE_CLOSED)
    with pytest.raises(DomainError, match="the eligibility step of this proposal is closed"):
        sign_off(session, world.sec, checks["formal"].id, "eligible")


# ---------------------------------------------------------------------------------------------------------
# Optimistic concurrency


def test_a_stale_version_is_refused(session, session_factory, frozen):
    world = World(session)
    pid = world.proposal.id
    frozen(PRE_OPEN)
    first, second = session_factory(), session_factory()
    try:
        seen_first = first.get(Proposal, pid).version
        seen_second = second.get(Proposal, pid).version
        assert seen_first == seen_second

        transition(first, first.get(User, world.coordinator.id), pid, "submit", expected_version=seen_first)
        first.commit()

        with pytest.raises(ChangedMeanwhile, match="changed by someone else meanwhile"):
            transition(second, second.get(User, world.coordinator.id), pid, "submit",
                       expected_version=seen_second)
        second.rollback()
    finally:
        first.close()
        second.close()
    assert db_state(session, pid) == ("submitted", seen_first + 1)
    assert count(session, Submission) == 1
    assert len(audit_events(session, "proposal.reopen")) == 0


def test_the_current_version_is_accepted(session, frozen):
    world = World(session)
    frozen(PRE_OPEN)
    _, version = db_state(session, world.proposal.id)
    transition(session, world.coordinator, world.proposal.id, "submit", expected_version=version)
    session.commit()
    assert db_state(session, world.proposal.id) == ("submitted", version + 1)
