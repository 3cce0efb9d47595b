"""Aggregation, the panel's consensus, the ranking list with its recorded tie-breaks, approval, the
pre-stage invitations and the export rows (reviews.aggregation, reviews.ranking, reviews.exports;
DOMAIN rules 16, 19, 20)."""

from __future__ import annotations

import copy

import pytest
from sqlalchemy import select

from reviews import aggregation as agg
from reviews import exports
from reviews import ranking as rk
from reviews.models import PanelConsensus, RankingList
from tests import factories as f
from tests.unit.reviews_helpers import (
    ALL_COMMENTS,
    ALL_SCORES,
    assign,
    events,
    mails,
    make_proposal,
    make_reviewer,
    review_tables,  # noqa: F401  (fixture)
    submitted_review,
)
from workflow.callconfig import CallDef
from workflow.calls import load_call
from workflow.errors import AccessDenied, DomainError, InvalidInput
from workflow.guards import GuardContext, failing_guards

pytestmark = pytest.mark.usefixtures("review_tables")


def weighted_call(session):
    """Excellence counts double (JPND style); thresholds Excellence 3.5, others 3, total 14 of 20."""
    data = copy.deepcopy(f.BASE_DEFINITION)
    data["evaluation"] = {
        "criteria": [
            {"key": "excellence", "name": "Excellence", "weight": 2, "threshold": 3.5},
            {"key": "impact", "name": "Impact"},
            {"key": "implementation", "name": "Implementation"},
        ],
        "total_threshold": 14,
        "tie_break": ["excellence", "impact"],
    }
    return load_call(session, None, CallDef.model_validate(data)).call


REVIEWS = (
    {"excellence": 4, "impact": 3, "implementation": 4},
    {"excellence": 5, "impact": 2.5, "implementation": 3.5},
    {"excellence": 3, "impact": 4.5, "implementation": 4},
)


@pytest.fixture
def w(session, frozen):
    frozen(f.FULL_CLOSED)
    call = weighted_call(session)
    world = type("W", (), {})()
    world.session, world.call, world.sec = session, call, f.secretariat(session, call)
    world.proposal = make_proposal(session, call, "PGX", state="panel")
    world.reviewers = [make_reviewer(session, call, f"Reviewer {i}") for i in range(3)]
    world.assignments = [assign(session, world.proposal, r) for r in world.reviewers]
    session.commit()
    return world


def three_reviews(w):
    for a, scores in zip(w.assignments, REVIEWS, strict=True):
        submitted_review(w.session, a, scores)
    w.session.commit()


# ---------------------------------------------------------------------------------------------------------
# Aggregation


def test_aggregation_by_hand_with_weights_thresholds_and_disagreement(w):
    three_reviews(w)
    a = agg.proposal_aggregate(w.session, w.proposal)
    exc, imp, impl = a.criteria
    assert (exc.mean, exc.minimum, exc.maximum, exc.spread) == (4.0, 3.0, 5.0, 2.0)
    assert imp.mean == pytest.approx(10 / 3) and imp.spread == 2.0
    assert impl.mean == pytest.approx(11.5 / 3) and impl.spread == 0.5
    # Spreads of 2 points or more are disagreements; 0.5 is not.
    assert (exc.disagreement, imp.disagreement, impl.disagreement) == (True, True, False)
    assert a.disagreements == ["Excellence", "Impact"]
    # Weighted total: 2 x 4 + 10/3 + 11.5/3 = 15.1667, of 20; thresholds met.
    assert a.weighted_total == pytest.approx(8 + 10 / 3 + 11.5 / 3) and a.max_total == 20
    assert a.meets_total_threshold and exc.meets_threshold and a.meets_all_thresholds


def test_a_spread_just_under_two_points_is_not_a_disagreement(w):
    evaluation = w.call.settings.evaluation
    a = agg.aggregate(evaluation, [{"excellence": 3.5, "impact": 3, "implementation": 3},
                                   {"excellence": 5, "impact": 3, "implementation": 3}])
    assert a.criteria[0].spread == 1.5 and a.disagreements == []
    assert a.weighted_total == pytest.approx(2 * 4.25 + 3 + 3) and a.meets_total_threshold  # 14.5 >= 14
    low = agg.aggregate(evaluation, [{"excellence": 3, "impact": 3, "implementation": 3}] * 3)
    assert low.weighted_total == 12 and not low.meets_total_threshold and not low.criteria[0].meets_threshold


def test_thresholds_in_words():
    ev = CallDef.model_validate(copy.deepcopy(f.BASE_DEFINITION)).evaluation
    assert agg.threshold_failures(ev, {"excellence": 2.5, "impact": 4, "implementation": 4}) == [
        "Excellence 2.5 is below its threshold 3"]
    assert agg.threshold_failures(ev, {"excellence": 3, "impact": 3, "implementation": 3.5}) == [
        "the total 9.5 is below the threshold 10"]


# ---------------------------------------------------------------------------------------------------------
# The panel's consensus


def consensus(w, proposal=None, **kwargs):
    args = dict(scores={"excellence": 4, "impact": 3.5, "implementation": 4}, recommendation="recommended",
                summary="Strong, feasible project.") | kwargs
    row = agg.enter_consensus(w.session, w.sec, proposal or w.proposal, **args)
    w.session.commit()
    return row


def test_consensus_needs_three_completed_reviews(w):
    submitted_review(w.session, w.assignments[0], REVIEWS[0])
    submitted_review(w.session, w.assignments[1], REVIEWS[1])
    w.session.commit()
    with pytest.raises(DomainError, match="at least 3 completed reviews; this proposal has 2"):
        consensus(w)
    ctx = GuardContext(w.session, f.FULL_CLOSED, w.sec)
    assert failing_guards(["enough_reviews"], w.proposal, ctx) == [
        "the panel needs at least 3 completed reviews; this proposal has 2"]
    submitted_review(w.session, w.assignments[2], REVIEWS[2])
    w.session.commit()
    assert failing_guards(["enough_reviews"], w.proposal, ctx) == []
    row = consensus(w)
    assert (row.weighted_total, row.recommendation, row.stage) == (2 * 4 + 3.5 + 4, "recommended", "full")


def test_recommended_needs_every_threshold(w):
    three_reviews(w)
    with pytest.raises(InvalidInput, match="Excellence 3 is below its threshold 3.5") as refused:
        consensus(w, scores={"excellence": 3, "impact": 5, "implementation": 5})
    assert refused.value.field == "recommendation"
    with pytest.raises(InvalidInput, match=r"the total 13 is below the threshold 14"):
        consensus(w, scores={"excellence": 3.5, "impact": 3, "implementation": 3},
                  recommendation="recommended_if_funds")
    row = consensus(w, scores={"excellence": 3, "impact": 2, "implementation": 3}, recommendation="not_recommended")
    assert row.weighted_total == 11


@pytest.mark.parametrize(("kwargs", "field"), [
    (dict(scores={"excellence": 4.25, "impact": 3, "implementation": 3}), "score_excellence"),
    (dict(scores={"excellence": 4, "impact": 3}), "score_implementation"),
    (dict(recommendation="maybe"), "recommendation"),
    (dict(summary="   "), "summary"),
])
def test_consensus_input_is_checked(w, kwargs, field):
    three_reviews(w)
    with pytest.raises(InvalidInput) as refused:
        consensus(w, **kwargs)
    assert refused.value.field == field


def test_consensus_is_the_secretariats_is_entered_at_the_panel_and_every_change_is_audited(w):
    three_reviews(w)
    with pytest.raises(AccessDenied, match="only the call secretariat can run the panel"):
        agg.enter_consensus(w.session, w.reviewers[0], w.proposal, scores={}, recommendation="recommended",
                            summary="x")
    first = consensus(w)
    consensus(w, scores={"excellence": 4.5, "impact": 3.5, "implementation": 4})
    assert first.weighted_total == 2 * 4.5 + 3.5 + 4  # the same row, changed
    (entered,) = events(w.session, "panel.consensus_entered")
    (changed,) = events(w.session, "panel.consensus_changed")
    assert entered.after["weighted_total"] == 15.5
    assert (changed.before["weighted_total"], changed.after["weighted_total"]) == (15.5, 16.5)
    assert changed.before["scores"]["excellence"] == 4 and changed.after["scores"]["excellence"] == 4.5
    w.proposal.state = "rebuttal"
    w.session.commit()
    with pytest.raises(DomainError, match="entered when the proposal is with the panel"):
        consensus(w)


def test_the_consensus_moves_the_proposal_through_the_lifecycle(w):
    three_reviews(w)
    ctx = GuardContext(w.session, f.FULL_CLOSED, w.sec)
    assert failing_guards(["consensus_recommends"], w.proposal, ctx) == ["the panel's consensus has not been entered"]
    consensus(w)
    assert failing_guards(["consensus_entered", "consensus_recommends"], w.proposal, ctx) == []
    assert failing_guards(["consensus_not_recommended"], w.proposal, ctx) == ["the panel recommended this proposal"]
    agg.apply_consensus(w.session, w.sec, w.proposal)
    w.session.commit()
    assert w.proposal.state == "recommended"
    assert events(w.session, "proposal.recommend")[0].reason == "panel consensus: Recommended"


def test_the_panel_table_shows_reviews_consensus_and_rebuttal(w):
    from workflow.models import Rebuttal

    three_reviews(w)
    w.session.add(Rebuttal(proposal_id=w.proposal.id, text="We disagree on impact.", submitted_at=f.FULL_CLOSED,
                           submitted_by_id=w.proposal.coordinator_id))
    w.session.commit()
    (row,) = agg.panel_table(w.session, w.sec, w.call)
    assert (row.acronym, row.ready, row.rebuttal, row.consensus) == ("PGX", True, "We disagree on impact.", None)
    assert row.aggregate.disagreements == ["Excellence", "Impact"]


# ---------------------------------------------------------------------------------------------------------
# Ranking


def panel_proposal(session, call, acronym, scores, *, request=250_000, recommendation="recommended"):
    p = make_proposal(session, call, acronym, state="panel", partners=(
        ("Charité Berlin", "DE", "DFG-T", request), ("Institut Curie", "FR", "ANR-T", 300_000),
        ("Hospital Clínic", "ES", "ISCIII-T", 200_000)))
    ev = call.settings.evaluation
    session.add(PanelConsensus(call_id=call.id, proposal_id=p.id, stage="full", scores=scores,
                               weighted_total=agg.weighted_total(ev, scores), recommendation=recommendation,
                               summary="Summary.", entered_by_id=1))
    session.flush()
    return p


def s(exc, imp, impl):
    return {"excellence": exc, "impact": imp, "implementation": impl}


@pytest.fixture
def ranked(session, frozen):
    frozen(f.FULL_CLOSED)
    call = f.make_call(session)  # equal weights; tie-break Excellence, then Impact
    world = type("W", (), {})()
    world.session, world.call, world.sec = session, call, f.secretariat(session, call)
    world.p = {
        "ALPHA": panel_proposal(session, call, "ALPHA", s(5, 5, 4)),
        "DELTA": panel_proposal(session, call, "DELTA", s(4.5, 4, 4)),
        "CHARLIE": panel_proposal(session, call, "CHARLIE", s(4, 4.5, 4)),
        "BRAVO": panel_proposal(session, call, "BRAVO", s(4, 4, 4.5)),
        "ECHO": panel_proposal(session, call, "ECHO", s(4, 4, 4.5), request=150_000),
        "FOXTROT": panel_proposal(session, call, "FOXTROT", s(4, 4, 4.5)),
        "GOLF": panel_proposal(session, call, "GOLF", s(3.5, 3.5, 3)),
        "HOTEL": panel_proposal(session, call, "HOTEL", s(2, 2, 2), recommendation="not_recommended"),
    }
    session.commit()
    return world


def test_a_full_tie_needs_the_panels_vote(ranked):
    w = ranked
    with pytest.raises(rk.UnresolvedTie, match="BRAVO and FOXTROT; record the panel's vote"):
        rk.build_ranking(w.session, w.sec, w.call)


def test_the_ranking_is_strict_and_records_each_tie_break_in_words(ranked):
    w = ranked
    vote = [w.p["FOXTROT"].id, w.p["BRAVO"].id]
    ranking = rk.build_ranking(w.session, w.sec, w.call, panel_vote=vote, vote_note="Panel vote 5 to 2")
    w.session.commit()
    rows = [(e.rank, e.proposal.acronym, e.total, e.tie_break_note) for e in ranking.entries]
    assert rows == [
        (1, "ALPHA", 14, "highest total"),
        (2, "DELTA", 12.5, "total 12.5, below ALPHA (14)"),
        (3, "CHARLIE", 12.5, "tied with DELTA on total 12.5; lower Excellence (4 vs 4.5)"),
        (4, "ECHO", 12.5, "tied with CHARLIE on total 12.5, Excellence 4; lower Impact (4 vs 4.5)"),
        (5, "FOXTROT", 12.5, "tied with ECHO on total 12.5, Excellence 4, Impact 4; larger request "
                             "(€750,000 vs €650,000)"),
        (6, "BRAVO", 12.5, "tied with FOXTROT on total 12.5, Excellence 4, Impact 4 and request (€750,000); "
                           "placed below by the panel's vote"),
        (7, "GOLF", 10, "total 10, below BRAVO (12.5)"),
    ]  # HOTEL, not recommended, is not ranked
    (built,) = events(w.session, "ranking.built")
    assert built.reason == "Panel vote 5 to 2" and built.after["panel_vote_used"] is True
    assert ranking.status == "draft"


def test_the_digest_of_a_ranking_is_the_list_in_a_few_columns(ranked):
    """reviews.ranking.ranking_digest (the invitations page) says what ranked_proposals says of each place."""
    w = ranked
    ranking = rk.build_ranking(w.session, w.sec, w.call, panel_vote=[w.p["FOXTROT"].id, w.p["BRAVO"].id])
    w.session.commit()
    digest = rk.ranking_digest(w.session, ranking)
    full = rk.ranked_proposals(w.session, ranking)
    assert [(d.proposal_id, d.rank, d.total, d.reference, d.acronym, d.state, d.recommendation, d.requested)
            for d in digest] == [
        (r.proposal.id, r.entry.rank, r.entry.total, r.proposal.reference, r.proposal.acronym, r.proposal.state,
         r.consensus.recommendation, r.requested) for r in full]
    assert [d.acronym for d in digest] == ["ALPHA", "DELTA", "CHARLIE", "ECHO", "FOXTROT", "BRAVO", "GOLF"]
    assert digest[3].requested == rk.requested_amount(w.p["ECHO"])  # ECHO asks for less than the others
    assert digest[3].requested != digest[4].requested


def test_approval_freezes_the_list_and_the_consensus(ranked):
    w = ranked
    vote = [w.p["FOXTROT"].id, w.p["BRAVO"].id]
    ranking = rk.build_ranking(w.session, w.sec, w.call, panel_vote=vote)
    w.session.commit()
    outsider = f.make_user(w.session, "Olga Outsider")
    with pytest.raises(AccessDenied, match="only the call secretariat can record the approval"):
        rk.approve_ranking(w.session, outsider, ranking)
    rk.approve_ranking(w.session, w.sec, ranking)
    w.session.commit()
    assert ranking.status == "approved" and ranking.approved_by_id == w.sec.id
    assert events(w.session, "ranking.approved")[0].after["order"][0]["proposal_id"] == w.p["ALPHA"].id
    with pytest.raises(DomainError, match="approved on 25 June 2030, 14:00 CEST and is frozen"):
        rk.build_ranking(w.session, w.sec, w.call, panel_vote=vote)
    with pytest.raises(DomainError, match="is frozen"):
        agg.enter_consensus(w.session, w.sec, w.p["GOLF"], scores=s(5, 5, 5), recommendation="recommended",
                            summary="Better now.")
    with pytest.raises(DomainError, match="approved already"):
        rk.approve_ranking(w.session, w.sec, ranking)
    ctx = GuardContext(w.session, f.FULL_CLOSED, w.sec)
    assert failing_guards(["ranking_approved"], w.p["ALPHA"], ctx) == []


def test_the_approved_ranking_moves_the_proposals_and_feeds_the_funding_list(ranked):
    from workflow.funding_ops import compute_scenario

    w = ranked
    ranking = rk.build_ranking(w.session, w.sec, w.call, panel_vote=[w.p["FOXTROT"].id, w.p["BRAVO"].id])
    with pytest.raises(DomainError, match="has not been approved"):
        rk.funding_ranking(w.session, w.call)
    rk.approve_ranking(w.session, w.sec, ranking)
    # The panel decides only on proposals with at least three completed reviews (rule 16).
    reviewers = [make_reviewer(w.session, w.call, f"Reviewer {n}") for n in range(3)]
    for p in w.p.values():
        for reviewer in reviewers:
            submitted_review(w.session, assign(w.session, p, reviewer), ALL_SCORES)
    assert agg.apply_panel_decisions(w.session, w.sec, w.call) == {"recommend": 7, "not_recommend": 1}
    w.session.commit()
    assert (w.p["ALPHA"].state, w.p["HOTEL"].state) == ("recommended", "not_recommended")
    entries = rk.funding_ranking(w.session, w.call)
    assert [(e.proposal_id, e.score) for e in entries][:2] == [(w.p["ALPHA"].id, 14), (w.p["DELTA"].id, 12.5)]
    scenario = compute_scenario(w.session, w.sec, w.call, entries)
    assert [o.proposal_id for o in scenario.outcomes] == [e.proposal_id for e in ranking.entries]


def test_a_list_older_than_the_consensus_cannot_be_approved(ranked):
    w = ranked
    ranking = rk.build_ranking(w.session, w.sec, w.call, panel_vote=[w.p["FOXTROT"].id, w.p["BRAVO"].id])
    golf = w.session.scalar(select(PanelConsensus).where(PanelConsensus.proposal_id == w.p["GOLF"].id))
    golf.weighted_total = 11.0
    w.session.commit()
    with pytest.raises(DomainError, match="consensus changed since this list was built"):
        rk.approve_ranking(w.session, w.sec, ranking)


def test_every_proposal_with_the_panel_needs_a_consensus_before_ranking(ranked):
    w = ranked
    make_proposal(w.session, w.call, "INDIA", state="panel")
    w.session.commit()
    with pytest.raises(DomainError, match="enter the panel's consensus first for: INDIA"):
        rk.build_ranking(w.session, w.sec, w.call)


def test_ranking_export_rows(ranked):
    w = ranked
    rk.build_ranking(w.session, w.sec, w.call, panel_vote=[w.p["FOXTROT"].id, w.p["BRAVO"].id])
    rows = exports.ranking_rows(w.session, w.sec, w.call)
    assert [r["acronym"] for r in rows][:3] == ["ALPHA", "DELTA", "CHARLIE"]
    assert list(rows[0]) == [
        "rank", "reference", "acronym", "title", "coordinator", "coordinator_organisation", "excellence", "impact",
        "implementation", "total", "recommendation", "requested_amount", "tie_break", "list_status", "approved_at"]
    assert (rows[4]["requested_amount"], rows[4]["tie_break"].endswith("(€750,000 vs €650,000)")) == (750_000, True)
    with pytest.raises(AccessDenied):
        exports.ranking_rows(w.session, w.p["ALPHA"].coordinator, w.call)


def test_review_and_score_export_rows(w):
    three_reviews(w)
    consensus(w)
    reviews = exports.review_rows(w.session, w.sec, w.call)
    assert len(reviews) == 3 and reviews[1]["excellence_score"] == 5
    assert reviews[0]["impact_comment"] == ALL_COMMENTS["impact"] and reviews[0]["status"] == "submitted"
    (scores,) = exports.score_rows(w.session, w.sec, w.call)
    assert (scores["excellence_mean"], scores["excellence_disagreement"], scores["impact_mean"]) == (4.0, True, 3.33)
    assert (scores["consensus_total"], scores["recommendation"]) == (15.5, "Recommended")


# ---------------------------------------------------------------------------------------------------------
# The pre-proposal stage: invitations


@pytest.fixture
def pre(session, frozen):
    frozen(f.PRE_CLOSED)
    call = f.make_call(session)
    world = type("W", (), {})()
    world.session, world.call, world.sec = session, call, f.secretariat(session, call)
    world.p = []
    for acronym, scores, dfg in (("ONE", s(5, 5, 5), 600_000), ("TWO", s(4, 4, 4), 900_000),
                                 ("THREE", s(3, 3, 3), 500_000), ("FOUR", s(2, 2, 2), 400_000)):
        p = make_proposal(session, call, acronym, state="pre_review", partners=(
            ("Charité Berlin", "DE", "DFG-T", dfg), ("Institut Curie", "FR", "ANR-T", 300_000),
            ("Ottawa Hospital", "CA", "CIHR-T", 100_000)))
        session.add(PanelConsensus(call_id=call.id, proposal_id=p.id, stage="pre", scores=scores,
                                   weighted_total=sum(scores.values()),
                                   recommendation="recommended" if scores["impact"] >= 3 else "not_recommended",
                                   summary="Summary.", entered_by_id=world.sec.id))
        world.p.append(p)
    session.commit()
    return world


def test_the_budget_of_the_invited_set_per_funder(pre):
    w = pre
    rows = {r.funder: r for r in rk.invitation_budget(w.session, w.call, [w.p[0].id, w.p[1].id])}
    assert (rows["DFG-T"].committed, rows["DFG-T"].requested, rows["DFG-T"].ratio) == (2_000_000, 1_500_000, 0.75)
    assert (rows["ANR-T"].requested, rows["ANR-T"].ratio) == (600_000, 0.4)
    assert (rows["CIHR-T"].requested, rows["CIHR-T"].ratio, rows["CIHR-T"].above_guidance) == (200_000, 0.4, False)
    assert rows["MOH-T"].requested == 0
    assert list(rows) == ["ANR-T", "CIHR-T", "DFG-T", "ISCIII-T", "MOH-T"]
    heavy = rk.invitation_budget(w.session, w.call, [p.id for p in w.p])
    assert {r.funder: r.requested for r in heavy}["CIHR-T"] == 400_000


def test_invitations_need_the_approved_ranking_and_fire_the_transitions(pre):
    w = pre
    with pytest.raises(DomainError, match="approve the pre-proposal ranking list first"):
        rk.send_invitations(w.session, w.sec, w.call, [w.p[0].id])
    ranking = rk.build_ranking(w.session, w.sec, w.call, "pre")
    assert [e.proposal.acronym for e in ranking.entries] == ["ONE", "TWO", "THREE", "FOUR"]
    rk.approve_ranking(w.session, w.sec, ranking)
    w.session.commit()
    ctx = GuardContext(w.session, f.PRE_CLOSED, w.sec)
    assert failing_guards(["ranking_approved"], w.p[0], ctx) == []
    with pytest.raises(InvalidInput, match="only pre-proposals under review can be invited"):
        rk.send_invitations(w.session, w.sec, w.call, [w.p[0].id, 999_999])
    outcome = rk.send_invitations(w.session, w.sec, w.call, [w.p[0].id, w.p[1].id], reason="CSC meeting 20 May")
    w.session.commit()
    assert [p.acronym for p in outcome.invited] == ["ONE", "TWO"]
    assert [p.acronym for p in outcome.not_invited] == ["THREE", "FOUR"]
    assert [p.state for p in w.p] == ["invited", "invited", "not_invited", "not_invited"]
    assert {m.to_address for m in mails(w.session, "invitation")} == {w.p[0].coordinator.email,
                                                                        w.p[1].coordinator.email}
    assert len(mails(w.session, "decision")) == 2
    assert [e.reason for e in events(w.session, "proposal.invite")] == ["CSC meeting 20 May"] * 2
    (sent,) = events(w.session, "call.invitations_sent")
    assert sent.after["invited"] == [w.p[0].reference, w.p[1].reference]
    with pytest.raises(DomainError, match="no pre-proposal is waiting"):
        rk.send_invitations(w.session, w.sec, w.call, [])


def test_ranking_list_is_unique_per_stage(pre):
    w = pre
    rk.build_ranking(w.session, w.sec, w.call, "pre")
    rk.build_ranking(w.session, w.sec, w.call, "pre")
    w.session.commit()
    assert w.session.query(RankingList).count() == 1
    assert len(events(w.session, "ranking.built")) == 2
