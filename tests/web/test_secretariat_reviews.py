"""The secretariat's review pages: the pool, conflicts with overrides, manual and automatic assignment (a
preview accepted, discarded, or refused when it went stale), progress with reminders and reopening, the
panel and the consensus (validation next to the fields), the ranking list (ties, approval freezes it), the
pre-stage invitations with the funders' budgets, and exports that agree with the database and are safe
against formula injection."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from dataclasses import dataclass

import openpyxl
import pytest
from pypdf import PdfReader
from sqlalchemy import func, select

from reviews.aggregation import enter_consensus
from reviews.models import Conflict, KeptPreview, PanelConsensus, RankingList, Review, ReviewAssignment
from reviews.ranking import invitation_budget
from tests import factories as f
from tests.unit.reviews_helpers import assign, make_proposal, make_reviewer, submitted_review
from tests.web.test_funder import login, unquote
from tests.web.test_reviewer_pages import error_of, text_of
from workflow.models import AuditEvent, OutboxMessage, Proposal

UTC = dt.UTC
NOW = dt.datetime(2030, 4, 2, 9, 0, tzinfo=UTC)
HEIDELBERG = (("Universität Heidelberg", "DE", "DFG-T", 200_000), ("Institut Curie", "FR", "ANR-T", 300_000),
              ("Hospital Clínic", "ES", "ISCIII-T", 100_000))
LATE = '<span class="badge text-bg-danger">late</span>'
EVIL = '=HYPERLINK("http://evil.example/x","click")'


@dataclass
class World:
    call: object
    sec: object
    reviewers: list  # Ann, Ben, Cid, Dag: no conflicts; Carla works in Heidelberg
    carla: object
    alpha: object
    beta: object
    gamma: object  # has a Heidelberg partner: Carla is conflicted


def build(session, frozen) -> World:
    frozen(NOW)
    call = f.make_call(session)
    sec = f.make_user(session, "Sam Secretariat", email="sam@jcs.example.org")
    from workflow.accounts import grant_role

    grant_role(session, None, sec, "secretariat", call.id)
    reviewers = [make_reviewer(session, call, name, email=f"{name.split()[0].lower()}@rev{i}.example.net",
                               keywords=kw, organisation=org, country=country)
                 for i, (name, kw, org, country) in enumerate((
                     ("Ann Andersen", ["oncology", "biomarkers"], "Aarhus University", "DK"),
                     ("Ben Bakker", ["diabetes"], "Universiteit Leiden", "NL"),
                     ("Cid Costa", ["cardiology"], "Universidade do Porto", "PT"),
                     ("Dag Dahl", ["oncology"], "University of Oslo", "NO")))]
    carla = make_reviewer(session, call, "Carla Conti", email="carla@uni-heidelberg.example.de",
                          keywords=["cardiology"], organisation="Universität Heidelberg", country="DE")
    alpha = make_proposal(session, call, "ALPHA", state="pre_review", keywords="oncology; biomarkers")
    beta = make_proposal(session, call, "BETA", state="pre_review", keywords="diabetes")
    gamma = make_proposal(session, call, "GAMMA", state="pre_review", keywords="cardiology", partners=HEIDELBERG)
    session.commit()
    return World(call, sec, reviewers, carla, alpha, beta, gamma)


@pytest.fixture
def w(session, frozen):
    return build(session, frozen)


def base(w) -> str:
    return f"/secretariat/calls/{w.call.id}/reviews"


def count(session, model, *where) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(model).where(*where))


def reviewed(session, proposal, reviewers, scores_list, comments=None):
    """Assign (pre stage) and submit one review per reviewer."""
    for reviewer, scores in zip(reviewers, scores_list, strict=True):
        submitted_review(session, assign(session, proposal, reviewer, stage="pre"), scores, comments)
    session.commit()


GOOD = {"excellence": 4.5, "impact": 4, "implementation": 4}
FAIR = {"excellence": 3, "impact": 3, "implementation": 3.5}


def consensus_form(scores=None, recommendation="recommended", summary="A convincing consortium.") -> dict:
    scores = scores if scores is not None else GOOD
    data = {f"score_{k}": (f"{v:g}" if v is not None else "") for k, v in scores.items()}
    data.update(recommendation=recommendation, summary=summary)
    return data


# ---------------------------------------------------------------------------------------------------------
# Access


@pytest.mark.parametrize("path", ["", "/pool", "/conflicts", "/pre/assignments", "/pre/assignments/preview?load_cap=3",
                                  "/pre/progress", "/pre/panel", "/pre/ranking", "/pre/invitations",
                                  "/pre/export/reviews.csv", "/pre/export/ranking.pdf"])
def test_review_pages_are_for_the_secretariat(client, w, path):
    login(client, w.reviewers[0])
    r = client.get(base(w) + path)
    assert r.status_code == 403 and "only the call secretariat" in text_of(r)
    client.post("/logout")
    assert client.get(base(w) + path).status_code == 302  # to the login page


def test_a_stage_the_call_does_not_have_is_not_found(client, session, frozen):
    frozen(NOW)
    call = f.make_call(session, two_stage=False)
    sec = f.secretariat(session, call)
    session.commit()
    login(client, sec)
    assert client.get(f"/secretariat/calls/{call.id}/reviews/pre/panel").status_code == 404
    assert client.get(f"/secretariat/calls/{call.id}/reviews/full/panel").status_code == 200


# ---------------------------------------------------------------------------------------------------------
# The pool and conflicts


def test_the_pool_lists_reviewers_with_status_profile_and_declaration_and_invites(client, session, w):
    login(client, w.sec)
    refused = client.post(base(w) + "/pool", data={"email": "not-an-address", "name": "X"})
    assert refused.status_code == 422
    assert error_of(refused.get_data(as_text=True), "email") == "this is not an e-mail address"
    assert 'value="not-an-address"' in refused.get_data(as_text=True)
    assert client.post(base(w) + "/pool", data={"email": "eva@example.org", "name": "Eva Expert"}).status_code == 302
    page = text_of(client.get(base(w) + "/pool"))
    assert "Eva Expert eva@example.org invited" in page
    assert "Ann Andersen" in page and "Aarhus University" in page and "Denmark" in page and "oncology; biomarkers" in page
    assert "accepted 1 July 2030" in page  # the declarations (made in the helpers at that date)
    home = text_of(client.get(base(w)))
    assert "5 reviewers in the pool" in home and "Pre-proposal 3 0 0 not built" in home
    mail = session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "reviewer_invitation"))
    assert mail.to_address == "eva@example.org" and "http://jointcall.test/review/invitations/" in mail.body_text


def test_conflicts_are_listed_with_reasons_and_overridden_only_with_a_justification(client, session, w):
    login(client, w.sec)
    page = text_of(client.get(base(w) + "/conflicts"))
    assert "GAMMA" in page and "Carla Conti" in page and "same organisation as a partner" in page
    assert "works at Universität Heidelberg, a partner of this proposal" in page
    assert "ALPHA" not in page
    assert client.post(base(w) + "/conflicts/detect").status_code == 303
    assert count(session, Conflict, Conflict.source == "detected") == 1

    url = f"{base(w)}/conflicts/{w.gamma.id}/{w.carla.id}/override"
    refused = client.post(url, data={"justification": "  "})
    assert refused.status_code == 422
    assert error_of(refused.get_data(as_text=True), "justification") == \
        "give the justification for overriding the conflict"
    assert client.post(url, data={"justification": "She left Heidelberg in 2025; the CSC agreed."}).status_code == 302
    page = text_of(client.get(base(w) + "/conflicts"))
    assert "overridden" in page and "She left Heidelberg in 2025; the CSC agreed." in page
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "conflict.overridden"))
    assert event.reason == "She left Heidelberg in 2025; the CSC agreed."
    # Now Carla is offered for GAMMA.
    html = client.get(base(w) + "/pre/assignments").get_data(as_text=True)
    select_gamma = re.search(rf'<select[^>]*id="add-{w.gamma.id}".*?</select>', html, re.S).group(0)
    assert "Carla Conti" in select_gamma


# ---------------------------------------------------------------------------------------------------------
# Assignment


def test_manual_assignment_offers_no_conflicted_reviewer_and_refuses_a_forged_one(client, session, w):
    login(client, w.sec)
    html = client.get(base(w) + "/pre/assignments").get_data(as_text=True)
    select_gamma = re.search(rf'<select[^>]*id="add-{w.gamma.id}".*?</select>', html, re.S).group(0)
    assert "Carla Conti" not in select_gamma and "Ann Andersen" in select_gamma
    r = client.post(base(w) + "/pre/assignments", data={"proposal_id": w.gamma.id, "reviewer_id": w.carla.id})
    assert r.status_code == 303
    assert "this reviewer is not available for this proposal" in text_of(client.get(r.location))
    assert count(session, ReviewAssignment) == 0

    client.post(base(w) + "/pre/assignments", data={"proposal_id": w.gamma.id, "reviewer_id": w.reviewers[0].id})
    (a,) = session.scalars(select(ReviewAssignment)).all()
    assert (a.proposal_id, a.reviewer_id, a.stage, a.source) == (w.gamma.id, w.reviewers[0].id, "pre", "manual")
    assert "Ann Andersen is assigned to GAMMA" in text_of(client.get(base(w) + "/pre/assignments"))
    client.post(f"{base(w)}/pre/assignments/{a.id}/remove")
    assert count(session, ReviewAssignment) == 0


def preview_token(html: str) -> str:
    return re.search(r'name="token" value="([^"]+)"', html).group(1)


def test_automatic_assignment_previews_pairs_with_reasons_then_accepts_exactly_them(client, session, w):
    login(client, w.sec)
    r = client.get(base(w) + "/pre/assignments/preview?load_cap=3&method=flow")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert "Nothing is assigned yet" in text_of(r) and "objective" in text_of(r)
    shown = {(int(p), int(rv)) for p, rv in re.findall(r'class="pair" data-proposal="(\d+)" data-reviewer="(\d+)"', html)}
    assert len(shown) == 9 and (w.gamma.id, w.carla.id) not in shown
    assert "shares keywords: oncology, biomarkers" in text_of(r)
    assert "best expertise match" in text_of(r)
    assert "Every proposal gets 3 reviewers" in text_of(r)
    assert count(session, ReviewAssignment) == 0  # a preview writes nothing

    accepted = client.post(base(w) + "/pre/assignments/preview/accept", data={"token": preview_token(html)})
    assert accepted.status_code == 303
    written = {(a.proposal_id, a.reviewer_id) for a in session.scalars(select(ReviewAssignment))}
    assert written == shown
    assert all(a.source == "auto" and a.explanation["reasons"] for a in session.scalars(select(ReviewAssignment)))
    assert "9 assignments written" in text_of(client.get(accepted.location))
    # One mail to each reviewer with new proposals.
    assert count(session, OutboxMessage, OutboxMessage.kind == "review_assignment") == len({r for _p, r in shown})


def test_a_preview_that_cannot_cover_every_proposal_says_why(client, w):
    login(client, w.sec)
    r = client.get(base(w) + "/pre/assignments/preview?load_cap=1")
    page = text_of(r)
    assert "would not get all their reviewers" in page
    # Five reviewers with a load cap of 1 fill 5 of the 9 places, and the page says what to do.
    assert sum(int(n) for n in re.findall(r"(\d) of 3 reviewers", page)) == 5
    assert "raise the load cap (now 1) or invite more reviewers" in page


def test_bad_parameters_are_shown_next_to_their_fields(client, w):
    login(client, w.sec)
    r = client.get(base(w) + "/pre/assignments/preview?load_cap=0&reviewers_per_proposal=2&country_penalty=3")
    assert r.status_code == 422
    html = r.get_data(as_text=True)
    assert error_of(html, "load_cap") == "from 1 to 1,000"
    assert error_of(html, "reviewers_per_proposal") == "at least 3 (and at most 50)"
    assert error_of(html, "country_penalty") == "between 0 and 1"


def test_discarding_writes_nothing_but_the_audit_says_so(client, session, w, monkeypatch):
    import webapp.secretariat.reviews as views

    login(client, w.sec)
    html = client.get(base(w) + "/pre/assignments/preview?load_cap=3").get_data(as_text=True)
    shown = len(re.findall(r'<tr class="pair"', html))
    assert count(session, KeptPreview) == 1

    def not_again(*_args, **_kwargs):
        raise AssertionError("discarding must not compute the assignment again")

    monkeypatch.setattr(views, "propose_assignment", not_again)  # seconds at the scale of a real call
    r = client.post(base(w) + "/pre/assignments/preview/discard", data={"token": preview_token(html)})
    assert r.status_code == 303 and "discarded" in text_of(client.get(r.location))
    assert count(session, ReviewAssignment) == 0 and count(session, KeptPreview) == 0
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "review.auto_assignment_discarded"))
    assert event.after["pairs"] == shown > 0 and event.after["method"] == "min-cost flow"


def test_a_stale_preview_is_not_written_and_the_new_one_is_shown(client, session, w):
    login(client, w.sec)
    html = client.get(base(w) + "/pre/assignments/preview?load_cap=3").get_data(as_text=True)
    # Meanwhile Ann is assigned to BETA by hand: the optimum changes.
    assign(session, w.beta, w.reviewers[0], stage="pre")
    session.commit()
    r = client.post(base(w) + "/pre/assignments/preview/accept", data={"token": preview_token(html)})
    assert r.status_code == 409 and "Nothing was written" in text_of(r)
    assert count(session, ReviewAssignment) == 1
    again = client.post(base(w) + "/pre/assignments/preview/accept", data={"token": preview_token(r.get_data(as_text=True))})
    assert again.status_code == 303 and count(session, ReviewAssignment) == 9
    # A forged token is refused.
    forged = client.post(base(w) + "/pre/assignments/preview/accept", data={"token": "x" + preview_token(html)})
    assert "no longer valid" in text_of(client.get(forged.location))
    assert count(session, ReviewAssignment) == 9


# ---------------------------------------------------------------------------------------------------------
# Progress, reminders, reopening


def test_progress_reminders_late_reviews_and_reopening(client, session, frozen, w):
    done = assign(session, w.alpha, w.reviewers[0], stage="pre")
    review = submitted_review(session, done, GOOD)
    assign(session, w.alpha, w.reviewers[1], stage="pre")
    session.commit()
    login(client, w.sec)
    page = text_of(client.get(base(w) + "/pre/progress"))
    assert "1 of 2" in page and "No review deadline has been given yet" in page

    url = base(w) + "/pre/progress/remind"
    refused = client.post(url, data={"deadline": ""})
    assert refused.status_code == 422 and error_of(refused.get_data(as_text=True), "deadline") == "give the review deadline"
    past = client.post(url, data={"deadline": "2030-04-01T12:00"})
    assert past.status_code == 422 and "has passed" in error_of(past.get_data(as_text=True), "deadline")
    assert client.post(url, data={"deadline": "2030-04-20T17:00"}).status_code == 303
    (reminder,) = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "review_reminder")).all()
    assert reminder.to_address == w.reviewers[1].email and "20 April 2030, 17:00 CEST" in reminder.subject
    page = text_of(client.get(base(w) + "/pre/progress"))
    assert "20 April 2030, 17:00 CEST" in page and LATE not in client.get(base(w) + "/pre/progress").get_data(as_text=True)
    frozen(dt.datetime(2030, 4, 21, 9, 0, tzinfo=UTC))
    late = client.get(base(w) + "/pre/progress").get_data(as_text=True)
    assert LATE in re.search(rf'<tr id="progress-{w.alpha.id}">.*?</tr>', late, re.S).group(0)

    reopen = f"/secretariat/reviews/{review.id}/reopen"
    refused = client.post(reopen, data={"reason": ""})
    assert refused.status_code == 422
    assert error_of(refused.get_data(as_text=True), "reason") == "say why the review is reopened; the reviewer will read it"
    assert client.post(reopen, data={"reason": "The Impact comment is about another proposal."}).status_code == 302
    session.expire_all()
    assert session.get(Review, review.id).status == "draft"
    told = session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "review_reopened"))
    assert "The Impact comment is about another proposal." in told.body_text


# ---------------------------------------------------------------------------------------------------------
# The panel and the consensus


def test_the_panel_table_shows_scores_side_by_side_means_and_disagreement(client, session, w):
    reviewed(session, w.alpha, w.reviewers[:3], [GOOD, FAIR, {"excellence": 2.5, "impact": 4, "implementation": 4}])
    login(client, w.sec)
    html = client.get(base(w) + "/pre/panel").get_data(as_text=True)
    row = re.search(rf'<tr id="panel-{w.alpha.id}">.*?</tr>', html, re.S).group(0)
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row))
    assert "4.5, 3, 2.5 · 3.33" in text  # Excellence: each score and the mean
    assert "disagreement (spread 2)" in text
    assert "10.83 of 15" in text  # weighted total of the means: 3.33 + 3.67 + 3.83
    assert "Enter the consensus" in text
    beta_row = re.search(rf'<tr id="panel-{w.beta.id}">.*?</tr>', html, re.S).group(0)
    assert "needs at least 3 completed reviews; this proposal has 0" in beta_row
    consensus = text_of(client.get(f"/secretariat/proposals/{w.alpha.id}/consensus"))
    assert "Ann Andersen" in consensus and "Reviews side by side" in consensus


def test_the_consensus_is_validated_next_to_its_fields(client, session, w):
    reviewed(session, w.alpha, w.reviewers[:3], [GOOD, GOOD, FAIR])
    login(client, w.sec)
    url = f"/secretariat/proposals/{w.alpha.id}/consensus"
    missing = client.post(url, data=consensus_form(scores=GOOD | {"impact": None}))
    assert missing.status_code == 422
    assert error_of(missing.get_data(as_text=True), "score_impact") == "give the consensus score for Impact"
    assert "A convincing consortium." in missing.get_data(as_text=True)
    low = client.post(url, data=consensus_form(scores={"excellence": 2.5, "impact": 4, "implementation": 4}))
    assert low.status_code == 422
    assert error_of(low.get_data(as_text=True), "recommendation") == (
        "a proposal can be recommended only if it meets every threshold: Excellence 2.5 is below its threshold 3")
    no_summary = client.post(url, data=consensus_form(summary=" "))
    assert error_of(no_summary.get_data(as_text=True), "summary") == \
        "write the panel's summary; the applicants will read it"
    assert count(session, PanelConsensus) == 0
    ok = client.post(url, data=consensus_form())
    assert ok.status_code == 302
    row = session.scalar(select(PanelConsensus))
    assert (row.scores, row.weighted_total, row.recommendation) == (GOOD, 12.5, "recommended")
    assert "12.5 · Recommended" in text_of(client.get(ok.location))


def three_with_consensus(session, w, totals=None):
    """ALPHA 12.5 recommended, BETA 9.5 not recommended, GAMMA 12.0 recommended if funds."""
    scores = totals or {"ALPHA": (GOOD, "recommended"), "BETA": (FAIR | {"implementation": 3.5, "impact": 3},
                                                                  "not_recommended"),
                        "GAMMA": ({"excellence": 4, "impact": 4, "implementation": 4}, "recommended_if_funds")}
    for p in (w.alpha, w.beta, w.gamma):
        reviewed(session, p, w.reviewers[:3], [GOOD, GOOD, GOOD])
        s, rec = scores[p.acronym]
        enter_consensus(session, w.sec, p, scores=s, recommendation=rec, summary=f"Summary of {p.acronym}.")
    session.commit()


def test_the_ranking_is_built_with_its_reasons_and_approval_freezes_it(client, session, w):
    three_with_consensus(session, w)
    login(client, w.sec)
    assert client.post(base(w) + "/pre/ranking/build").status_code == 303
    html = client.get(base(w) + "/pre/ranking").get_data(as_text=True)
    order = re.findall(r'<tr id="rank-(\d+)" data-proposal="(\d+)"', html)
    assert [int(p) for _, p in order] == [w.alpha.id, w.gamma.id, w.beta.id]
    assert "total 12, below ALPHA (12.5)" in text_of(client.get(base(w) + "/pre/ranking"))

    assert client.post(base(w) + "/pre/ranking/approve").status_code == 303
    session.expire_all()
    ranking = session.scalar(select(RankingList))
    assert ranking.status == "approved" and ranking.approved_by_id == w.sec.id and ranking.approved_at == NOW
    page = text_of(client.get(base(w) + "/pre/ranking"))
    assert "the list is frozen" in page and "Build the ranking list" not in page and "Rebuild" not in page
    # Frozen: no rebuild, and the consensus cannot change.
    rebuilt = client.post(base(w) + "/pre/ranking/build")
    assert "is frozen" in text_of(client.get(rebuilt.location))
    changed = client.post(f"/secretariat/proposals/{w.beta.id}/consensus",
                          data=consensus_form(scores=GOOD, recommendation="recommended"))
    assert changed.status_code == 422 and "is frozen" in text_of(changed)
    session.expire_all()
    assert session.scalar(select(PanelConsensus).where(PanelConsensus.proposal_id == w.beta.id)).recommendation == \
        "not_recommended"


def test_a_full_tie_asks_for_the_panels_vote(client, session, w):
    same = {"excellence": 4, "impact": 4, "implementation": 4}
    three_with_consensus(session, w, {"ALPHA": (same, "recommended"), "BETA": (same, "recommended"),
                                      "GAMMA": (FAIR, "not_recommended")})
    login(client, w.sec)
    r = client.post(base(w) + "/pre/ranking/build")
    assert r.status_code == 422 and "record the panel's vote" in text_of(r)
    html = r.get_data(as_text=True)
    assert f'name="vote_{w.alpha.id}"' in html and f'name="vote_{w.beta.id}"' in html
    assert count(session, RankingList) == 0
    r = client.post(base(w) + "/pre/ranking/build", data={f"vote_{w.alpha.id}": "2", f"vote_{w.beta.id}": "1",
                                                           "vote_note": "Panel vote of 18 September, 5 to 2."})
    assert r.status_code == 303
    page = text_of(client.get(base(w) + "/pre/ranking"))
    assert "placed below by the panel's vote" in page
    html = client.get(base(w) + "/pre/ranking").get_data(as_text=True)
    order = [int(p) for _, p in re.findall(r'<tr id="rank-(\d+)" data-proposal="(\d+)"', html)]
    assert order[:2] == [w.beta.id, w.alpha.id]
    built = session.scalar(select(AuditEvent).where(AuditEvent.action == "ranking.built"))
    assert built.reason == "Panel vote of 18 September, 5 to 2."


# ---------------------------------------------------------------------------------------------------------
# Pre-stage invitations


def test_invitations_show_the_budgets_of_the_invited_set_then_go_out(client, session, w):
    three_with_consensus(session, w)
    login(client, w.sec)
    approve_first = text_of(client.get(base(w) + "/pre/invitations"))
    assert "Approve the pre-proposal ranking list first" in approve_first
    client.post(base(w) + "/pre/ranking/build")
    client.post(base(w) + "/pre/ranking/approve")

    page = client.get(base(w) + "/pre/invitations")
    html = page.get_data(as_text=True)
    # First visit: what the panel recommended is ticked.
    ticked = {int(x) for x in re.findall(r'name="invite" value="(\d+)" id="invite-\d+" checked', html)}
    assert ticked == {w.alpha.id, w.gamma.id}
    expected = {b.funder: b for b in invitation_budget(session, w.call, [w.alpha.id, w.gamma.id])}
    dfg = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", re.search(r'<tr id="budget-DFG-T">.*?</tr>', html, re.S).group(0)))
    # ALPHA's Charité (250,000) and GAMMA's Heidelberg (200,000) against DFG-T's 2,000,000.
    assert expected["DFG-T"].requested == 450_000
    assert "€2,000,000" in dfg and "€450,000" in dfg and f"{expected['DFG-T'].ratio:.2f}×" in dfg
    assert "€1,350,000" in text_of(page)  # the invited set's total request

    only_alpha = client.get(base(w) + f"/pre/invitations?chosen=1&invite={w.alpha.id}")
    assert "1 proposal chosen, requesting €750,000 in total" in text_of(only_alpha)

    r = client.post(base(w) + "/pre/invitations", data={"invite": [str(w.alpha.id), str(w.gamma.id)],
                                                         "reason": "CSC meeting of 15 May."})
    assert r.status_code == 303
    session.expire_all()
    states = {p.acronym: p.state for p in session.scalars(select(Proposal))}
    assert states == {"ALPHA": "invited", "BETA": "not_invited", "GAMMA": "invited"}
    assert "1 is not invited" in text_of(client.get(r.location))
    sent = session.scalar(select(AuditEvent).where(AuditEvent.action == "call.invitations_sent"))
    assert sent.after["not_invited"] == [w.beta.reference] and sent.reason == "CSC meeting of 15 May."


# ---------------------------------------------------------------------------------------------------------
# Exports


def test_exports_agree_with_the_database_and_are_safe_against_formula_injection(client, session, w):
    comments = {"excellence": EVIL, "impact": "+1 for patients", "implementation": "Fine."}
    reviewed(session, w.alpha, w.reviewers[:3], [GOOD, FAIR, GOOD], comments)
    enter_consensus(session, w.sec, w.alpha, scores=GOOD, recommendation="recommended", summary="-- strong --")
    reviewed(session, w.beta, w.reviewers[:3], [FAIR, FAIR, FAIR])
    enter_consensus(session, w.sec, w.beta, scores=FAIR, recommendation="not_recommended", summary="Weak.")
    reviewed(session, w.gamma, w.reviewers[:3], [GOOD, GOOD, GOOD])
    enter_consensus(session, w.sec, w.gamma, scores=GOOD | {"impact": 3.5}, recommendation="recommended", summary="Ok.")
    session.commit()
    login(client, w.sec)

    r = client.get(base(w) + "/pre/export/reviews.csv")
    assert r.status_code == 200 and r.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(r.get_data(as_text=True).lstrip("\ufeff"))))
    header, data = rows[0], rows[1:]
    i = {h: n for n, h in enumerate(header)}
    assert len(data) == count(session, Review) == 9
    alpha_rows = [row for row in data if row[i["Acronym"]] == "ALPHA"]
    assert alpha_rows[0][i["Excellence comment"]] == "'" + EVIL  # stays text
    assert alpha_rows[0][i["Impact comment"]] == "'+1 for patients"
    db_scores = sorted(float(rv.scores["excellence"]) for rv in session.scalars(
        select(Review).where(Review.proposal_id == w.alpha.id)))
    assert sorted(float(row[i["Excellence score"]]) for row in alpha_rows) == db_scores
    assert {row[i["Reviewer"]] for row in alpha_rows} == {"Ann Andersen", "Ben Bakker", "Cid Costa"}

    x = client.get(base(w) + "/pre/export/reviews.xlsx")
    ws = openpyxl.load_workbook(io.BytesIO(x.data)).active
    xrows = list(ws.iter_rows(values_only=True))
    xi = {h: n for n, h in enumerate(xrows[0])}
    cell = next(row for row in xrows[1:] if row[xi["Acronym"]] == "ALPHA")[xi["Excellence comment"]]
    assert cell == "'" + EVIL and unquote(cell) == EVIL
    assert all(c.data_type != "f" for row in ws.iter_rows() for c in row)

    s = client.get(base(w) + "/pre/export/scores.xlsx")
    ws = openpyxl.load_workbook(io.BytesIO(s.data)).active
    srows = list(ws.iter_rows(values_only=True))
    si = {h: n for n, h in enumerate(srows[0])}
    alpha = next(row for row in srows[1:] if row[si["Acronym"]] == "ALPHA")
    assert alpha[si["Excellence mean"]] == pytest.approx(4.0) and alpha[si["Completed reviews"]] == 3
    assert alpha[si["Consensus total"]] == 12.5 and alpha[si["Panel summary"]] == "'-- strong --"
    assert alpha[si["Requested (EUR)"]] == 750_000

    client.post(base(w) + "/pre/ranking/build")
    client.post(base(w) + "/pre/ranking/approve")
    rx = client.get(base(w) + "/pre/export/ranking.xlsx")
    ws = openpyxl.load_workbook(io.BytesIO(rx.data)).active
    rrows = list(ws.iter_rows(values_only=True))
    ri = {h: n for n, h in enumerate(rrows[0])}
    assert [row[ri["Acronym"]] for row in rrows[1:]] == ["ALPHA", "GAMMA", "BETA"]
    assert [row[ri["Rank"]] for row in rrows[1:]] == [1, 2, 3]
    assert {row[ri["List status"]] for row in rrows[1:]} == {"approved"}
    pdf = client.get(base(w) + "/pre/export/ranking.pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.data)).pages)
    assert text.index("ALPHA") < text.index("GAMMA") < text.index("BETA")
    assert "Approved on" in text and "€750,000" in text
    assert client.get(base(w) + "/pre/export/reviews.pdf").status_code == 404


# ---------------------------------------------------------------------------------------------------------
# The full stage: applying the panel's decisions


def test_applying_the_panels_decisions_moves_full_proposals(client, session, frozen):
    frozen(f.FULL_CLOSED)
    call = f.make_call(session)
    sec = f.secretariat(session, call)
    reviewers = [make_reviewer(session, call, f"Rev {n}") for n in range(3)]
    good = make_proposal(session, call, "GOODONE", state="panel")
    weak = make_proposal(session, call, "WEAKONE", state="panel")
    waiting = make_proposal(session, call, "WAITING", state="panel")
    for p in (good, weak, waiting):
        for r in reviewers:
            submitted_review(session, assign(session, p, r), GOOD)
    enter_consensus(session, sec, good, scores=GOOD, recommendation="recommended", summary="Good.")
    enter_consensus(session, sec, weak, scores=FAIR, recommendation="not_recommended", summary="Weak.")
    session.commit()
    login(client, sec)
    r = client.post(f"/secretariat/calls/{call.id}/reviews/full/panel/apply")
    assert r.status_code == 303
    assert "1 proposal recommended, 1 not recommended" in text_of(client.get(r.location))
    session.expire_all()
    assert [session.get(Proposal, p.id).state for p in (good, weak, waiting)] == ["recommended", "not_recommended",
                                                                               "panel"]
