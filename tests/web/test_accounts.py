"""Accounts through the browser's eyes: register, confirm by the mailed link, log in (throttled), reset a
forgotten password. Mail goes through the real SMTP server fixture (`mailbox`); each test delivers the
outbox explicitly, so it does not depend on when the in-process sender runs."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import func, select

from tests import factories as f
from tests.conftest import body_of
from webapp.mail import deliver_pending
from workflow.models import AccountToken, AuditEvent, LoginAttempt, OutboxMessage, User

T0 = dt.datetime(2030, 2, 1, 12, 0, tzinfo=dt.UTC)
PASSWORD = "a good long password"
LINK = re.compile(r"http://jointcall\.test(/(?:confirm|reset-password)/[A-Za-z0-9_-]{43})\s")


def text_of(response) -> str:
    return re.sub(r"\s+", " ", response.get_data(as_text=True))


def deliver(app, mailbox, expected: int) -> list:
    """Send what the outbox holds and return the mailbox once `expected` messages have arrived."""
    deliver_pending(app.extensions["jointcall.sessions"], app.config["JOINTCALL"])
    return mailbox.wait_for(expected)


def link_in(message) -> str:
    match = LINK.search(body_of(message) + "\n")
    assert match, body_of(message)
    return match.group(1)


def count(session, model) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(model))


def register(client, **data):
    form = {"name": "Ann Applicant", "email": "ann@example.org", "password": PASSWORD, "confirm": PASSWORD}
    form.update(data)
    return client.post("/register", data=form)


# --------------------------------------------------------------------------------------------------
# Register and confirm
# --------------------------------------------------------------------------------------------------


def test_login_page_links_to_register_and_forgotten_password(client):
    page = client.get("/login").get_data(as_text=True)
    assert '<a href="/register">Register</a>' in page
    assert '<a href="/forgot-password">Forgot your password?</a>' in page
    form = client.get("/register").get_data(as_text=True)
    for label in ("Name", "E-mail", "Password", "Repeat the password"):
        assert f">{label}</label>" in form
    assert 'value="Create account"' in form


def test_register_mails_a_link_that_confirms_logs_in_and_works_once(app, client, session, mailbox):
    response = register(client)
    assert response.status_code == 302 and response.headers["Location"] == "/check-mail/registered"
    page = text_of(client.get("/check-mail/registered"))
    assert "Check your mailbox" in page and "ann@example.org" in page

    user = session.scalar(select(User).where(User.email == "ann@example.org"))
    assert user.name == "Ann Applicant" and user.email_confirmed_at is None
    [mail] = deliver(app, mailbox, 1)
    assert mail["To"] == "ann@example.org"
    assert mail["Subject"] == "Confirm your e-mail address for Jointcall"
    link = link_in(mail)
    assert link.startswith("/confirm/")

    opened = client.get(link, follow_redirects=True)
    assert opened.status_code == 200
    page = text_of(opened)
    assert "your e-mail address ann@example.org is confirmed and you are logged in" in page
    assert '<span class="navbar-text text-white" id="whoami">Ann Applicant</span>' in page
    session.expire_all()
    assert session.get(User, user.id).email_confirmed_at is not None
    assert session.scalars(select(AuditEvent.action).order_by(AuditEvent.seq)).all() == [
        "user.registered", "user.email_confirmed"]

    again = client.get(link)
    assert again.status_code == 410
    page = text_of(again)
    assert "This link has already been used" in page
    assert "Your e-mail address is confirmed already" in page


def test_registering_a_known_address_answers_the_same_and_warns_the_owner(app, client, session, mailbox):
    f.make_user(session, "Olga Owner", email="olga@example.org")
    session.commit()
    fresh = register(client, email="new@example.org")
    known = register(client, email="Olga@Example.org", name="Someone Else")
    assert (fresh.status_code, known.status_code) == (302, 302)
    assert fresh.headers["Location"] == known.headers["Location"]
    known_page = text_of(client.get(known.headers["Location"]))
    register(client, email="new2@example.org")
    fresh_page = text_of(client.get(fresh.headers["Location"]))
    assert known_page.replace("olga@example.org", "X") == fresh_page.replace("new2@example.org", "X")

    assert count(session, User) == 3  # Olga, new, new2: no second Olga
    messages = deliver(app, mailbox, 3)
    [note] = mailbox.to("olga@example.org")
    assert note["Subject"] == "Someone tried to register with your e-mail address"
    assert "http://jointcall.test/forgot-password" in body_of(note)
    assert not LINK.search(body_of(note) + "\n")  # no usable token in the note
    assert len(messages) == 3


@pytest.mark.parametrize(("data", "field", "message"), [
    ({"name": "", "email": "", "password": "", "confirm": ""}, "name", "enter your name"),
    ({"email": ""}, "email", "enter your e-mail address"),
    ({"email": "ann at example"}, "email", "this is not an e-mail address"),
    ({"password": "too short", "confirm": "too short"}, "password", "the password needs at least 10 characters"),
    ({"confirm": PASSWORD + "?"}, "confirm", "the two passwords are not the same"),
    ({"confirm": ""}, "confirm", "repeat the password"),
    ({"email": "ann@example.org", "password": "ann@example.org", "confirm": "ann@example.org"},
     "password", "the password must not be your e-mail address"),
])
def test_bad_registration_input_is_shown_next_to_the_field_and_creates_nothing(client, session, data, field,
                                                                               message):
    response = register(client, **data)
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert f'id="{field}-error">{message}' in body
    assert f'aria-describedby="{field}-error"' in body
    if data.get("name", "x"):
        assert 'value="Ann Applicant"' in body  # what was typed is kept (passwords are never echoed)
    assert PASSWORD not in body
    assert count(session, User) == 0 and count(session, OutboxMessage) == 0


def test_all_empty_registration_names_every_field(client):
    body = register(client, name="", email="", password="", confirm="").get_data(as_text=True)
    for field, message in (("name", "enter your name"), ("email", "enter your e-mail address"),
                           ("password", "choose a password"), ("confirm", "repeat the password")):
        assert f'id="{field}-error">{message}' in body


def test_unconfirmed_user_may_log_in_and_is_asked_to_confirm(client, session):
    from workflow.accounts import create_user

    create_user(session, None, email="una@example.org", name="Una", password=PASSWORD)
    session.commit()
    page = client.post("/login", data={"email": "una@example.org", "password": PASSWORD}, follow_redirects=True)
    body = text_of(page)
    assert "Welcome, Una." in body
    assert ("Please confirm your e-mail address: open the link we mailed to una@example.org. "
            'No mail? <a href="/confirm-again">Send a new link</a>.') in body


def test_expired_confirmation_link_offers_a_new_one_that_works(app, client, session, mailbox, frozen):
    frozen(T0)
    register(client)
    [first] = deliver(app, mailbox, 1)
    frozen(T0 + dt.timedelta(hours=48))
    expired = client.get(link_in(first))
    assert expired.status_code == 410
    page = text_of(expired)
    assert "This link has expired. Links of this kind work for 48 hours." in page
    assert '<a class="btn btn-primary" href="/confirm-again">Send me a new confirmation link</a>' in page

    assert client.get("/confirm-again").status_code == 200
    response = client.post("/confirm-again", data={"email": "ann@example.org"})
    assert response.headers["Location"] == "/check-mail/confirmation"
    assert "Check your mailbox" in text_of(client.get("/check-mail/confirmation"))
    second = deliver(app, mailbox, 2)[1]
    assert link_in(second) != link_in(first)
    assert "is confirmed and you are logged in" in text_of(client.get(link_in(second), follow_redirects=True))


def test_unknown_confirmation_link_says_so(client):
    response = client.get("/confirm/not-a-real-token")
    assert response.status_code == 404
    assert "This link is not valid" in text_of(response)


# --------------------------------------------------------------------------------------------------
# Log in, throttled
# --------------------------------------------------------------------------------------------------


def test_five_wrong_passwords_lock_the_address_for_15_minutes(client, session, frozen):
    f.make_user(session, "Lee", email="lee@example.org")
    session.commit()
    frozen(T0)
    for _ in range(5):
        assert client.post("/login", data={"email": "lee@example.org", "password": "wrong!"}).status_code == 422
    frozen(T0 + dt.timedelta(minutes=3))
    locked = client.post("/login", data={"email": "lee@example.org", "password": "correct horse battery"})
    assert locked.status_code == 429
    page = text_of(locked)
    assert ('role="alert">Too many failed login attempts for this e-mail address. '
            "Try again after 12:15 UTC (in 12 minutes).") in page
    assert "whoami" not in page
    assert count(session, LoginAttempt) == 6

    frozen(T0 + dt.timedelta(minutes=18))  # the window has passed (the refused try at 12:03 is alone in it)
    ok = client.post("/login", data={"email": "lee@example.org", "password": "correct horse battery"},
                     follow_redirects=True)
    assert "Welcome, Lee." in text_of(ok)


# --------------------------------------------------------------------------------------------------
# Forgotten password
# --------------------------------------------------------------------------------------------------


def test_reset_password_journey(app, client, session, mailbox):
    user = f.make_user(session, "Rita", email="rita@example.org")
    session.commit()
    assert "Forgot your password?" in text_of(client.get("/forgot-password"))
    response = client.post("/forgot-password", data={"email": "RITA@example.org"})
    assert response.headers["Location"] == "/check-mail/reset"
    assert "we have just sent a link to choose a new password" in text_of(client.get("/check-mail/reset"))
    [mail] = deliver(app, mailbox, 1)
    assert mail["Subject"] == "Reset your Jointcall password"
    link = link_in(mail)
    assert link.startswith("/reset-password/")

    form = client.get(link)
    assert form.status_code == 200 and 'value="Change password"' in form.get_data(as_text=True)
    mismatch = client.post(link, data={"password": "my new password!", "confirm": "my new passw0rd!"})
    assert mismatch.status_code == 422
    assert 'id="confirm-error">the two passwords are not the same' in mismatch.get_data(as_text=True)

    done = client.post(link, data={"password": "my new password!", "confirm": "my new password!"},
                       follow_redirects=True)
    page = text_of(done)
    assert "Your password has been changed and you are logged in." in page
    assert 'id="whoami">Rita<' in page
    session.expire_all()
    assert session.scalar(select(AuditEvent.action).where(AuditEvent.object_id == user.id)
                          .order_by(AuditEvent.seq.desc()).limit(1)) == "user.password_reset"

    again = client.get(link)
    assert again.status_code == 410 and "This link has already been used" in text_of(again)
    assert "Ask for a new password reset link" in text_of(again)
    client.post("/logout")
    old = client.post("/login", data={"email": "rita@example.org", "password": "correct horse battery"})
    assert old.status_code == 422
    new = client.post("/login", data={"email": "rita@example.org", "password": "my new password!"})
    assert new.status_code == 302


def test_forgot_password_answers_the_same_for_unknown_addresses(app, client, session, mailbox):
    f.make_user(session, email="known@example.org")
    session.commit()
    known = client.post("/forgot-password", data={"email": "known@example.org"})
    known_page = text_of(client.get(known.headers["Location"]))
    unknown = client.post("/forgot-password", data={"email": "unknown@example.org"})
    unknown_page = text_of(client.get(unknown.headers["Location"]))
    assert known.headers["Location"] == unknown.headers["Location"]
    assert known_page.replace("known@example.org", "X") == unknown_page.replace("unknown@example.org", "X")
    assert len(deliver(app, mailbox, 1)) == 1
    assert mailbox.to("unknown@example.org") == []
    assert count(session, AccountToken) == 1


def test_a_password_reset_logs_out_every_other_session(app, client, session, mailbox):
    f.make_user(session, "Rita", email="rita@example.org")
    session.commit()
    elsewhere = app.test_client()
    elsewhere.post("/login", data={"email": "rita@example.org", "password": "correct horse battery"})
    assert 'id="whoami">Rita<' in text_of(elsewhere.get("/"))

    client.post("/forgot-password", data={"email": "rita@example.org"})
    [mail] = deliver(app, mailbox, 1)
    client.post(link_in(mail), data={"password": "my new password!", "confirm": "my new password!"})
    assert 'id="whoami">Rita<' in text_of(client.get("/"))
    assert "whoami" not in text_of(elsewhere.get("/"))


def test_reset_link_with_bad_token_is_refused(client):
    response = client.post("/reset-password/forged", data={"password": "x" * 12, "confirm": "x" * 12})
    assert response.status_code == 404
    assert "This link is not valid" in text_of(response)


# --------------------------------------------------------------------------------------------------
# CSRF
# --------------------------------------------------------------------------------------------------


def test_register_without_csrf_token_is_refused_and_creates_nothing(app, client, session):
    app.config["WTF_CSRF_ENABLED"] = True
    response = register(client)
    assert response.status_code == 400
    assert "This form was not sent from this site or has expired" in response.get_data(as_text=True)
    assert count(session, User) == 0 and count(session, OutboxMessage) == 0
    page = client.get("/register").get_data(as_text=True)
    assert re.search(r'name="csrf_token" type="hidden" value="[^"]+"', page)
