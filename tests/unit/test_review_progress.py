"""The call's review figures per stage (reviews.progress, shown on the secretariat's dashboard): assignments
by review status, proposals under review and those short of reviewers, late reviews after the review
deadline, stored conflicts, the stage names, and a fixed number of statements."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import event

from reviews.conflicts import declare_conflict
from reviews.models import Review
from reviews.progress import call_review_progress
from tests import factories as f
from tests.unit.reviews_helpers import (
    ALL_SCORES,
    assign,
    make_proposal,
    make_reviewer,
    review_tables,  # noqa: F401  (fixture)
    submitted_review,
)

pytestmark = pytest.mark.usefixtures("review_tables")
UTC = dt.UTC
NOW = dt.datetime(2030, 4, 2, 9, 0, tzinfo=UTC)


def draft(session, assignment) -> Review:
    review = Review(assignment_id=assignment.id, proposal_id=assignment.proposal_id,
                    reviewer_id=assignment.reviewer_id, stage=assignment.stage, scores={"excellence": 3.0},
                    comments={}, status="draft")
    session.add(review)
    session.flush()
    return review


def set_review_deadline(call, kind: str, local: dt.datetime) -> None:
    """Give this Call object a review deadline for stage `kind` (local time) its definition does not have."""
    s = call.settings
    stages = [st.model_copy(update={"review_deadline": local}) if st.kind == kind else st for st in s.stages]
    call.__dict__["settings"] = s.model_copy(update={"stages": stages})


@pytest.fixture
def w(session, frozen):
    """Pre stage: ALPHA has three reviewers (submitted, draft, not started), BETA one (not started), GAMMA
    none; DELTA has left the review (invited) with one review not started. Full stage: EPS one submitted."""
    frozen(NOW)
    call = f.make_call(session)
    ann, ben, cid = (make_reviewer(session, call, name) for name in ("Ann A", "Ben B", "Cid C"))
    alpha, beta, gamma = (make_proposal(session, call, a, state="pre_review") for a in ("ALPHA", "BETA", "GAMMA"))
    delta = make_proposal(session, call, "DELTA", state="invited")
    eps = make_proposal(session, call, "EPS", state="under_review")
    submitted_review(session, assign(session, alpha, ann, stage="pre"), ALL_SCORES)
    draft(session, assign(session, alpha, ben, stage="pre"))
    assign(session, alpha, cid, stage="pre")
    assign(session, beta, ann, stage="pre")
    assign(session, delta, ann, stage="pre")
    submitted_review(session, assign(session, eps, ann, stage="full"), ALL_SCORES)
    declare_conflict(session, cid, beta, reason="I wrote a paper with the coordinator last year.")
    session.commit()
    return type("W", (), {"call": call, "ann": ann, "gamma": gamma})()


def test_each_stage_counts_its_assignments_reviews_coverage_and_conflicts(session, w):
    pre, full = call_review_progress(session, w.call).stages
    assert (pre.kind, pre.label, full.kind, full.label) == ("pre", "pre-proposal", "full", "full proposal")
    assert (pre.in_review, pre.wanted, pre.short) == (3, 3, 2)  # BETA and GAMMA have fewer than three
    # DELTA's assignment counts, but it is no longer under review: not unfinished
    assert (pre.assignments, pre.submitted, pre.drafts, pre.not_started) == (5, 1, 1, 3)
    assert (pre.unfinished, pre.unfinished_proposals) == (3, 2)
    assert (pre.declared, pre.detected, pre.overridden, pre.conflicts) == (1, 0, 0, 1)
    assert (full.in_review, full.short, full.assignments, full.submitted, full.unfinished) == (1, 1, 1, 1, 0)
    assert full.conflicts == 0
    # no review deadline yet: nothing is late
    assert (pre.deadline, pre.late, pre.late_proposals) == (None, 0, 0)
    assert call_review_progress(session, w.call).max_assignments == 5


def test_unfinished_reviews_are_late_once_the_review_deadline_has_passed(session, w, frozen):
    set_review_deadline(w.call, "pre", dt.datetime(2030, 4, 20, 17, 0))
    pre = call_review_progress(session, w.call).stages[0]
    assert pre.deadline == dt.datetime(2030, 4, 20, 15, 0, tzinfo=UTC)  # 17:00 in Paris, summer time
    assert (pre.late_now, pre.late, pre.late_proposals) == (False, 0, 0)
    frozen(dt.datetime(2030, 4, 21, 9, 0, tzinfo=UTC))
    pre = call_review_progress(session, w.call).stages[0]
    assert (pre.late_now, pre.late, pre.late_proposals) == (True, 3, 2)


def test_a_single_stage_call_has_one_stage_named_proposal(session, frozen):
    frozen(NOW)
    call = f.make_call(session, two_stage=False)
    make_proposal(session, call, "SOLO", state="under_review")
    session.commit()
    (stage,) = call_review_progress(session, call).stages
    assert (stage.kind, stage.label, stage.in_review, stage.short, stage.assignments) == ("full", "proposal", 1, 1, 0)


def test_the_figures_take_a_fixed_number_of_statements(session, w):
    def count() -> int:
        session.refresh(w.call)  # loaded before counting: only the figures' own statements are counted
        seen = []
        listener = lambda *args: seen.append(args[2])  # noqa: E731
        engine = session.get_bind()
        event.listen(engine, "before_cursor_execute", listener)
        try:
            call_review_progress(session, w.call)
        finally:
            event.remove(engine, "before_cursor_execute", listener)
        return len(seen)

    before = count()
    assert before == 4 + 2  # four aggregates, and each stage's review deadline from the reminders
    for i in range(6):
        p = make_proposal(session, w.call, f"MORE{i}", state="pre_review" if i % 2 else "under_review")
        submitted_review(session, assign(session, p, w.ann, stage="pre" if i % 2 else "full"), ALL_SCORES)
    session.commit()
    assert count() == before
