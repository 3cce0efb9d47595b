"""The demo population: every lifecycle state reached by the real operations, valid consortia, a working
open call, a real evaluation (reviews, consensus, approved rankings, rebuttals), an intact audit chain,
working logins, and a second load that changes nothing.

The demo is loaded once for the module (about 3 s) and committed; each test reads it in its own session and
rolls back whatever it changed. A test that needs an empty database wipes it; the next test loads the demo
again.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from dataclasses import dataclass

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from reviews.aggregation import threshold_failures
from reviews.conflicts import is_conflicted
from reviews.models import PanelConsensus, RankingList, Review, ReviewAssignment, ReviewerProfile
from reviews.scoring import SCORE_VALUES, my_assignments
from tests.conftest import wipe
from webapp.demo import DEMO_ACCOUNTS, DOMAIN, OPEN_CODE, REVIEWERS, SECRETARIAT, load_demo
from workflow import clock
from workflow.accounts import check_password, find_user
from workflow.audit import verify
from workflow.calls import get_call
from workflow.db import make_session_factory
from workflow.lifecycle import Variant, stage_of, states_for
from workflow.models import (
    AuditEvent,
    EligibilityCheck,
    Partner,
    Proposal,
    ProposalMember,
    Rebuttal,
    RoleGrant,
    User,
)
from workflow.operations import transition
from workflow.proposals import proposal_violations

EPPERMED = "eppermed-jtc2024"
COUNTED = (Proposal, User, AuditEvent, Partner, RoleGrant, EligibilityCheck, ProposalMember, ReviewerProfile,
           ReviewAssignment, Review, PanelConsensus, RankingList, Rebuttal)
# States a proposal reaches only after its full proposal was reviewed, and after the panel.
FULL_REVIEWED = ("under_review", "rebuttal", "panel", "recommended", "not_recommended", "selected", "reserve",
                 "not_funded", "funded")
PANEL_ONWARDS = ("panel", "recommended", "not_recommended", "selected", "reserve", "not_funded", "funded")
RECOMMENDED_ONWARDS = ("recommended", "selected", "reserve", "not_funded", "funded")
# States a proposal reaches only after the pre-proposal evaluation.
PRE_REVIEWED = ("pre_review", "not_invited", "invited", "full_draft", "full_submitted", "full_eligibility_check",
                "full_ineligible", *FULL_REVIEWED)


def row_counts(session) -> dict[str, int]:
    return {model.__name__: session.scalar(select(func.count()).select_from(model)) for model in COUNTED}


@dataclass
class Demo:
    session: Session
    report: str
    elapsed: float


@pytest.fixture(scope="module")
def _loaded(engine):
    state: dict = {}
    yield state
    wipe(engine)


@pytest.fixture
def demo(engine, _loaded) -> Demo:
    factory = make_session_factory(engine)
    session = factory()
    if not _loaded or find_user(session, SECRETARIAT) is None:
        session.close()
        wipe(engine)
        session = factory()
        started = time.perf_counter()
        report = load_demo(session)
        elapsed = time.perf_counter() - started
        session.commit()
        _loaded.update(report=report, elapsed=elapsed)
        print(f"\nload_demo took {elapsed:.2f} s, the commit {time.perf_counter() - started - elapsed:.2f} s")
    yield Demo(session, _loaded["report"], _loaded["elapsed"])
    session.rollback()
    session.close()


def jtc2024(session) -> list[Proposal]:
    call = get_call(session, EPPERMED)
    return list(session.scalars(select(Proposal).where(Proposal.call_id == call.id).order_by(Proposal.id)))


def submitted(session, proposal: Proposal, stage: str) -> list[Review]:
    return list(session.scalars(select(Review).where(
        Review.proposal_id == proposal.id, Review.stage == stage, Review.status == "submitted")))


def consensus(session, proposal: Proposal, stage: str) -> PanelConsensus | None:
    return session.scalar(select(PanelConsensus).where(
        PanelConsensus.proposal_id == proposal.id, PanelConsensus.stage == stage))


def ranking(session, stage: str) -> RankingList:
    call = get_call(session, EPPERMED)
    return session.scalar(select(RankingList).where(RankingList.call_id == call.id, RankingList.stage == stage))


def first_event(session, action: str, proposal: Proposal) -> AuditEvent:
    return session.scalars(select(AuditEvent).where(
        AuditEvent.action == action, AuditEvent.object_type == "proposal", AuditEvent.object_id == proposal.id,
    ).order_by(AuditEvent.seq)).first()


# ---------------------------------------------------------------------------------------------------------
# Loading


def test_the_real_clock_is_restored_when_loading_fails(engine, session, monkeypatch):
    import webapp.demo as demo_module

    wipe(engine)  # an empty database, whatever ran before

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(demo_module, "decide_eligibility", broken)
    with pytest.raises(RuntimeError, match="boom"):
        load_demo(session)
    assert abs(clock.utcnow() - dt.datetime.now(dt.UTC)) < dt.timedelta(seconds=5)


def test_load_is_fast_and_restores_the_real_clock(demo, engine):
    # About 3 s on SQLite and 7 s on PostgreSQL (some 12,000 statements, each a round trip there).
    assert demo.elapsed < (10 if engine.dialect.name == "sqlite" else 20)
    assert abs(clock.utcnow() - dt.datetime.now(dt.UTC)) < dt.timedelta(seconds=5)


def test_a_second_load_changes_nothing(demo):
    assert "secretariat@" + DOMAIN in demo.report and "demo-secretariat" in demo.report
    before = row_counts(demo.session)
    again = load_demo(demo.session)
    assert row_counts(demo.session) == before
    assert "already" in again and "demo-secretariat" in again


# ---------------------------------------------------------------------------------------------------------
# The proposals


def test_every_state_of_a_two_stage_call_with_rebuttal_is_present(demo):
    counts = Counter(p.state for p in jtc2024(demo.session))
    wanted = [s.name for s in states_for(Variant(True, True))]
    assert [s for s in wanted if counts[s] == 0] == []
    assert 35 <= sum(counts.values()) <= 45
    assert set(counts) <= set(wanted)


def test_consortia_are_sized_and_valid_unless_meant_otherwise(demo):
    session, variant = demo.session, Variant(True, True)
    for proposal in jtc2024(session):
        assert 3 <= len(proposal.partners) <= 7, proposal.reference
        if proposal.state in ("draft", "not_submitted"):
            continue  # drafts may be incomplete
        blocking = [v.message for v in proposal_violations(session, proposal, stage_of(proposal.state, variant))
                    if v.blocking]
        assert blocking == [], (proposal.reference, blocking)


def test_submissions_and_decisions_are_real(demo):
    session = demo.session
    call = get_call(session, EPPERMED)
    proposals = jtc2024(session)
    for p in proposals:
        if p.state not in ("draft", "not_submitted"):
            assert any(s.stage == "pre" for s in p.submissions), p.reference
        if p.state in ("full_submitted", "under_review", "funded"):
            full = [s for s in p.submissions if s.stage == "full"]
            assert full and full[-1].previous_stage_submission_id is not None
            assert full[-1].submitted_at < call.stage("full").deadline
    # Ineligible proposals were found so by a funder officer, with a reason.
    for p in proposals:
        if p.state in ("ineligible", "full_ineligible"):
            bad = session.scalars(select(EligibilityCheck).where(
                EligibilityCheck.proposal_id == p.id, EligibilityCheck.status == "ineligible")).all()
            assert bad and all(c.partner_id is not None and c.reason for c in bad)
    # The demo officers have checks waiting for them.
    pending_funders = set(session.scalars(select(EligibilityCheck.funder_id).where(
        EligibilityCheck.status == "pending", EligibilityCheck.funder_id.is_not(None))))
    demo_officers = {find_user(session, email) for _role, email, _pw, _name in DEMO_ACCOUNTS
                     if email.startswith("officer.")}
    officer_funders = {g.funder_id for u in demo_officers for g in u.grants if g.call_id == call.id}
    assert officer_funders <= pending_funders
    # Selected and funded proposals fit what each funder committed.
    requested: Counter = Counter()
    for p in proposals:
        if p.state in ("selected", "funded"):
            for partner in p.partners:
                if partner.funder_id:
                    requested[partner.funder_id] += partner.requested_amount
    committed = {cf.funder_id: cf.committed_budget for cf in call.funders}
    assert all(amount <= committed[fid] for fid, amount in requested.items())


def test_audit_chain_verifies_and_follows_the_2024_calendar(demo):
    session = demo.session
    result = verify(session)
    assert result.ok, str(result)
    call = get_call(session, EPPERMED)
    times = session.scalars(select(AuditEvent.at).where(AuditEvent.call_id == call.id)
                            .order_by(AuditEvent.seq)).all()
    assert times == sorted(times)
    assert all(t.year == 2024 for t in times)
    # The evaluation is in the chain too: every review submitted, consensus entered and ranking approved.
    actions = Counter(session.scalars(select(AuditEvent.action).where(AuditEvent.call_id == call.id)))
    assert actions["review.submitted"] == session.scalar(
        select(func.count(Review.id)).where(Review.status == "submitted"))
    assert actions["panel.consensus_entered"] == session.scalar(select(func.count(PanelConsensus.id)))
    assert actions["ranking.approved"] == 2


# ---------------------------------------------------------------------------------------------------------
# The evaluation


def test_reviewed_proposals_have_three_complete_reviews_in_half_points(demo):
    session = demo.session
    call = get_call(session, EPPERMED)
    keys = [c.key for c in call.settings.evaluation.criteria]
    for p in jtc2024(session):
        if p.state in PRE_REVIEWED:
            assert len(submitted(session, p, "pre")) >= 3, (p.acronym, p.state)
        if p.state in FULL_REVIEWED:
            assert len(submitted(session, p, "full")) >= 3, (p.acronym, p.state)
    reviews = session.scalars(select(Review).where(Review.status == "submitted")).all()
    assert len(reviews) >= 3 * 30
    for r in reviews:
        assert set(r.scores) == set(keys) and all(r.scores[k] in SCORE_VALUES for k in keys)
        assert all(r.comments[k].strip() for k in keys)
        assert r.recommendation in ("recommended", "recommended_if_funds", "not_recommended")
    assert any(v % 1 for r in reviews for v in r.scores.values()), "some scores are half points"
    # Nobody reviews a proposal they have a conflict of interest with.
    for a in session.scalars(select(ReviewAssignment).where(ReviewAssignment.call_id == call.id)):
        assert not is_conflicted(session, a.reviewer, a.proposal), (a.reviewer.email, a.proposal.acronym)


def test_the_panel_agreed_on_every_proposal_from_the_panel_on_within_the_thresholds(demo):
    session = demo.session
    evaluation = get_call(session, EPPERMED).settings.evaluation
    for p in jtc2024(session):
        if p.state in PANEL_ONWARDS:
            row = consensus(session, p, "full")
            assert row is not None and row.summary.strip(), p.acronym
            if p.state in RECOMMENDED_ONWARDS:  # rule 19
                assert row.recommendation != "not_recommended", p.acronym
                assert threshold_failures(evaluation, row.scores) == [], p.acronym
            if p.state == "not_recommended":
                assert row.recommendation == "not_recommended"
                assert first_event(session, "proposal.not_recommend", p).at > max(
                    r.submitted_at for r in submitted(session, p, "full"))
            if p.state in RECOMMENDED_ONWARDS:  # rule 16: the panel scored after three completed reviews
                recommended = first_event(session, "proposal.recommend", p)
                assert sorted(r.submitted_at for r in submitted(session, p, "full"))[2] < recommended.at
        elif p.state in ("under_review", "rebuttal"):
            assert consensus(session, p, "full") is None, p.acronym
        if p.state in PRE_REVIEWED:
            assert consensus(session, p, "pre") is not None, p.acronym


def test_the_approved_rankings_decide_the_invitations_and_the_funding(demo):
    session = demo.session
    pre, full = ranking(session, "pre"), ranking(session, "full")
    assert (pre.status, full.status) == ("approved", "approved")
    for rl in (pre, full):
        assert [e.rank for e in rl.entries] == list(range(1, len(rl.entries) + 1))
        assert [e.total for e in rl.entries] == sorted((e.total for e in rl.entries), reverse=True)
        assert all(e.tie_break_note for e in rl.entries)
    # The invitations follow the approved pre-proposal ranking, and went out after its approval.
    rank = {e.proposal_id: e.rank for e in pre.entries}
    invited = [p for p in jtc2024(session) if first_event(session, "proposal.invite", p) is not None]
    not_invited = [p for p in jtc2024(session) if p.state == "not_invited"]
    assert len(invited) >= 20 and len(not_invited) >= 3
    assert max(rank[p.id] for p in invited) < min(rank[p.id] for p in not_invited)
    assert all(first_event(session, "proposal.invite", p).at > pre.approved_at for p in invited)
    # Not recommended proposals are not on the full-stage list; the funded ones lead it.
    by_state = {e.proposal_id: e.proposal.state for e in full.entries}
    assert "not_recommended" not in by_state.values()
    assert {p.id for p in jtc2024(session) if p.state in RECOMMENDED_ONWARDS} <= set(by_state)
    full_rank = {e.proposal_id: e.rank for e in full.entries}
    chosen = [full_rank[pid] for pid, state in by_state.items() if state in ("selected", "funded")]
    others = [full_rank[pid] for pid, state in by_state.items() if state in ("reserve", "not_funded")]
    assert max(chosen) < min(others)
    assert all(first_event(session, t, e.proposal).at > full.approved_at for e in full.entries
               for t in ("proposal.select", "proposal.place_in_reserve", "proposal.not_fund")
               if first_event(session, t, e.proposal) is not None)


def test_rebuttals_answer_the_released_reviews(demo):
    session = demo.session
    proposals = jtc2024(session)
    rebutted = [p for p in proposals if session.scalar(select(Rebuttal).where(Rebuttal.proposal_id == p.id))]
    assert len(rebutted) >= 5
    coordinator2 = find_user(session, "coordinator2@" + DOMAIN)
    (theirs,) = [p for p in proposals if p.coordinator_id == coordinator2.id]
    assert theirs.state == "rebuttal" and theirs in rebutted
    for p in rebutted:
        assert p.state in ("rebuttal", *PANEL_ONWARDS)
        assert all(r.released_to_applicants for r in submitted(session, p, "full"))


def test_demo_reviewers_have_proposals_to_review(demo):
    session = demo.session
    call = get_call(session, EPPERMED)
    open_drafts = []
    for email in REVIEWERS:
        reviewer = find_user(session, email)
        profile = session.scalar(select(ReviewerProfile).where(
            ReviewerProfile.call_id == call.id, ReviewerProfile.user_id == reviewer.id))
        assert profile.declaration_accepted_at is not None and profile.keywords, email
        mine = my_assignments(session, reviewer, call)
        assert {a.stage for a in mine} == {"pre", "full"}, email
        assert any(a.editable for a in mine), email  # something to do for a visitor
        open_drafts += [a for a in mine if a.status == "draft" and a.editable]
    assert open_drafts
    assert {session.get(Proposal, a.proposal_id).state for a in open_drafts} == {"under_review"}


# ---------------------------------------------------------------------------------------------------------
# The open call and the accounts


def test_the_open_call_is_open_and_its_draft_can_be_submitted(demo):
    session = demo.session
    call = get_call(session, OPEN_CODE)
    now = clock.utcnow()
    assert call.stage("pre").is_open(now)
    assert not call.stage("full").is_open(now)
    local_deadline = call.stage("pre").deadline.astimezone(call.settings.zone)
    assert (local_deadline.hour, local_deadline.minute) == (17, 0)
    assert (local_deadline.date() - now.astimezone(call.settings.zone).date()).days == 30
    drafts = session.scalars(select(Proposal).where(Proposal.call_id == call.id)).all()
    assert [p.state for p in drafts] == ["draft"]
    draft = drafts[0]
    assert draft.coordinator.email.endswith("@" + DOMAIN)
    transition(session, draft.coordinator, draft.id, "submit")
    assert draft.state == "submitted"


def test_every_demo_account_can_log_in(demo):
    session = demo.session
    emails = [email for _role, email, _pw, _name in DEMO_ACCOUNTS]
    assert len(set(emails)) == len(emails)
    for role, email, password, name in DEMO_ACCOUNTS:
        assert email.endswith("@" + DOMAIN) and len(password) >= 10
        user = find_user(session, email)
        assert user is not None and user.name == name, role
        assert check_password(user, password), email
    assert any(not name.isascii() for *_rest, name in DEMO_ACCOUNTS)
    # Roles as described: admin, secretariat, officers, reviewers, coordinators, co-applicant.
    call = get_call(session, EPPERMED)
    users = {email: find_user(session, email) for email in emails}
    roles = Counter(g.role for u in users.values() for g in u.grants if g.call_id == call.id)
    assert roles["secretariat"] == 1 and roles["officer"] >= 3 and roles["reviewer"] == 3
    assert any(u.is_admin for u in users.values())
    coordinators = [u for u in users.values()
                    if session.scalar(select(func.count(Proposal.id)).where(Proposal.coordinator_id == u.id))]
    assert len(coordinators) == 2
    open_call = get_call(session, OPEN_CODE)
    assert any(session.scalar(select(func.count(Proposal.id)).where(
        Proposal.coordinator_id == u.id, Proposal.call_id == open_call.id)) for u in coordinators)
    assert session.scalar(select(func.count(ProposalMember.id))) >= 1
