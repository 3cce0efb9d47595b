"""What only PostgreSQL can show: row locks under real concurrency. Two people act on the same thing at
the same moment; one succeeds, the other is told the proposal changed meanwhile, and nothing is lost."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import func, select

from tests import factories as f
from workflow import operations
from workflow.audit import verify
from workflow.errors import ChangedMeanwhile, DomainError, TransitionNotAllowed
from workflow.models import AuditEvent, EligibilityCheck, Proposal, Submission

pytestmark = pytest.mark.pg


def _race(factory, actions, hold: float = 0.3):
    """Run each action(session) in its own thread and session, all starting together; the first to
    take the lock holds it `hold` seconds before committing so the others really wait on it."""
    barrier = threading.Barrier(len(actions))
    results: list = [None] * len(actions)

    def run(i, action):
        session = factory()
        try:
            barrier.wait()
            action(session)
            time.sleep(hold)
            session.commit()
            results[i] = "ok"
        except DomainError as err:
            session.rollback()
            results[i] = err
        finally:
            session.close()

    threads = [threading.Thread(target=run, args=(i, a)) for i, a in enumerate(actions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return results


@pytest.fixture
def submitted_setup(pg_session_factory, frozen):
    frozen(f.PRE_OPEN)
    with pg_session_factory() as s:
        call = f.make_call(s)
        proposal = f.valid_proposal(s, call)
        s.commit()
        return proposal.id, proposal.coordinator_id, proposal.version


def test_two_submits_at_once_one_wins_the_other_is_told(pg_session_factory, submitted_setup):
    pid, coordinator_id, version = submitted_setup

    def submit(session):
        coordinator = session.get(Proposal, pid).coordinator
        operations.transition(session, coordinator, pid, "submit", expected_version=version)

    results = _race(pg_session_factory, [submit, submit])
    assert results.count("ok") == 1, results
    loser = next(r for r in results if r != "ok")
    assert isinstance(loser, ChangedMeanwhile)
    assert "changed by someone else meanwhile" in str(loser)
    with pg_session_factory() as s:
        assert s.get(Proposal, pid).state == "submitted"
        assert s.scalar(select(func.count(Submission.id))) == 1
        assert s.scalar(select(func.count(AuditEvent.id)).where(AuditEvent.action == "proposal.submit")) == 1
        assert verify(s).ok


def test_without_a_version_the_second_sees_the_new_state_no_double_transition(pg_session_factory, submitted_setup):
    pid, _, _ = submitted_setup

    def submit(session):
        coordinator = session.get(Proposal, pid).coordinator
        operations.transition(session, coordinator, pid, "submit")

    results = _race(pg_session_factory, [submit, submit])
    assert results.count("ok") == 1, results
    loser = next(r for r in results if r != "ok")
    assert isinstance(loser, TransitionNotAllowed)
    assert "'submit'" in str(loser) and "submitted" in str(loser)
    with pg_session_factory() as s:
        assert s.scalar(select(func.count(Submission.id))) == 1


def test_submit_and_withdraw_at_once_never_both(pg_session_factory, submitted_setup):
    pid, _, version = submitted_setup

    def submit(session):
        operations.transition(session, session.get(Proposal, pid).coordinator, pid, "submit",
                              expected_version=version)

    def withdraw(session):
        operations.transition(session, session.get(Proposal, pid).coordinator, pid, "withdraw",
                              expected_version=version)

    results = _race(pg_session_factory, [submit, withdraw])
    assert results.count("ok") == 1, results
    with pg_session_factory() as s:
        state = s.get(Proposal, pid).state
        assert state in ("submitted", "withdrawn")
        actions = s.scalars(select(AuditEvent.action).where(AuditEvent.object_type == "proposal",
                                                            AuditEvent.action.in_(("proposal.submit",
                                                                                   "proposal.withdraw")))).all()
        assert len(actions) == 1 and actions[0] == f"proposal.{'submit' if state == 'submitted' else 'withdraw'}"


def test_two_officers_of_one_funder_sign_off_the_same_partner(pg_session_factory, frozen):
    frozen(f.PRE_OPEN)
    with pg_session_factory() as s:
        call = f.make_call(s)
        sec = f.secretariat(s, call)
        proposal = f.valid_proposal(s, call)
        operations.transition(s, proposal.coordinator, proposal.id, "submit")
        officer_a, officer_b = f.officer(s, call, "ANR-T"), f.officer(s, call, "ANR-T")
        s.commit()
        frozen(f.PRE_CLOSED)
        operations.close_stage(s, sec, call, "pre")
        s.commit()
        check = s.scalar(select(EligibilityCheck).where(EligibilityCheck.funder_id == f.funder(s, "ANR-T").id))
        check_id, seen_version, a_id, b_id = check.id, check.version, officer_a.id, officer_b.id

    def sign(user_id, verdict, reason):
        def action(session):
            from workflow.models import User

            operations.sign_off(session, session.get(User, user_id), check_id, verdict, reason,
                                expected_version=seen_version)
        return action

    results = _race(pg_session_factory, [sign(a_id, "eligible", None),
                                          sign(b_id, "ineligible", "applicant's institution is not eligible")])
    assert results.count("ok") == 1, results
    loser = next(r for r in results if r != "ok")
    assert isinstance(loser, ChangedMeanwhile) and "sign-off" in str(loser)
    with pg_session_factory() as s:
        check = s.get(EligibilityCheck, check_id)
        winner = results.index("ok")
        assert check.status == ("eligible", "ineligible")[winner]
        assert check.decided_by_id == (a_id, b_id)[winner]
        assert s.scalar(select(func.count(AuditEvent.id)).where(AuditEvent.action == "eligibility.signed_off")) == 1


def test_many_concurrent_operations_keep_one_unbroken_audit_chain(pg_session_factory, frozen):
    frozen(f.PRE_OPEN)
    with pg_session_factory() as s:
        call = f.make_call(s, max_proposals_per_pi=50)
        ids = [f.valid_proposal(s, call, acronym=f"P{i}").id for i in range(8)]
        s.commit()
        before = s.scalar(select(func.count(AuditEvent.id)))

    def submit(pid):
        def action(session):
            operations.transition(session, session.get(Proposal, pid).coordinator, pid, "submit")
        return action

    results = _race(pg_session_factory, [submit(pid) for pid in ids], hold=0.05)
    assert results == ["ok"] * len(ids)
    with pg_session_factory() as s:
        assert s.scalar(select(func.count(AuditEvent.id))) == before + len(ids)
        result = verify(s)
        assert result.ok, str(result)
