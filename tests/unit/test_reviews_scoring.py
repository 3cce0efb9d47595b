"""The review form: half points, completeness, the lock, reopening, the rebuttal lock, audit of score
changes, reminders (reviews.scoring; DOMAIN rules 15, 18, 24) and who sees which reviews (reviews.visibility)."""

from __future__ import annotations

import datetime as dt
import math

import pytest

from reviews import scoring as sc
from reviews import visibility as vis
from reviews.models import Review
from tests import factories as f
from tests.unit.reviews_helpers import (
    ALL_COMMENTS,
    ALL_SCORES,
    assign,
    count,
    events,
    mails,
    make_proposal,
    make_reviewer,
    review_tables,  # noqa: F401  (fixture)
    set_evaluation,
    submitted_review,
)
from workflow.errors import AccessDenied, ChangedMeanwhile, DomainError, InvalidInput
from workflow.models import ProposalMember

pytestmark = pytest.mark.usefixtures("review_tables")
UTC = dt.UTC


@pytest.fixture
def w(session, frozen):
    frozen(f.FULL_CLOSED)
    call = f.make_call(session)
    world = type("W", (), {})()
    world.session, world.call, world.sec = session, call, f.secretariat(session, call)
    world.proposal = make_proposal(session, call, "PGX")
    world.rita = make_reviewer(session, call, "Rita Reviewer")
    world.otto = make_reviewer(session, call, "Otto Other")
    world.a = assign(session, world.proposal, world.rita)
    world.b = assign(session, world.proposal, world.otto)
    session.commit()
    return world


def save(w, assignment=None, actor=None, **kwargs):
    args = dict(scores=ALL_SCORES, comments=ALL_COMMENTS, recommendation="recommended") | kwargs
    review = sc.save_review(w.session, actor or w.rita, assignment or w.a, **args)
    w.session.commit()
    return review


# ---------------------------------------------------------------------------------------------------------
# Scores


@pytest.mark.parametrize("value", [0, 0.5, 3, 4.5, 5, 5.0])
def test_scores_from_0_to_5_in_half_points_are_accepted(w, value):
    review = save(w, scores={"excellence": value})
    assert review.scores == {"excellence": value}


@pytest.mark.parametrize("value", [5.5, 2.25, -0.5, "3", "4.5", True, math.nan, math.inf, 6, [3]])
def test_anything_else_is_refused_and_nothing_is_saved(w, value):
    with pytest.raises(InvalidInput, match="a score is") as refused:
        save(w, scores={"excellence": 4, "impact": value})
    assert refused.value.field == "score_impact"
    w.session.rollback()
    assert count(w.session, Review) == 0


def test_the_web_layer_parses_form_text():
    assert sc.parse_score("3,5") == 3.5 and sc.parse_score(" 4 ") == 4.0 and sc.parse_score("") is None
    for text in ("abc", "2.25", "5.5"):
        with pytest.raises(InvalidInput):
            sc.parse_score(text, "score_excellence")


def test_unknown_criteria_and_recommendations_are_refused(w):
    with pytest.raises(InvalidInput, match="'novelty' is not a criterion"):
        save(w, scores={"novelty": 3})
    with pytest.raises(InvalidInput, match="choose one of the recommendations") as refused:
        save(w, recommendation="fund it")
    assert refused.value.field == "recommendation"


def test_the_form_has_the_calls_criteria_and_labels(w):
    form = sc.review_form(w.call)
    assert [c.name for c in form] == ["Excellence", "Impact", "Quality and efficiency of the implementation"]
    assert form[0].labels["3"] == "Good" and form[0].choices[:3] == (0.0, 0.5, 1.0) and len(form[0].choices) == 11


# ---------------------------------------------------------------------------------------------------------
# Drafts, completeness, the lock


def test_a_draft_may_be_incomplete_but_submission_needs_every_score_comment_and_a_recommendation(w):
    save(w, scores={"excellence": 4}, comments={"excellence": "Good.", "impact": "  "}, recommendation=None)
    with pytest.raises(InvalidInput) as refused:
        sc.submit_review(w.session, w.rita, w.a)
    assert str(refused.value) == (
        "the review is not complete: it still needs a score for Impact, a comment on Impact, a score for Quality "
        "and efficiency of the implementation, a comment on Quality and efficiency of the implementation, "
        "a recommendation")
    w.session.rollback()
    review = sc.submit_review(w.session, w.rita, w.a, scores=ALL_SCORES, comments=ALL_COMMENTS,
                              recommendation="recommended_if_funds")
    w.session.commit()
    assert review.status == "submitted" and review.submitted_at == f.FULL_CLOSED


def test_a_submitted_review_is_locked_until_the_secretariat_reopens_it(w):
    save(w)
    sc.submit_review(w.session, w.rita, w.a)
    w.session.commit()
    with pytest.raises(DomainError, match="submitted and is locked; ask the call secretariat to reopen it"):
        save(w, scores=ALL_SCORES | {"impact": 2})
    w.session.rollback()
    review = sc.review_of(w.session, w.a)
    with pytest.raises(AccessDenied, match="only the call secretariat can reopen"):
        sc.reopen_review(w.session, w.rita, review, reason="please")
    with pytest.raises(InvalidInput, match="say why"):
        sc.reopen_review(w.session, w.sec, review, reason=" ")
    sc.reopen_review(w.session, w.sec, review, reason="Impact comment is about another proposal.")
    w.session.commit()
    assert review.status == "draft" and review.submitted_at is None
    (told,) = mails(w.session, "review_reopened")
    assert told.to_address == w.rita.email and "Impact comment is about another proposal." in told.body_text
    assert events(w.session, "review.reopened")[0].reason == "Impact comment is about another proposal."
    assert save(w, scores=ALL_SCORES | {"impact": 2}).scores["impact"] == 2


@pytest.mark.parametrize("state", ["rebuttal", "panel", "recommended"])
def test_after_the_rebuttal_opens_reviews_cannot_change(w, state):
    save(w)
    review = sc.submit_review(w.session, w.rita, w.a)
    w.proposal.state = state
    w.session.commit()
    with pytest.raises(DomainError, match="reviews can no longer be changed: the rebuttal has opened"):
        save(w, assignment=w.b, actor=w.otto)
    with pytest.raises(DomainError, match="the rebuttal has opened"):
        sc.reopen_review(w.session, w.sec, review, reason="too late")


def test_only_the_assigned_reviewer_writes_the_review(w):
    with pytest.raises(AccessDenied, match="assigned to someone else"):
        save(w, actor=w.otto)
    with pytest.raises(AccessDenied, match="assigned to someone else"):
        save(w, actor=w.sec)


def test_a_save_from_an_outdated_page_is_refused(w):
    review = save(w)
    seen = review.version
    save(w, scores=ALL_SCORES | {"impact": 5})
    with pytest.raises(ChangedMeanwhile, match="this review was changed by someone else"):
        sc.save_review(w.session, w.rita, w.a, scores=ALL_SCORES, comments=ALL_COMMENTS,
                       recommendation="recommended", expected_version=seen)


def test_every_score_change_is_audited_with_before_and_after(w):
    save(w, scores={"excellence": 4})
    save(w, scores={"excellence": 4})  # nothing changed: nothing recorded
    save(w, scores={"excellence": 3.5, "impact": 2})
    saved = events(w.session, "review.saved")
    assert len(saved) == 2
    assert (saved[0].before["scores"], saved[0].after["scores"]) == ({"excellence": None}, {"excellence": 4})
    assert saved[0].after["comments"] == ALL_COMMENTS and saved[0].after["recommendation"] == "recommended"
    assert (saved[1].before["scores"], saved[1].after["scores"]) == (
        {"excellence": 4, "impact": None}, {"excellence": 3.5, "impact": 2})
    assert "comments" not in saved[1].after
    sc.submit_review(w.session, w.rita, w.a, scores=ALL_SCORES, comments=ALL_COMMENTS, recommendation="recommended")
    assert events(w.session, "review.submitted")[0].after["scores"] == ALL_SCORES


# ---------------------------------------------------------------------------------------------------------
# Reminders


def test_reminders_go_to_reviewers_with_unfinished_reviews_once_a_day(w, frozen):
    submitted_review(w.session, w.b, ALL_SCORES)  # Otto is done
    other = make_proposal(w.session, w.call, "CARDIO")
    assign(w.session, other, w.otto)
    assign(w.session, other, w.rita)
    w.session.commit()
    deadline = dt.datetime(2030, 7, 15, 15, 0, tzinfo=UTC)
    assert sc.send_reminders(w.session, w.sec, w.call, deadline=deadline) == 2
    w.session.commit()
    to_rita = next(m for m in mails(w.session, "review_reminder") if m.to_address == w.rita.email)
    assert "2 reviews due by 15 July 2030, 17:00 CEST" in to_rita.subject
    assert "PGX" in to_rita.body_text and "CARDIO" in to_rita.body_text
    assert sc.send_reminders(w.session, w.sec, w.call, deadline=deadline) == 0  # same day: no repeat
    frozen(f.FULL_CLOSED + dt.timedelta(days=1))
    assert sc.send_reminders(w.session, w.sec, w.call, deadline=deadline) == 2
    frozen(deadline)
    with pytest.raises(InvalidInput, match="has passed"):
        sc.send_reminders(w.session, w.sec, w.call, deadline=deadline)
    with pytest.raises(AccessDenied):
        sc.send_reminders(w.session, w.rita, w.call, deadline=deadline)


def _with_review_deadline(w, local: dt.datetime) -> None:
    from workflow.callconfig import parse_call_definition
    from workflow.calls import load_call
    from workflow.console import definition_data

    data = definition_data(w.call.settings)
    next(st for st in data["stages"] if st["kind"] == "full")["review_deadline"] = local
    load_call(w.session, w.sec, parse_call_definition(data))
    w.session.commit()
    w.call.__dict__.pop("settings", None)


def test_scheduled_reminders_go_out_seven_and_two_days_before_the_review_deadline_only(w, frozen):
    submitted_review(w.session, w.b, ALL_SCORES)  # Otto is done; Rita is not
    _with_review_deadline(w, dt.datetime(2030, 7, 15, 17, 0))  # Europe/Paris, CEST
    sent = lambda: [m.to_address for m in mails(w.session, "review_reminder")]  # noqa: E731
    frozen(dt.datetime(2030, 7, 7, 12, 0, tzinfo=UTC))  # 8 days before: nothing
    assert sc.remind_before_review_deadlines(w.session) == [] and sent() == []
    frozen(dt.datetime(2030, 7, 8, 6, 0, tzinfo=UTC))  # 7 days before
    assert [(c.id, stage, n) for c, stage, n in sc.remind_before_review_deadlines(w.session)] == [(w.call.id, "full", 1)]
    w.session.commit()
    assert sent() == [w.rita.email]
    assert "1 review due by 15 July 2030, 17:00 CEST" in mails(w.session, "review_reminder")[0].subject
    event = events(w.session, "review.reminders_sent")[-1]
    assert event.actor_label == "system" and event.after["queued"] == 1
    assert [n for *_, n in sc.remind_before_review_deadlines(w.session)] == [0]  # run again the same day
    assert len(events(w.session, "review.reminders_sent")) == 1  # and the rerun left no record
    frozen(dt.datetime(2030, 7, 10, 6, 0, tzinfo=UTC))  # 5 days before: nothing
    assert sc.remind_before_review_deadlines(w.session) == []
    frozen(dt.datetime(2030, 7, 13, 6, 0, tzinfo=UTC))  # 2 days before
    assert [n for *_, n in sc.remind_before_review_deadlines(w.session)] == [1]
    w.session.commit()
    assert sent() == [w.rita.email, w.rita.email]
    frozen(dt.datetime(2030, 7, 15, 15, 0, 1, tzinfo=UTC))  # the deadline has passed
    assert sc.remind_before_review_deadlines(w.session, days_before=(0,)) == []


# ---------------------------------------------------------------------------------------------------------
# Visibility


def test_a_reviewer_sees_the_others_only_after_submitting_and_without_names(w):
    dora = make_reviewer(w.session, w.call, "Dora Draft")
    c = assign(w.session, w.proposal, dora)
    submitted_review(w.session, w.b, ALL_SCORES | {"impact": 2})
    w.session.add(Review(assignment_id=c.id, proposal_id=w.proposal.id, reviewer_id=dora.id, stage="full",
                         scores={"impact": 5}, comments={}, status="draft"))
    w.session.commit()
    save(w)
    view = vis.reviews_for(w.session, w.rita, w.proposal)
    assert view.own.label == "Reviewer 1" and view.own.status == "draft"
    assert view.others == [] and view.others_hidden == "the other reviews are shown once you have submitted yours"
    sc.submit_review(w.session, w.rita, w.a)
    view = vis.reviews_for(w.session, w.rita, w.proposal)
    assert [(o.label, o.reviewer_name) for o in view.others] == [("Reviewer 2", None)]  # not Dora's draft
    assert view.others[0].criteria[1].score == 2 and view.others[0].recommendation == "Recommended for funding"
    assert "Otto" not in repr(view)


def test_call_settings_show_names_and_lift_the_wait(w):
    submitted_review(w.session, w.b, ALL_SCORES)
    w.session.commit()
    set_evaluation(w.call, hide_other_reviews_until_submitted=False, show_reviewer_names=True)
    view = vis.reviews_for(w.session, w.rita, w.proposal)
    assert view.own is None
    assert [(o.label, o.reviewer_name) for o in view.others] == [("Reviewer 2 (Otto Other)", "Otto Other")]


def test_the_secretariat_sees_every_review_with_names(w):
    submitted_review(w.session, w.b, ALL_SCORES)
    save(w, scores={"excellence": 1})
    view = vis.reviews_for(w.session, w.sec, w.proposal)
    assert [(o.reviewer_name, o.status) for o in view.others] == [("Rita Reviewer", "draft"),
                                                                  ("Otto Other", "submitted")]


def test_outsiders_and_applicants_cannot_open_the_reviews(w):
    with pytest.raises(AccessDenied, match="only the call secretariat and the proposal's reviewers"):
        vis.reviews_for(w.session, w.proposal.coordinator, w.proposal)
    not_assigned = make_reviewer(w.session, w.call, "Nina Notassigned")
    with pytest.raises(AccessDenied, match="this proposal is not available to you"):
        vis.reviews_for(w.session, not_assigned, w.proposal)


def test_applicants_see_anonymised_comments_only_once_released(w):
    submitted_review(w.session, w.a, ALL_SCORES)
    submitted_review(w.session, w.b, ALL_SCORES | {"impact": 2},
                     comments=ALL_COMMENTS | {"impact": "Unclear impact."})
    member = f.make_user(w.session, "Mia Member")
    w.session.add(ProposalMember(proposal_id=w.proposal.id, user_id=member.id))
    w.session.commit()
    w.session.refresh(w.proposal)
    assert vis.applicant_reviews(w.session, w.proposal.coordinator, w.proposal) == []
    with pytest.raises(AccessDenied, match="only the call secretariat can run the panel"):
        vis.release_proposal_reviews(w.session, w.rita, w.proposal)
    assert vis.release_proposal_reviews(w.session, w.sec, w.proposal) == 2
    w.session.commit()
    seen = vis.applicant_reviews(w.session, member, w.proposal)
    assert [r.label for r in seen] == ["Reviewer 1", "Reviewer 2"]
    assert seen[1].criteria[1].comment == "Unclear impact."
    assert "Rita" not in repr(seen) and "Otto" not in repr(seen)
    assert events(w.session, "review.released")[0].after == {"stage": "full", "reviews": 2}
    with pytest.raises(AccessDenied):
        vis.applicant_reviews(w.session, w.rita, w.proposal)
