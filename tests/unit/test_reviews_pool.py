"""The reviewer pool: invitations by e-mail, accept and decline, profiles, the declaration (reviews.pool)."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import select

from reviews import pool
from reviews.models import ReviewerInvitation, ReviewerProfile
from reviews.policy import decide
from tests import factories as f
from tests.unit.reviews_helpers import (
    assign,
    count,
    events,
    mails,
    make_proposal,
    make_reviewer,
    review_tables,  # noqa: F401  (fixture)
)
from workflow.access import can, is_reviewer
from workflow.errors import AccessDenied, DomainError, InvalidInput, NotFound
from workflow.models import User

pytestmark = pytest.mark.usefixtures("review_tables")
LINK = "http://jointcall.test/reviewer/invitation/{}".format


@pytest.fixture
def w(session, frozen):
    frozen(f.FULL_CLOSED)
    call = f.make_call(session)
    world = type("W", (), {})()
    world.session, world.call, world.sec = session, call, f.secretariat(session, call)
    session.commit()
    return world


def token_of(message) -> str:
    return re.search(r"/reviewer/invitation/(\S+)", message.body_text).group(1)


def invite(w, email="astrid.holm@ki.example.se", name="Astrid Holm"):
    invitation = pool.invite_reviewer(w.session, w.sec, w.call, email=email, name=name, link=LINK)
    w.session.commit()
    return invitation, token_of(mails(w.session, "reviewer_invitation")[-1])


def test_inviting_a_new_person_creates_the_account_and_mails_a_single_use_link(w):
    invitation, token = invite(w)
    user = w.session.get(User, invitation.user_id)
    assert (user.email, user.name, user.password_hash) == ("astrid.holm@ki.example.se", "Astrid Holm", None)
    assert invitation.status == "invited" and token not in invitation.token_sha256
    assert invitation.token_sha256 == pool.token_hash(token)
    (mail,) = mails(w.session, "reviewer_invitation")
    assert mail.to_address == user.email and "expires on 25 July 2030" in mail.body_text
    # No role before the person accepts.
    assert not is_reviewer(user, w.call.id)
    assert events(w.session, "reviewer.invited")[0].after["email"] == user.email


def test_accepting_grants_the_role_and_starts_a_profile_and_the_link_works_once(w):
    invitation, token = invite(w)
    user = w.session.get(User, invitation.user_id)
    user.organisation, user.country = "Karolinska Institutet", "SE"
    profile = pool.accept_reviewer_invitation(w.session, user, token)
    w.session.commit()
    assert is_reviewer(user, w.call.id)
    assert (profile.organisation, profile.country, profile.email_domain) == (
        "Karolinska Institutet", "SE", "ki.example.se")
    assert profile.declaration_accepted_at is None
    assert invitation.status == "accepted" and user.email_confirmed_at is not None
    with pytest.raises(DomainError, match="accepted already; each invitation link works once"):
        pool.accept_reviewer_invitation(w.session, user, token)
    with pytest.raises(DomainError, match="accepted already"):
        pool.decline_reviewer_invitation(w.session, token)


def test_only_the_invited_account_can_accept(w):
    _, token = invite(w)
    stranger = f.make_user(w.session, "Sly Stranger")
    with pytest.raises(AccessDenied, match="sent to astrid.holm@ki.example.se; log in with that address"):
        pool.accept_reviewer_invitation(w.session, stranger, token)
    with pytest.raises(AccessDenied, match="log in"):
        pool.accept_reviewer_invitation(w.session, None, token)
    with pytest.raises(NotFound, match="not valid"):
        pool.accept_reviewer_invitation(w.session, stranger, token + "x")


def test_declining_needs_only_the_link_and_tells_the_inviter(w):
    invitation, token = invite(w)
    pool.decline_reviewer_invitation(w.session, token, reason="  On leave this summer. ")
    w.session.commit()
    assert (invitation.status, invitation.decline_reason) == ("declined", "On leave this summer.")
    (told,) = mails(w.session, "reviewer_declined")
    assert told.to_address == w.sec.email and "On leave this summer." in told.body_text
    user = w.session.get(User, invitation.user_id)
    with pytest.raises(DomainError, match="was declined"):
        pool.accept_reviewer_invitation(w.session, user, token)
    assert not is_reviewer(user, w.call.id)


def test_inviting_again_replaces_the_link_and_an_existing_account_is_linked(w):
    existing = f.make_user(w.session, "Astrid Holm", email="astrid.holm@ki.example.se")
    first, old = invite(w)
    second, new = invite(w, email=" Astrid.Holm@KI.example.se ")
    assert first.id == second.id and first.user_id == existing.id
    assert count(w.session, ReviewerInvitation) == 1 and count(w.session, User, User.email == existing.email) == 1
    with pytest.raises(NotFound):
        pool.accept_reviewer_invitation(w.session, existing, old)
    pool.accept_reviewer_invitation(w.session, existing, new)
    w.session.commit()
    with pytest.raises(InvalidInput, match="reviewer of this call already"):
        invite(w)
    assert events(w.session, "reviewer.reinvited")


def test_an_expired_invitation_is_refused_with_its_date(w, frozen):
    _, token = invite(w)
    frozen(f.FULL_CLOSED + dt.timedelta(days=31))
    user = w.session.scalar(select(User).where(User.email == "astrid.holm@ki.example.se"))
    with pytest.raises(DomainError, match="expired on 25 July 2030"):
        pool.accept_reviewer_invitation(w.session, user, token)


@pytest.mark.parametrize(("email", "message"), [("", "give the e-mail address"), ("not-an-address", "not an e-mail")])
def test_invitation_input_is_checked(w, email, message):
    with pytest.raises(InvalidInput, match=message) as refused:
        pool.invite_reviewer(w.session, w.sec, w.call, email=email, link=LINK)
    assert refused.value.field == "email"


def test_only_the_secretariat_invites_and_lists_the_pool(w):
    outsider = f.make_user(w.session, "Olga Outsider")
    with pytest.raises(AccessDenied, match="only the call secretariat can manage the reviewers"):
        pool.invite_reviewer(w.session, outsider, w.call, email="x@example.net", link=LINK)
    invite(w)
    make_reviewer(w.session, w.call, "Rita Reviewer", keywords=["oncology"])
    rows = pool.reviewer_pool(w.session, w.sec, w.call)
    assert [(r.name, r.status) for r in rows] == [("Astrid Holm", "invited"), ("Rita Reviewer", "reviewer")]


def test_no_proposal_text_before_the_declaration(w):
    reviewer = make_reviewer(w.session, w.call, "Rita Reviewer", declared=False)
    proposal = make_proposal(w.session, w.call)
    assign(w.session, proposal, reviewer)
    w.session.commit()
    assert not pool.declaration_accepted(w.session, reviewer, w.call)
    assert not can(reviewer, "proposal.view", proposal)
    assert decide(reviewer, "proposal.reviews", proposal).reason == (
        "accept the confidentiality and no-conflict declaration first")
    with pytest.raises(InvalidInput, match="tick the box"):
        pool.accept_declaration(w.session, reviewer, w.call, confirmed=False)
    pool.accept_declaration(w.session, reviewer, w.call, confirmed=True)
    w.session.commit()
    assert pool.declaration_accepted(w.session, reviewer, w.call)
    assert can(reviewer, "proposal.view", proposal)
    (event,) = events(w.session, "reviewer.declaration_accepted")
    assert event.after["text"] == pool.DECLARATION_TEXT
    outsider = f.make_user(w.session, "Olga Outsider")
    with pytest.raises(AccessDenied):
        pool.accept_declaration(w.session, outsider, w.call, confirmed=True)


def test_profile_changes_are_checked_and_audited(w):
    reviewer = make_reviewer(w.session, w.call, "Rita Reviewer", keywords=["oncology"])
    profile = pool.update_profile(w.session, reviewer, w.call, reviewer,
                                  keywords="Oncology; pharmacogenomics, oncology ;  rare   diseases",
                                  organisation="  Uppsala   University ", country="se", email_domain="@UU.se")
    w.session.commit()
    assert profile.keywords == ["Oncology", "pharmacogenomics", "rare diseases"]
    assert (profile.organisation, profile.country, profile.email_domain) == ("Uppsala University", "SE", "uu.se")
    (event,) = events(w.session, "reviewer.profile_updated")
    assert event.after == {"keywords": ["Oncology", "pharmacogenomics", "rare diseases"],
                           "organisation": "Uppsala University", "email_domain": "uu.se"}  # the country did not change
    assert event.before["organisation"] == "Karolinska Institutet" and event.before["keywords"] == ["oncology"]
    for kwargs, field in ((dict(country="XX"), "country"), (dict(email_domain="not a domain"), "email_domain")):
        args = dict(keywords="x", organisation=None, country=None, email_domain=None) | kwargs
        with pytest.raises(InvalidInput) as refused:
            pool.update_profile(w.session, reviewer, w.call, reviewer, **args)
        assert refused.value.field == field
    other = make_reviewer(w.session, w.call, "Otto Other")
    with pytest.raises(AccessDenied, match="another reviewer's profile"):
        pool.update_profile(w.session, other, w.call, reviewer, keywords="x", organisation=None, country=None,
                            email_domain=None)
    assert count(w.session, ReviewerProfile) == 2
