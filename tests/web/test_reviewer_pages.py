"""The reviewer's pages: the mailed invitation (a new account chooses its password, declining needs no
login), the declaration before any proposal text, the profile, declaring conflicts (acronym, title and
partner organisations only), the review form from the call's criteria (messages next to fields, the
draft kept, locked after submission), the other reviews only after one's own, and a conflicted reviewer
refused on every page of the proposal with nothing of it in the answer."""

from __future__ import annotations

import datetime as dt
import html as htmllib
import re
from dataclasses import dataclass

import pytest
from sqlalchemy import select

from reviews.models import Conflict, Review, ReviewAssignment, ReviewerInvitation, ReviewerProfile
from tests import factories as f
from tests.unit.reviews_helpers import assign, make_proposal, make_reviewer, submitted_review
from tests.web.test_funder import login
from workflow.access import is_reviewer
from workflow.models import AuditEvent, OutboxMessage, User

UTC = dt.UTC
REVIEW_NOW = dt.datetime(2030, 4, 2, 9, 0, tzinfo=UTC)  # the pre-proposals are under review
SCORES = {"excellence": "4", "impact": "3.5", "implementation": "4.5"}
COMMENTS = {"excellence": "A bold, well argued idea.", "impact": "Clear route to patients.",
            "implementation": "Realistic work plan."}


@dataclass
class World:
    call: object
    sec: object
    rita: object  # the reviewer the tests act as
    others: list
    alpha: object  # assigned to Rita and two others
    beta: object  # not assigned to Rita
    a: object  # Rita's assignment to ALPHA


def build_world(session, frozen) -> World:
    frozen(REVIEW_NOW)
    call = f.make_call(session)
    sec = f.make_user(session, "Sam Secretariat", email="sam@jcs.example.org")
    from workflow.accounts import grant_role

    grant_role(session, None, sec, "secretariat", call.id)
    rita = make_reviewer(session, call, "Rita Reviewer", email="rita@ki.example.se", keywords=["oncology"])
    others = [make_reviewer(session, call, name, email=f"{name.split()[0].lower()}@rev.example.net",
                            organisation=org, country=country)
              for name, org, country in (("Otto Other", "Universiteit Leiden", "NL"),
                                         ("Olga Other", "Jagiellonian University", "PL"),
                                         ("Oren Other", "Weizmann Institute", "IL"))]
    alpha = make_proposal(session, call, "ALPHA", state="pre_review", title="Aldehyde biomarkers in leukaemia",
                          abstract="We follow aldehyde dehydrogenase in leukaemic stem cells.",
                          keywords="leukaemia; aldehydes")
    beta = make_proposal(session, call, "BETAGEN", state="pre_review", title="Beta cells regrown in vivo",
                         abstract="Regenerating pancreatic beta cells with small molecules.", keywords="diabetes")
    a = assign(session, alpha, rita, stage="pre")
    for other in others[:2]:
        assign(session, alpha, other, stage="pre")
    session.commit()
    return World(call, sec, rita, others, alpha, beta, a)


@pytest.fixture
def w(session, frozen):
    return build_world(session, frozen)


def text_of(response) -> str:
    """What a person reads on the page: no tags, entities decoded, spaces collapsed."""
    return re.sub(r"\s+", " ", htmllib.unescape(re.sub(r"<[^>]+>", " ", response.get_data(as_text=True)))).strip()


def form_data(scores=SCORES, comments=COMMENTS, recommendation="recommended", action="save", version=None) -> dict:
    data = {"action": action, "recommendation": recommendation}
    data.update({f"score_{k}": v for k, v in scores.items()})
    data.update({f"comment_{k}": v for k, v in comments.items()})
    if version is not None:
        data["version"] = str(version)
    return data


def error_of(html: str, field: str) -> str | None:
    """The message shown right after a field; the field (or its group) points to it with aria-describedby."""
    m = re.search(rf'<div class="field-error" id="{re.escape(field)}-error">(.*?)</div>', html, re.S)
    if m is None:
        return None
    assert re.search(rf'aria-describedby="[^"]*\b{re.escape(field)}-error\b', html), f"nothing points to the error of {field}"
    return re.sub(r"\s+", " ", htmllib.unescape(m.group(1))).strip()


def review_row(session, assignment) -> Review | None:
    session.expire_all()
    return session.scalar(select(Review).where(Review.assignment_id == assignment.id))


# ---------------------------------------------------------------------------------------------------------
# The invitation


def invitation_link(session) -> str:
    body = session.scalar(select(OutboxMessage.body_text).where(OutboxMessage.kind == "reviewer_invitation")
                          .order_by(OutboxMessage.id.desc()))
    return re.search(r"http://jointcall\.test(/review/invitations/\S+)", body).group(1)


def test_a_new_person_chooses_a_password_when_accepting_and_lands_on_the_declaration(client, session, w):
    login(client, w.sec)
    r = client.post(f"/secretariat/calls/{w.call.id}/reviews/pool",
                    data={"email": "Astrid.Holm@ki.example.se", "name": "Astrid Holm"})
    assert r.status_code == 302
    link = invitation_link(session)
    client.post("/logout")

    page = client.get(link)
    assert page.status_code == 200
    assert "Choose a password" in text_of(page) and "astrid.holm@ki.example.se" in text_of(page)
    refused = client.post(link, data={"password": "long enough pass", "confirm": "another long one"})
    assert refused.status_code == 422
    assert error_of(refused.get_data(as_text=True), "confirm") == "the two passwords are not the same"
    too_short = client.post(link, data={"password": "short", "confirm": "short"})
    assert error_of(too_short.get_data(as_text=True), "password") == "the password needs at least 10 characters"

    accepted = client.post(link, data={"password": "a good long password", "confirm": "a good long password"})
    assert accepted.status_code == 302 and f"/review/calls/{w.call.id}/declaration" in accepted.location
    declaration = client.get(accepted.location)
    assert "Astrid Holm" in text_of(declaration)  # logged in
    assert "keep every proposal, review and discussion of this call confidential" in text_of(declaration)
    session.expire_all()
    astrid = session.scalar(select(User).where(User.email == "astrid.holm@ki.example.se"))
    assert is_reviewer(astrid, w.call.id) and astrid.email_confirmed_at is not None
    # The link works once.
    again = client.get(link)
    assert again.status_code == 410 and "accepted already" in text_of(again)
    # And the password works for logging in.
    client.post("/logout")
    assert client.post("/login", data={"email": astrid.email, "password": "a good long password"}).status_code == 302


def test_an_existing_account_logs_in_to_accept_and_another_account_cannot(client, session, w):
    from reviews.pool import invite_reviewer

    karl = f.make_user(session, "Karl Known", email="karl@charite.example.de")
    invite_reviewer(session, w.sec, w.call, email=karl.email, link=lambda t: f"http://jointcall.test/review/invitations/{t}")
    session.commit()
    link = invitation_link(session)
    page = client.get(link)
    assert "Log in to accept" in text_of(page) and "Choose a password" not in text_of(page)
    assert client.post(link).status_code == 302  # anonymous: to the login page
    login(client, w.rita)
    other = client.get(link)
    assert "you are logged in as rita@ki.example.se" in text_of(other)
    refused = client.post(link)
    assert refused.status_code == 403 and "log in with that address to accept it" in text_of(refused)
    login(client, karl)
    assert client.post(link).status_code == 302
    session.expire_all()
    assert is_reviewer(session.get(User, karl.id), w.call.id)


def test_declining_needs_no_login_and_tells_the_inviter(client, session, w):
    from reviews.pool import invite_reviewer

    invite_reviewer(session, w.sec, w.call, email="dora@example.org", name="Dora Decliner",
                    link=lambda t: f"http://jointcall.test/review/invitations/{t}")
    session.commit()
    link = invitation_link(session)
    too_long = client.post(link + "/decline", data={"reason": "x" * 2001})
    assert too_long.status_code == 422 and error_of(too_long.get_data(as_text=True), "reason") == "at most 2,000 characters"
    r = client.post(link + "/decline", data={"reason": "On sabbatical until 2031."})
    assert r.status_code == 302
    session.expire_all()
    invitation = session.scalar(select(ReviewerInvitation).where(ReviewerInvitation.email == "dora@example.org"))
    assert (invitation.status, invitation.decline_reason) == ("declined", "On sabbatical until 2031.")
    told = session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "reviewer_declined"))
    assert told.to_address == w.sec.email and "On sabbatical until 2031." in told.body_text
    assert client.get(link).status_code == 410


def test_a_bad_invitation_link_says_so(client, w):
    r = client.get("/review/invitations/not-a-token")
    assert r.status_code == 404 and "not valid" in text_of(r)


# ---------------------------------------------------------------------------------------------------------
# Declaration and profile


def test_no_proposal_text_before_the_declaration(client, session, w):
    session.execute(ReviewerProfile.__table__.update().where(ReviewerProfile.user_id == w.rita.id)
                    .values(declaration_accepted_at=None))
    session.commit()
    login(client, w.rita)
    home = client.get(f"/review/calls/{w.call.id}")
    assert home.status_code == 200 and "Read the declaration" in text_of(home)
    assert "ALPHA" not in home.get_data(as_text=True) and "Aldehyde" not in home.get_data(as_text=True)
    for path in (f"/review/proposals/{w.alpha.id}", f"/review/proposals/{w.alpha.id}/review",
                 f"/review/calls/{w.call.id}/conflicts"):
        r = client.get(path)
        assert r.status_code == 302 and "/declaration" in r.location, path
    refused = client.post(f"/review/calls/{w.call.id}/declaration", data={})
    assert refused.status_code == 422
    assert error_of(refused.get_data(as_text=True), "confirm") == "tick the box to accept the declaration"
    r = client.post(f"/review/calls/{w.call.id}/declaration?next=/review/proposals/{w.alpha.id}", data={"confirm": "y"})
    assert r.status_code == 302 and r.location.endswith(f"/review/proposals/{w.alpha.id}")
    page = client.get(r.location)
    assert page.status_code == 200 and "We follow aldehyde dehydrogenase in leukaemic stem cells." in text_of(page)
    assert session.scalar(select(AuditEvent.id).where(AuditEvent.action == "reviewer.declaration_accepted"))


def test_the_profile_keeps_input_and_shows_errors_next_to_fields(client, session, w):
    login(client, w.rita)
    r = client.post(f"/review/calls/{w.call.id}/profile", data={
        "keywords": "pharmacogenomics; oncology", "organisation": "Karolinska Institutet", "country": "SE",
        "email_domain": "not a domain"})
    assert r.status_code == 422
    html = r.get_data(as_text=True)
    assert error_of(html, "email_domain") == "give an e-mail domain such as charite.de"
    assert "pharmacogenomics; oncology" in html  # nothing typed is lost
    ok = client.post(f"/review/calls/{w.call.id}/profile", data={
        "keywords": "pharmacogenomics; oncology\nhealth economics", "organisation": "Karolinska Institutet",
        "country": "SE", "email_domain": "ki.se"})
    assert ok.status_code == 302
    session.expire_all()
    profile = session.scalar(select(ReviewerProfile).where(ReviewerProfile.user_id == w.rita.id))
    assert profile.keywords == ["pharmacogenomics", "oncology", "health economics"]
    assert (profile.country, profile.email_domain) == ("SE", "ki.se")


def test_pages_of_a_call_are_for_its_reviewers(client, w):
    login(client, w.sec)
    assert client.get(f"/review/calls/{w.call.id}/profile").status_code == 403
    client.post("/logout")
    assert client.get(f"/review/calls/{w.call.id}").status_code == 302  # to the login page


# ---------------------------------------------------------------------------------------------------------
# Conflicts


def test_the_declaration_page_shows_only_acronym_title_and_partner_organisations(client, session, w):
    login(client, w.rita)
    page = client.get(f"/review/calls/{w.call.id}/conflicts")
    text = text_of(page)
    assert "ALPHA" in text and "BETAGEN" in text and "Beta cells regrown in vivo" in text
    assert "Charité Berlin" in text and "Institut Curie" in text
    for hidden in ("Regenerating pancreatic beta cells", "diabetes", "PI Charité Berlin", "example.org", "€"):
        assert hidden not in text, hidden


def test_declaring_a_conflict_withdraws_the_assignment_and_hides_the_proposal(client, session, w):
    aid = w.a.id
    login(client, w.rita)
    url = f"/review/calls/{w.call.id}/conflicts/{w.alpha.id}"
    refused = client.post(url, data={f"p{w.alpha.id}-reason": "  "})
    assert refused.status_code == 422
    assert error_of(refused.get_data(as_text=True), f"p{w.alpha.id}-reason") == "say in a few words what the conflict is"
    assert client.post(url, data={f"p{w.alpha.id}-reason": "I co-authored with its coordinator in 2029."}).status_code == 302
    session.expire_all()
    declared = session.scalar(select(Conflict).where(Conflict.reviewer_id == w.rita.id))
    assert (declared.proposal_id, declared.reason) == (w.alpha.id, "I co-authored with its coordinator in 2029.")
    assert session.get(ReviewAssignment, aid) is None
    page = client.get(f"/review/calls/{w.call.id}/conflicts")
    assert "I co-authored with its coordinator in 2029." in text_of(page)
    r = client.get(f"/review/proposals/{w.alpha.id}")
    assert r.status_code == 403 and "not available" in text_of(r) and "aldehyde" not in text_of(r).lower()
    assert "ALPHA" not in client.get(f"/review/calls/{w.call.id}").get_data(as_text=True)


def conflicted(session, w):
    """Rita's organisation becomes a partner's: a detected conflict with ALPHA while she is assigned to it."""
    session.execute(ReviewerProfile.__table__.update().where(ReviewerProfile.user_id == w.rita.id)
                    .values(organisation="Institut Curie"))
    session.commit()


SECRETS = ("ALPHA", "Aldehyde", "aldehyde", "leukaemi", "Charité", "Curie", "Clínic", "PI ", "example.org", "€")


@pytest.mark.parametrize("method,path", [
    ("get", "/review/proposals/{p}"),
    ("get", "/review/proposals/{p}/review"),
    ("post", "/review/proposals/{p}/review"),
    ("get", "/review/proposals/{p}/reviews"),
    ("get", "/review/proposals/{p}/discussion"),
    ("get", "/my/proposals/{p}/documents"),
])
def test_every_page_of_the_proposal_refuses_a_conflicted_reviewer(client, session, w, method, path):
    conflicted(session, w)
    other = session.scalar(select(ReviewAssignment).where(ReviewAssignment.reviewer_id == w.others[0].id))
    submitted_review(session, other, {"excellence": 4, "impact": 4, "implementation": 4},
                     {"excellence": "Aldehyde work is strong.", "impact": "Curie leads.", "implementation": "Fine."})
    session.commit()
    login(client, w.rita)
    url = path.format(p=w.alpha.id)
    r = client.get(url) if method == "get" else client.post(url, data=form_data())
    assert r.status_code == 403
    body = r.get_data(as_text=True)
    assert "not available" in body
    for secret in SECRETS:
        assert secret not in body, secret
    assert review_row(session, w.a) is None  # nothing was written
    # The list of her proposals does not show it either.
    assert "ALPHA" not in client.get(f"/review/calls/{w.call.id}").get_data(as_text=True)


def test_an_unassigned_reviewer_cannot_open_a_proposal(client, w):
    login(client, w.rita)
    r = client.get(f"/review/proposals/{w.beta.id}")
    assert r.status_code == 403 and "not available" in text_of(r) and "Beta cells" not in text_of(r)


# ---------------------------------------------------------------------------------------------------------
# The review form


def test_the_form_has_the_calls_criteria_with_a_half_point_select_and_the_labels(client, w):
    login(client, w.rita)
    html = client.get(f"/review/proposals/{w.alpha.id}/review").get_data(as_text=True)
    for name in ("Excellence", "Impact", "Quality and efficiency of the implementation"):
        assert f"Score for {name}" in html and f"Comment on {name}" in html
    options = re.findall(r'<option[^>]*value="([^"]*)"[^>]*>([^<]*)</option>',
                         re.search(r'<select[^>]*id="score_excellence".*?</select>', html, re.S).group(0))
    assert [v for v, _ in options] == ["", "0", "0.5", "1", "1.5", "2", "2.5", "3", "3.5", "4", "4.5", "5"]
    assert dict(options)["3"] == "3 — Good" and dict(options)["3.5"] == "3.5 — between Good and Very good"
    assert "Recommended if funds are available" in html


def test_validation_messages_sit_next_to_their_fields_and_the_draft_is_kept(client, session, w):
    login(client, w.rita)
    url = f"/review/proposals/{w.alpha.id}/review"
    data = form_data(scores=SCORES | {"impact": ""}, comments=COMMENTS | {"implementation": "  "},
                     recommendation="", action="submit")
    r = client.post(url, data=data)
    assert r.status_code == 422
    html = r.get_data(as_text=True)
    assert error_of(html, "score_impact") == "give a score for Impact"
    assert error_of(html, "comment_implementation") == \
        "write a comment on Quality and efficiency of the implementation"
    assert error_of(html, "recommendation") == "choose a recommendation"
    assert error_of(html, "score_excellence") is None
    assert "A bold, well argued idea." in html  # what was typed is still there
    assert re.search(r'<option selected value="4.5">|<option value="4.5" selected>', html)
    review = review_row(session, w.a)
    assert review.status == "draft" and review.scores == {"excellence": 4.0, "implementation": 4.5}
    assert review.comments["excellence"] == "A bold, well argued idea."

    # A forged score is refused next to its field, and nothing changes.
    forged = client.post(url, data=form_data(scores=SCORES | {"excellence": "7"}, version=review.version))
    assert forged.status_code == 422
    assert error_of(forged.get_data(as_text=True), "score_excellence") == \
        "a score is from 0 to 5 in half points (0, 0.5, 1, ... 5)"
    assert review_row(session, w.a).scores == {"excellence": 4.0, "implementation": 4.5}


def test_a_draft_is_saved_then_submitted_and_locked(client, session, w):
    login(client, w.rita)
    url = f"/review/proposals/{w.alpha.id}/review"
    r = client.post(url, data=form_data(scores=SCORES | {"impact": ""}))
    assert r.status_code == 302 and r.location.endswith(url)
    assert "Your draft is saved" in text_of(client.get(url))
    review = review_row(session, w.a)
    assert review.status == "draft" and "impact" not in review.scores

    r = client.post(url, data=form_data(action="submit", version=review.version))
    assert r.status_code == 302 and r.location.endswith(f"/review/proposals/{w.alpha.id}/reviews")
    review = review_row(session, w.a)
    assert review.status == "submitted" and review.scores == {"excellence": 4.0, "impact": 3.5, "implementation": 4.5}
    assert review.recommendation == "recommended" and review.submitted_at == REVIEW_NOW

    locked = client.get(url)
    assert "submitted and is locked" in text_of(locked) and 'name="action"' not in locked.get_data(as_text=True)
    changed = client.post(url, data=form_data(scores=SCORES | {"excellence": "1"}, action="submit"))
    assert changed.status_code == 409 and "submitted and is locked" in text_of(changed)
    assert review_row(session, w.a).scores["excellence"] == 4.0


def test_the_other_reviews_show_only_after_submitting_ones_own_and_without_names(client, session, w):
    other = session.scalar(select(ReviewAssignment).where(ReviewAssignment.reviewer_id == w.others[0].id))
    submitted_review(session, other, {"excellence": 2, "impact": 3, "implementation": 3},
                     {"excellence": "Otto thinks the idea is old.", "impact": "Modest.", "implementation": "Fine."})
    session.commit()
    login(client, w.rita)
    before = client.get(f"/review/proposals/{w.alpha.id}/reviews")
    assert "shown once you have submitted yours" in text_of(before)
    assert "Otto thinks the idea is old." not in text_of(before)
    discussion = client.get(f"/review/proposals/{w.alpha.id}/discussion")
    assert "once you have submitted your review" in text_of(discussion) and "disagree" not in text_of(discussion)

    client.post(f"/review/proposals/{w.alpha.id}/review", data=form_data(action="submit"))
    after = text_of(client.get(f"/review/proposals/{w.alpha.id}/reviews"))
    assert "Otto thinks the idea is old." in after and "A bold, well argued idea." in after
    assert "Otto Other" not in after and re.search(r"Reviewer \d", after)
    discussion = text_of(client.get(f"/review/proposals/{w.alpha.id}/discussion"))
    # Excellence 4 and 2: a spread of 2 points is a disagreement.
    assert "reviewers disagree" in discussion and "2 submitted reviews" in discussion


def test_the_call_page_lists_assignments_with_their_review_status(client, session, w):
    login(client, w.rita)
    page = text_of(client.get(f"/review/calls/{w.call.id}"))
    assert "ALPHA" in page and "not started" in page and "BETAGEN" not in page
    client.post(f"/review/proposals/{w.alpha.id}/review", data=form_data())
    assert "draft" in text_of(client.get(f"/review/calls/{w.call.id}"))
    assert "Test Call 2030" in text_of(client.get("/review/"))


# ---------------------------------------------------------------------------------------------------------
# The review deadline as a call setting


def test_the_review_deadline_set_for_the_stage_is_shown_to_reviewers_and_flags_late_reviews(client, session, w,
                                                                                             frozen):
    from reviews.scoring import review_deadline
    from workflow.callconfig import parse_call_definition
    from workflow.calls import load_call
    from workflow.console import definition_data

    data = definition_data(w.call.settings)
    data["stages"][0]["review_deadline"] = dt.datetime(2030, 4, 30, 17, 0)  # local time, Europe/Paris (CEST)
    load_call(session, w.sec, parse_call_definition(data))
    session.commit()
    w.call.__dict__.pop("settings", None)
    assert review_deadline(session, w.call, "pre") == dt.datetime(2030, 4, 30, 15, 0, tzinfo=UTC)

    login(client, w.rita)
    page = text_of(client.get(f"/review/calls/{w.call.id}"))
    assert "Pre-proposal reviews are due by 30 April 2030, 17:00 CEST" in page

    client.post("/logout")
    login(client, w.sec)
    progress = f"/secretariat/calls/{w.call.id}/reviews/pre/progress"
    before = text_of(client.get(progress))
    assert "Review deadline (the call's setting): 30 April 2030, 17:00 CEST" in before and " late " not in before
    frozen(dt.datetime(2030, 4, 30, 15, 0, 1, tzinfo=UTC))
    after = text_of(client.get(progress))
    assert "17:00 CEST — passed" in after and " late " in after
