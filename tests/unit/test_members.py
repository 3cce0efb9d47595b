"""Co-applicant operations: invite, accept, revoke, remove — access, single use, expiry, audit, outbox."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import select

from tests import factories as f
from workflow import members
from workflow.access import can
from workflow.errors import AccessDenied, DomainError, InvalidInput, NotFound
from workflow.models import AuditEvent, OutboxMessage, ProposalInvitation, ProposalMember


def link(token: str) -> str:
    return f"https://jointcall.example/my/invitations/{token}"


@pytest.fixture
def world(session, frozen):
    frozen(f.PRE_OPEN)
    call = f.make_call(session)
    cora = f.make_user(session, "Cora Coordinator", email="cora@example.org")
    proposal = f.valid_proposal(session, call, cora)
    pia = f.make_user(session, "Pia Partner", email="pia@example.org")
    session.commit()
    return proposal, cora, pia


def invite(session, proposal, actor, email="pia@example.org", can_edit=True):
    invitation = members.invite_co_applicant(session, actor, proposal, email=email, can_edit=can_edit, link=link)
    message = session.scalars(select(OutboxMessage).order_by(OutboxMessage.id.desc())).first()
    token = re.search(r"/my/invitations/([A-Za-z0-9_\-]+)", message.body_text).group(1)
    return invitation, message, token


def actions(session) -> list[str]:
    return list(session.scalars(select(AuditEvent.action).order_by(AuditEvent.seq)))


def test_an_invitation_is_mailed_with_a_link_and_only_the_tokens_hash_is_stored(session, world):
    proposal, cora, _ = world
    invitation, message, token = invite(session, proposal, cora, email=" Pia@Example.ORG ")
    assert invitation.email == "pia@example.org"
    assert message.to_address == "pia@example.org" and message.kind == "co_applicant_invitation"
    assert f"https://jointcall.example/my/invitations/{token}" in message.body_text
    assert "Cora Coordinator (cora@example.org) invites you" in message.body_text
    assert "expires on 15 February 2030, 13:00 CET" in message.body_text  # 14 days, in the call's zone
    assert invitation.token_sha256 == members.token_hash(token) != token
    assert len(token) >= 40
    assert invitation.expires_at - invitation.created_at == dt.timedelta(days=14)
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "proposal.invitation_sent"))
    assert event.after["email"] == "pia@example.org" and token not in str(event.after)
    assert members.pending_invitations(session, proposal) == [invitation]


def test_only_the_coordinator_invites(session, world):
    proposal, cora, pia = world
    proposal.members.append(ProposalMember(user=pia, can_edit=True))
    session.flush()
    with pytest.raises(AccessDenied, match="only the coordinator can invite or remove co-applicants"):
        members.invite_co_applicant(session, pia, proposal, email="x@example.org", can_edit=True, link=link)
    with pytest.raises(AccessDenied, match="please log in first"):
        members.invite_co_applicant(session, None, proposal, email="x@example.org", can_edit=True, link=link)
    assert session.scalar(select(ProposalInvitation)) is None


@pytest.mark.parametrize("email,message", [
    ("", "give the e-mail address of the person to invite"),
    ("pia", "this is not an e-mail address"),
    ("CORA@example.org", "this is the coordinator's own address"),
])
def test_invitation_addresses_are_checked(session, world, email, message):
    proposal, cora, _ = world
    with pytest.raises(InvalidInput, match=re.escape(message)) as err:
        members.invite_co_applicant(session, cora, proposal, email=email, can_edit=True, link=link)
    assert err.value.field == "email"


def test_accepting_makes_a_member_with_the_invited_rights_once(session, world):
    proposal, cora, pia = world
    _, _, token = invite(session, proposal, cora, can_edit=False)
    assert not can(pia, "proposal.view", proposal)
    member = members.accept_invitation(session, pia, token)
    assert (member.user_id, member.can_edit) == (pia.id, False)
    assert can(pia, "proposal.view", proposal)
    assert can(pia, "proposal.edit", proposal).reason == "the coordinator gave you read-only access"
    stored = session.scalar(select(ProposalInvitation))
    assert (stored.accepted_by_id, stored.accepted_at) == (pia.id, f.PRE_OPEN)
    assert members.pending_invitations(session, proposal) == []
    other = f.make_user(session, "Someone Else")
    with pytest.raises(DomainError, match="accepted already; each invitation link works once"):
        members.accept_invitation(session, other, token)
    assert len(proposal.members) == 1
    with pytest.raises(InvalidInput, match="a co-applicant already"):
        members.invite_co_applicant(session, cora, proposal, email="PIA@example.org", can_edit=True, link=link)
    assert [a for a in actions(session) if a.startswith("proposal.")][-2:] == [
        "proposal.invitation_sent", "proposal.member_added"]


def test_an_edit_member_may_edit(session, world):
    proposal, cora, pia = world
    _, _, token = invite(session, proposal, cora, can_edit=True)
    members.accept_invitation(session, pia, token)
    assert can(pia, "proposal.edit", proposal)
    assert not can(pia, "proposal.manage_members", proposal)


def test_an_expired_invitation_is_refused_with_its_expiry(session, world, frozen):
    proposal, cora, pia = world
    _, _, token = invite(session, proposal, cora)
    frozen(f.PRE_OPEN + dt.timedelta(days=14) - dt.timedelta(seconds=1))
    assert members.invitation_problem(members.find_invitation(session, token)) is None
    frozen(f.PRE_OPEN + dt.timedelta(days=14))
    with pytest.raises(DomainError, match="this invitation expired on 15 February 2030, 13:00 CET"):
        members.accept_invitation(session, pia, token)
    assert proposal.members == []


def test_unknown_tokens_anonymous_people_and_the_coordinator_cannot_accept(session, world):
    proposal, cora, pia = world
    _, _, token = invite(session, proposal, cora)
    with pytest.raises(NotFound, match="this invitation link is not valid"):
        members.accept_invitation(session, pia, token[:-1] + ("A" if token[-1] != "A" else "B"))
    with pytest.raises(AccessDenied, match="please log in first"):
        members.accept_invitation(session, None, token)
    with pytest.raises(DomainError, match="you are the coordinator of this proposal already"):
        members.accept_invitation(session, cora, token)
    assert members.accept_invitation(session, pia, token).user_id == pia.id


def test_revoking_stops_the_link_and_a_new_invitation_replaces_a_pending_one(session, world):
    proposal, cora, pia = world
    first, _, first_token = invite(session, proposal, cora, can_edit=True)
    second, _, second_token = invite(session, proposal, cora, can_edit=False)
    assert first.revoked_at is not None and members.pending_invitations(session, proposal) == [second]
    with pytest.raises(DomainError, match="the coordinator withdrew this invitation"):
        members.accept_invitation(session, pia, first_token)

    with pytest.raises(AccessDenied):
        members.revoke_invitation(session, pia, second)
    members.revoke_invitation(session, cora, second)
    with pytest.raises(InvalidInput, match="withdrawn already"):
        members.revoke_invitation(session, cora, second)
    with pytest.raises(DomainError, match="withdrew this invitation"):
        members.accept_invitation(session, pia, second_token)
    assert actions(session).count("proposal.invitation_revoked") == 2

    third, _, third_token = invite(session, proposal, cora)
    members.accept_invitation(session, pia, third_token)
    with pytest.raises(InvalidInput, match="accepted already; remove the co-applicant instead"):
        members.revoke_invitation(session, cora, third)


def test_the_coordinator_removes_a_member_who_then_loses_access(session, world):
    proposal, cora, pia = world
    _, _, token = invite(session, proposal, cora)
    member = members.accept_invitation(session, pia, token)
    with pytest.raises(AccessDenied, match="only the coordinator"):
        members.remove_member(session, pia, member)
    members.remove_member(session, cora, member)
    session.flush()
    assert session.scalar(select(ProposalMember)) is None
    assert can(pia, "proposal.view", proposal).reason == "you are not part of this proposal's consortium"
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "proposal.member_removed"))
    assert event.before == {"user_id": pia.id, "email": "pia@example.org", "can_edit": True}


def test_proposals_of_lists_what_a_person_coordinates_or_joined(session, world):
    proposal, cora, pia = world
    own = f.valid_proposal(session, proposal.call, pia, acronym="OWNPIA")
    assert members.proposals_of(session, pia) == [own]
    _, _, token = invite(session, proposal, cora)
    members.accept_invitation(session, pia, token)
    assert {p.acronym for p in members.proposals_of(session, pia)} == {"OWNPIA", "PRECISE"}
    assert members.proposals_of(session, cora) == [proposal]
