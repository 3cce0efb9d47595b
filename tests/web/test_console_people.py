"""People and roles in the console: invitations mailed with a single-use link, accepted by a new person
(who sets a password) or by someone with an account (who logs in); roles listed, revoked; secretariats
managed by an administrator only; every grant, revocation and invitation audited."""

from __future__ import annotations

import re

from sqlalchemy import select

from tests import factories as f
from tests.conftest import body_of
from tests.web.test_console_calls import admin, events, login, plain, text_of  # noqa: F401
from webapp.mail import deliver_pending
from workflow.models import RoleGrant, User

LINK = re.compile(r"http://jointcall\.test(/secretariat/join/[A-Za-z0-9_-]{43})\s")


def deliver(app, mailbox, expected: int) -> list:
    deliver_pending(app.extensions["jointcall.sessions"], app.config["JOINTCALL"])
    return mailbox.wait_for(expected)


def link_in(message) -> str:
    match = LINK.search(body_of(message) + "\n")
    assert match, body_of(message)
    return match.group(1)


def setup(session, frozen):
    frozen(f.PRE_OPEN)
    call = f.make_call(session)
    sec = f.secretariat(session, call)
    session.commit()
    return call, sec


def grants(session, email: str) -> list[tuple]:
    session.expire_all()
    user = session.scalar(select(User).where(User.email == email))
    if user is None:
        return []
    return sorted((g.role, g.call_id, g.funder_id) for g in user.grants)


def test_a_new_funder_officer_accepts_by_the_mailed_link_and_sets_a_password(app, client, session, frozen, mailbox):
    call, sec = setup(session, frozen)
    anr = f.funder(session, "ANR-T")
    login(client, sec)
    response = client.post(f"/secretariat/calls/{call.id}/people/invite",
                           data={"email": "Olga@Funder.example", "name": "Olga Officer", "role": "officer",
                                 "funder_id": str(anr.id)})
    assert response.status_code == 302, text_of(response)
    page = plain(client.get(response.headers["Location"]))
    assert "Invitation sent to olga@funder.example as funder officer of anr-t." in page
    assert "olga@funder.example — Funder officer of ANR-T" in page  # pending
    [mail] = deliver(app, mailbox, 1)
    assert mail["To"] == "olga@funder.example"
    assert mail["Subject"] == "[Test Call 2030] You are invited as funder officer of anr-t"
    path = link_in(mail)
    assert "You will choose a password" in body_of(mail)

    client.post("/logout")
    join = plain(client.get(path))
    assert "You are invited as Funder officer of ANR-T in Test Call 2030" in join
    short = client.post(path, data={"name": "Olga Officer", "password": "short", "confirm": "short"})
    assert short.status_code == 422
    assert 'id="password-error">the password needs at least 10 characters' in text_of(short)
    assert grants(session, "olga@funder.example") == []
    accepted = client.post(path, data={"name": "Olga Officer", "password": "a long secret phrase",
                                       "confirm": "a long secret phrase"})
    assert accepted.status_code == 302 and accepted.headers["Location"].endswith("/funder/")
    assert grants(session, "olga@funder.example") == [("officer", call.id, anr.id)]
    olga = session.scalar(select(User).where(User.email == "olga@funder.example"))
    assert olga.name == "Olga Officer" and olga.email_confirmed_at is not None
    assert "Olga Officer" in text_of(client.get("/"))  # logged in
    # the audit log has the invitation, the account, the grant and the acceptance
    [invited] = events(session, "role.invited")
    assert invited.actor_id == sec.id and invited.after["role"] == "officer" and invited.after["funder_id"] == anr.id
    [granted] = [e for e in events(session, "role.granted") if e.object_id == olga.id]
    assert granted.actor_id == olga.id and granted.after == {"role": "officer", "call_id": call.id,
                                                              "funder_id": anr.id}
    assert events(session, "role.invitation_accepted")[0].after["account_created"] is True
    # the link works once
    again = client.get(path)
    assert again.status_code == 410 and "has been accepted already" in plain(again)
    client.post("/logout")
    response = client.post("/login", data={"email": "olga@funder.example", "password": "a long secret phrase"})
    assert response.status_code == 302


def test_someone_with_an_account_logs_in_to_accept_a_reviewer_role(app, client, session, frozen, mailbox):
    call, sec = setup(session, frozen)
    rita = f.make_user(session, "Rita Reviewer", email="rita@example.org")
    session.commit()
    login(client, sec)
    client.post(f"/secretariat/calls/{call.id}/people/invite", data={"email": "rita@example.org", "role": "reviewer"})
    [mail] = deliver(app, mailbox, 1)
    assert "Log in with your Jointcall account to accept" in body_of(mail)
    path = link_in(mail)
    client.post("/logout")
    page = text_of(client.get(path))
    assert "has a Jointcall account. Log in to accept" in page
    # a stranger cannot take over the existing account by setting a password
    refused = client.post(path, data={"name": "Mallory", "password": "a long secret phrase",
                                      "confirm": "a long secret phrase"})
    assert refused.status_code == 422 and "has a Jointcall account already: log in to accept" in plain(refused)
    assert grants(session, "rita@example.org") == []
    login(client, rita)
    assert client.post(path).status_code == 302
    assert grants(session, "rita@example.org") == [("reviewer", call.id, None)]
    assert client.get(f"/secretariat/calls/{call.id}/people").status_code == 403  # not for reviewers
    login(client, sec)
    page = plain(client.get(f"/secretariat/calls/{call.id}/people"))
    assert "Reviewer Rita Reviewer rita@example.org" in page and "No pending invitation." in page


def test_inviting_refuses_bad_input_next_to_the_field(client, session, frozen):
    call, sec = setup(session, frozen)
    login(client, sec)
    no_funder = client.post(f"/secretariat/calls/{call.id}/people/invite",
                            data={"email": "x@example.org", "role": "officer", "funder_id": ""})
    assert no_funder.status_code == 422
    assert 'id="funder_id-error">choose the funder this officer works for' in text_of(no_funder)
    bad_mail = client.post(f"/secretariat/calls/{call.id}/people/invite",
                           data={"email": "not an address", "role": "reviewer"})
    assert bad_mail.status_code == 422 and 'id="email-error">this is not an e-mail address' in text_of(bad_mail)
    already = client.post(f"/secretariat/calls/{call.id}/people/invite",
                          data={"email": sec.email, "role": "secretariat"})
    assert already.status_code == 403  # a secretariat does not make secretariats
    assert not events(session, "role.invited")


def test_revoking_a_role_is_audited_and_takes_access_away(client, session, frozen):
    call, sec = setup(session, frozen)
    officer = f.officer(session, call, "DFG-T")
    session.commit()
    grant = officer.grants[0]
    login(client, officer)
    assert client.get("/funder/").status_code == 200
    login(client, sec)
    assert f'id="grant-{grant.id}"' in text_of(client.get(f"/secretariat/calls/{call.id}/people"))
    response = client.post(f"/secretariat/calls/{call.id}/people/grants/{grant.id}/revoke")
    assert response.status_code == 302
    assert "The role was revoked." in plain(client.get(response.headers["Location"]))
    assert grants(session, officer.email) == []
    [revoked] = events(session, "role.revoked")
    assert revoked.actor_id == sec.id and revoked.object_id == officer.id
    assert revoked.before == {"role": "officer", "call_id": call.id, "funder_id": f.funder(session, "DFG-T").id,
                              "user_id": officer.id}
    login(client, officer)
    assert client.get("/funder/").status_code == 403
    # a secretariat cannot revoke a secretariat role, nor roles of another call
    other_call = f.make_call(session, code="other-call")
    other = f.secretariat(session, other_call)
    colleague = f.secretariat(session, call)
    session.commit()
    login(client, sec)
    assert client.post(f"/secretariat/calls/{call.id}/people/grants/{colleague.grants[0].id}/revoke").status_code == 403
    response = client.post(f"/secretariat/calls/{call.id}/people/grants/{other.grants[0].id}/revoke")
    assert "no such role in this call" in plain(client.get(response.headers["Location"]))
    assert len(events(session, "role.revoked")) == 1


def test_an_administrator_manages_secretariats(app, client, session, frozen, mailbox, admin):  # noqa: F811
    call, sec = setup(session, frozen)
    login(client, sec)
    assert client.get("/secretariat/admin/secretariats").status_code == 403
    login(client, admin)
    page = plain(client.get("/secretariat/admin/secretariats"))
    assert f"{call.title} Sam Secretariat {sec.email}" in page
    response = client.post("/secretariat/admin/secretariats",
                           data={"call_id": str(call.id), "email": "sophie@jcs.example", "name": "Sophie"})
    assert response.status_code == 302
    [mail] = deliver(app, mailbox, 1)
    path = link_in(mail)
    client.post("/logout")
    accepted = client.post(path, data={"name": "Sophie Secretariat", "password": "a long secret phrase",
                                       "confirm": "a long secret phrase"})
    assert accepted.headers["Location"].endswith(f"/secretariat/calls/{call.id}/")
    assert grants(session, "sophie@jcs.example") == [("secretariat", call.id, None)]
    login(client, admin)
    response = client.post(f"/secretariat/calls/{call.id}/people/grants/{sec.grants[0].id}/revoke",
                           data={"back": "/secretariat/admin/secretariats"})
    assert response.headers["Location"].endswith("/secretariat/admin/secretariats")
    assert grants(session, sec.email) == []
    assert [e.actor_id for e in events(session, "role.revoked")] == [admin.id]


def test_a_cancelled_or_replaced_invitation_link_stops_working(app, client, session, frozen, mailbox):
    call, sec = setup(session, frozen)
    login(client, sec)
    for _ in range(2):
        client.post(f"/secretariat/calls/{call.id}/people/invite", data={"email": "rev@example.org", "role": "reviewer"})
    first, second = deliver(app, mailbox, 2)
    old = client.get(link_in(first))
    assert old.status_code == 410 and "replaced by a newer one" in plain(old)
    from workflow.console_models import RoleInvitation

    pending = session.scalar(select(RoleInvitation).where(RoleInvitation.revoked_at.is_(None)))
    assert client.post(f"/secretariat/calls/{call.id}/people/invitations/{pending.id}/cancel").status_code == 302
    assert client.get(link_in(second)).status_code == 410
    assert len(events(session, "role.invitation_cancelled")) == 1
    assert session.scalar(select(RoleGrant).where(RoleGrant.role == "reviewer")) is None
