"""The demo population: every lifecycle state reached by the real operations, valid consortia, a working
open call, an intact audit chain, working logins, and a second load that changes nothing."""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter

import pytest
from sqlalchemy import func, select

from workflow import clock
from workflow.accounts import check_password, find_user
from workflow.audit import verify
from workflow.calls import get_call
from workflow.demo import DEMO_ACCOUNTS, DOMAIN, OPEN_CODE, load_demo
from workflow.lifecycle import Variant, stage_of, states_for
from workflow.models import AuditEvent, EligibilityCheck, Partner, Proposal, ProposalMember, RoleGrant, User
from workflow.operations import transition
from workflow.proposals import proposal_violations

EPPERMED = "eppermed-jtc2024"
COUNTED = (Proposal, User, AuditEvent, Partner, RoleGrant, EligibilityCheck, ProposalMember)


def row_counts(session) -> dict[str, int]:
    return {model.__name__: session.scalar(select(func.count()).select_from(model)) for model in COUNTED}


@pytest.fixture
def demo(session):
    started = time.perf_counter()
    report = load_demo(session)
    elapsed = time.perf_counter() - started
    print(f"\nload_demo took {elapsed:.2f} s")
    return report, elapsed


def test_load_is_fast_and_restores_the_real_clock(session, demo):
    _report, elapsed = demo
    assert elapsed < 10
    assert abs(clock.utcnow() - dt.datetime.now(dt.UTC)) < dt.timedelta(seconds=5)


def test_every_state_of_a_two_stage_call_with_rebuttal_is_present(session, demo):
    call = get_call(session, EPPERMED)
    counts = Counter(session.scalars(select(Proposal.state).where(Proposal.call_id == call.id)).all())
    wanted = [s.name for s in states_for(Variant(True, True))]
    assert [s for s in wanted if counts[s] == 0] == []
    assert 35 <= sum(counts.values()) <= 45
    assert set(counts) <= set(wanted)


def test_consortia_are_sized_and_valid_unless_meant_otherwise(session, demo):
    call = get_call(session, EPPERMED)
    variant = Variant(True, True)
    for proposal in session.scalars(select(Proposal).where(Proposal.call_id == call.id)):
        assert 3 <= len(proposal.partners) <= 7, proposal.reference
        if proposal.state in ("draft", "not_submitted"):
            continue  # drafts may be incomplete
        blocking = [v.message for v in proposal_violations(session, proposal, stage_of(proposal.state, variant))
                    if v.blocking]
        assert blocking == [], (proposal.reference, blocking)


def test_submissions_and_decisions_are_real(session, demo):
    call = get_call(session, EPPERMED)
    proposals = session.scalars(select(Proposal).where(Proposal.call_id == call.id)).all()
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


def test_audit_chain_verifies_and_follows_the_2024_calendar(session, demo):
    result = verify(session)
    assert result.ok, str(result)
    call = get_call(session, EPPERMED)
    times = session.scalars(select(AuditEvent.at).where(AuditEvent.call_id == call.id)
                            .order_by(AuditEvent.seq)).all()
    assert times == sorted(times)
    assert all(t.year == 2024 for t in times)


def test_the_open_call_is_open_and_its_draft_can_be_submitted(session, demo):
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


def test_every_demo_account_can_log_in(session, demo):
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


def test_a_second_load_changes_nothing(session, demo):
    report, _elapsed = demo
    assert "secretariat@" + DOMAIN in report and "demo-secretariat" in report
    before = row_counts(session)
    again = load_demo(session)
    assert row_counts(session) == before
    assert "already" in again and "demo-secretariat" in again


def test_the_real_clock_is_restored_when_loading_fails(session, monkeypatch):
    import workflow.demo as demo_module

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(demo_module, "decide_eligibility", broken)
    with pytest.raises(RuntimeError, match="boom"):
        load_demo(session)
    assert abs(clock.utcnow() - dt.datetime.now(dt.UTC)) < dt.timedelta(seconds=5)
