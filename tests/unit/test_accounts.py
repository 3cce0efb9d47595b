"""Account operations (workflow.accounts): registering, single-use mailed tokens, password reset and login
throttling. The clock is frozen and moved by hand, so window edges are exact."""

from __future__ import annotations

import datetime as dt
import hashlib
import re

import pytest
from sqlalchemy import func, select

from tests import factories
from workflow import accounts
from workflow.accounts import (
    CONFIRM_EMAIL,
    RESET_PASSWORD,
    TokenRefused,
    attempt_login,
    confirm_email,
    register,
    request_password_reset,
    reset_password,
)
from workflow.errors import InvalidInput
from workflow.models import AccountToken, AuditEvent, LoginAttempt, OutboxMessage, User

T0 = dt.datetime(2030, 2, 1, 12, 0, tzinfo=dt.UTC)
LINKS = accounts.AccountLinks(
    confirm=lambda token: f"https://jc.example/confirm/{token}",
    reset=lambda token: f"https://jc.example/reset-password/{token}",
    login="https://jc.example/login", forgot="https://jc.example/forgot-password",
    resend="https://jc.example/confirm-again",
)
PASSWORD = "a good long password"
IP = "198.51.100.7"


@pytest.fixture
def clock(frozen):
    """clock(minutes=...) sets the time to T0 + that much."""

    def at(**delta):
        frozen(T0 + dt.timedelta(**delta))

    at()
    return at


def mails(session, kind: str | None = None) -> list[OutboxMessage]:
    query = select(OutboxMessage).order_by(OutboxMessage.id)
    if kind:
        query = query.where(OutboxMessage.kind == kind)
    return list(session.scalars(query))


def token_in(message: OutboxMessage) -> str:
    return re.search(r"https://jc\.example/(?:confirm|reset-password)/([A-Za-z0-9_-]+)", message.body_text).group(1)


def actions(session) -> list[str]:
    return list(session.scalars(select(AuditEvent.action).order_by(AuditEvent.seq)))


def sign_up(session, email="ann@example.org", name="Ann Applicant"):
    return register(session, name=name, email=email, password=PASSWORD, confirm=PASSWORD, links=LINKS)


# --------------------------------------------------------------------------------------------------
# Registration and confirmation
# --------------------------------------------------------------------------------------------------


def test_register_creates_an_unconfirmed_account_audits_it_and_mails_a_link(session, clock):
    result = sign_up(session, email=" Ann@Example.org ")
    assert result.created
    user = result.user
    assert user.email == "ann@example.org" and user.email_confirmed_at is None
    assert accounts.check_password(user, PASSWORD)
    assert actions(session) == ["user.registered"]
    [mail] = mails(session)
    assert mail.to_address == "ann@example.org"
    assert mail.subject == "Confirm your e-mail address for Jointcall"
    assert "48 hours" in mail.body_text


def test_only_the_hash_of_a_token_is_stored(session, clock):
    sign_up(session)
    token = token_in(mails(session)[0])
    [row] = session.scalars(select(AccountToken)).all()
    assert row.purpose == CONFIRM_EMAIL
    assert row.token_sha256 == hashlib.sha256(token.encode()).hexdigest()
    assert token not in (row.token_sha256, str(row.id))
    assert row.expires_at == T0 + dt.timedelta(hours=48)


def test_confirmation_link_confirms_once_and_is_refused_afterwards(session, clock):
    user = sign_up(session).user
    token = token_in(mails(session)[0])
    clock(hours=47, minutes=59)
    assert confirm_email(session, token) is user
    assert user.email_confirmed_at == T0 + dt.timedelta(hours=47, minutes=59)
    assert actions(session) == ["user.registered", "user.email_confirmed"]
    with pytest.raises(TokenRefused) as refused:
        confirm_email(session, token)
    assert refused.value.reason == "used"
    assert actions(session) == ["user.registered", "user.email_confirmed"]


def test_confirmation_link_expires_after_48_hours(session, clock):
    user = sign_up(session).user
    token = token_in(mails(session)[0])
    clock(hours=48)
    with pytest.raises(TokenRefused) as refused:
        confirm_email(session, token)
    assert refused.value.reason == "expired" and "expired" in str(refused.value)
    assert user.email_confirmed_at is None


def test_unknown_and_wrong_purpose_tokens_are_refused(session, clock):
    user = factories.make_user(session)
    request_password_reset(session, user.email, LINKS)
    reset_token = token_in(mails(session)[0])
    for token in ("nonsense", "", reset_token, "x" * 5000):
        with pytest.raises(TokenRefused) as refused:
            confirm_email(session, token)
        assert refused.value.reason == "unknown"


def test_confirming_spends_every_other_confirmation_link(session, clock):
    sign_up(session)
    assert accounts.resend_confirmation(session, "ann@example.org", LINKS)
    first, second = (token_in(m) for m in mails(session, accounts.MAIL_CONFIRM))
    confirm_email(session, second)
    with pytest.raises(TokenRefused) as refused:
        confirm_email(session, first)
    assert refused.value.reason == "used"


def test_registering_a_known_address_creates_nothing_and_mails_the_owner(session, clock):
    owner = factories.make_user(session, "Olga Owner", email="olga@example.org")
    before = actions(session)
    result = register(session, name="Mallory", email="OLGA@example.org", password="another password",
                      confirm="another password", links=LINKS)
    assert not result.created and result.user is None
    assert session.scalar(select(func.count(User.id))) == 1
    assert accounts.check_password(owner, "correct horse battery")  # the password did not change
    assert actions(session) == before
    [mail] = mails(session)
    assert mail.kind == accounts.MAIL_EXISTS and mail.to_address == "olga@example.org"
    assert mail.subject == "Someone tried to register with your e-mail address"
    assert "https://jc.example/forgot-password" in mail.body_text
    assert session.scalar(select(func.count(AccountToken.id))) == 0


@pytest.mark.parametrize(("name", "email", "password", "confirm", "field", "message"), [
    ("", "a@example.org", PASSWORD, PASSWORD, "name", "enter your name"),
    ("Ann", "not-an-address", PASSWORD, PASSWORD, "email", "this is not an e-mail address"),
    ("Ann", "a@example.org", "short", "short", "password", "at least 10 characters"),
    ("Ann", "a@example.org", PASSWORD, PASSWORD + "!", "confirm", "not the same"),
    ("Ann", "ann.lee@example.org", "ann.lee@example.org", "ann.lee@example.org", "password", "e-mail address"),
])
def test_register_refuses_bad_input_naming_the_field(session, clock, name, email, password, confirm, field,
                                                     message):
    with pytest.raises(InvalidInput) as refused:
        register(session, name=name, email=email, password=password, confirm=confirm, links=LINKS)
    assert refused.value.field == field and message in str(refused.value)
    assert session.scalar(select(func.count(User.id))) == 0
    assert mails(session) == []


def test_links_are_not_mailed_more_than_three_times_an_hour(session, clock):
    user = factories.make_user(session)
    assert [request_password_reset(session, user.email, LINKS) for _ in range(4)] == [True, True, True, False]
    clock(hours=1, seconds=1)
    assert request_password_reset(session, user.email, LINKS)
    assert len(mails(session, accounts.MAIL_RESET)) == 4


# --------------------------------------------------------------------------------------------------
# Password reset
# --------------------------------------------------------------------------------------------------


def test_reset_for_an_unknown_address_sends_nothing(session, clock):
    assert request_password_reset(session, "nobody@example.org", LINKS) is False
    assert mails(session) == [] and session.scalar(select(func.count(AccountToken.id))) == 0


def test_reset_changes_the_password_spends_all_reset_links_and_is_audited(session, clock):
    user = factories.make_user(session, email="rita@example.org")
    request_password_reset(session, "Rita@example.org", LINKS)
    request_password_reset(session, "rita@example.org", LINKS)
    first, second = (token_in(m) for m in mails(session, accounts.MAIL_RESET))
    clock(minutes=59)
    assert reset_password(session, second, "my brand new password", "my brand new password") is user
    assert accounts.check_password(user, "my brand new password")
    assert not accounts.check_password(user, "correct horse battery")
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "user.password_reset"))
    assert event.object_id == user.id and event.after == {"other_reset_links_invalidated": 1}
    assert event.before is None and user.password_hash[-20:] not in str(event.after)
    for token in (first, second):
        with pytest.raises(TokenRefused) as refused:
            reset_password(session, token, "yet another password", "yet another password")
        assert refused.value.reason == "used"
    assert accounts.check_password(user, "my brand new password")


def test_reset_link_expires_after_one_hour(session, clock):
    user = factories.make_user(session)
    request_password_reset(session, user.email, LINKS)
    token = token_in(mails(session)[0])
    clock(hours=1)
    with pytest.raises(TokenRefused) as refused:
        reset_password(session, token, "my brand new password", "my brand new password")
    assert refused.value.reason == "expired"
    assert accounts.check_password(user, "correct horse battery")


def test_a_refused_new_password_leaves_the_link_usable(session, clock):
    user = factories.make_user(session)
    request_password_reset(session, user.email, LINKS)
    token = token_in(mails(session)[0])
    with pytest.raises(InvalidInput) as refused:
        reset_password(session, token, "my brand new password", "my brand new passwort")
    assert refused.value.field == "confirm"
    reset_password(session, token, "my brand new password", "my brand new password")
    assert accounts.check_password(user, "my brand new password")


def test_reset_confirms_an_unconfirmed_address(session, clock):
    user = sign_up(session).user
    request_password_reset(session, user.email, LINKS)
    reset_password(session, token_in(mails(session, accounts.MAIL_RESET)[0]), "new password here",
                   "new password here")
    assert user.email_confirmed_at == T0


# --------------------------------------------------------------------------------------------------
# Login throttling
# --------------------------------------------------------------------------------------------------


def fail(session, email="lee@example.org", ip=IP, n=1):
    return [attempt_login(session, email, "wrong password", ip=ip) for _ in range(n)][-1]


def test_login_succeeds_and_is_recorded(session, clock):
    user = factories.make_user(session, email="lee@example.org")
    result = attempt_login(session, "LEE@example.org", "correct horse battery", ip=IP)
    assert result.user is user and result.lockout is None
    [row] = session.scalars(select(LoginAttempt)).all()
    assert (row.email, row.ip, row.succeeded, row.at) == ("lee@example.org", IP, True, T0)


def test_four_failures_still_allow_the_fifth_attempt_and_five_lock_the_address(session, clock):
    user = factories.make_user(session, email="lee@example.org")
    assert fail(session, n=4).lockout is None
    assert attempt_login(session, "lee@example.org", "correct horse battery", ip=IP).user is user

    factories.make_user(session, email="kim@example.org")
    for minute in range(5):
        clock(minutes=minute)
        assert fail(session, email="kim@example.org").lockout is None
    clock(minutes=5)
    result = attempt_login(session, "kim@example.org", "correct horse battery", ip="203.0.113.9")
    assert result.user is None
    assert result.lockout.scope == "email"
    assert result.lockout.until == T0 + dt.timedelta(minutes=15)  # the first of the five leaves the window
    assert result.lockout.message() == ("Too many failed login attempts for this e-mail address. "
                                        "Try again after 12:15 UTC (in 10 minutes).")
    # The lockout is per address: another address from the same client is not affected.
    assert attempt_login(session, "lee@example.org", "correct horse battery", ip=IP).user is user
    # Every refused attempt is recorded as a failure.
    assert session.scalar(select(func.count(LoginAttempt.id)).where(
        LoginAttempt.email == "kim@example.org", LoginAttempt.succeeded.is_(False))) == 6


def test_the_lockout_ends_when_the_failures_leave_the_15_minute_window(session, clock):
    user = factories.make_user(session, email="lee@example.org")
    fail(session, n=5)
    clock(minutes=14, seconds=59)
    assert attempt_login(session, "lee@example.org", "correct horse battery", ip=IP).lockout is not None
    clock(minutes=15)  # the five failures at T0 and the one refused at 14:59 -> only one inside the window
    assert attempt_login(session, "lee@example.org", "correct horse battery", ip=IP).user is user


def test_a_success_ends_the_count_but_keeps_the_history(session, clock):
    user = factories.make_user(session, email="lee@example.org")
    fail(session, n=4)
    clock(minutes=1)
    assert attempt_login(session, "lee@example.org", "correct horse battery", ip=IP).user is user
    clock(minutes=2)
    assert fail(session, n=4).lockout is None  # four new failures: the four before the success do not count
    assert fail(session).lockout is None  # the fifth failure is still checked (and fails) ...
    assert fail(session).lockout is not None  # ... and locks the next attempt
    assert session.scalar(select(func.count(LoginAttempt.id))) == 4 + 1 + 4 + 1 + 1


def test_thirty_attempts_from_one_client_lock_that_client(session, clock):
    for n in range(30):
        clock(seconds=n)
        assert fail(session, email=f"guess{n}@example.org").lockout is None
    clock(seconds=30)
    result = fail(session, email="fresh@example.org")
    assert result.lockout.scope == "ip"
    assert result.lockout.until == T0 + dt.timedelta(minutes=15)
    assert "Too many login attempts from your network" in result.lockout.message()
    assert fail(session, email="fresh@example.org", ip="192.0.2.1").lockout is None  # another client is fine
    clock(minutes=15, seconds=1)  # the first two attempts left the window: 28 + 1 refused remain
    assert fail(session, email="fresh2@example.org").lockout is None


def test_the_confirmation_and_reset_logins_end_a_lockout(session, clock):
    user = factories.make_user(session, email="lee@example.org")
    fail(session, n=5)
    request_password_reset(session, user.email, LINKS)
    reset_password(session, token_in(mails(session)[0]), "my brand new password", "my brand new password", ip=IP)
    assert attempt_login(session, "lee@example.org", "my brand new password", ip=IP).user is user


def test_redacting_delivered_mails_removes_live_links(session, clock):
    user = factories.make_user(session)
    request_password_reset(session, user.email, LINKS)
    message = mails(session)[0]
    token = token_in(message)
    assert accounts.redact_delivered_links(session) == 0  # still queued: nothing to redact
    message.status = "sent"
    session.flush()
    assert accounts.redact_delivered_links(session) == 1
    session.refresh(message)
    assert token not in message.body_text
    assert reset_password(session, token, "still works, mail is out", "still works, mail is out") is user
    assert RESET_PASSWORD in accounts.TOKEN_LIFETIME


def test_an_invited_person_sets_a_first_password_once_audited_and_a_weak_one_is_refused(session):
    from workflow.errors import DomainError

    invited = accounts.create_user(session, None, email="ivy@review.example", name="Ivy Invited")
    assert invited.password_hash is None
    with pytest.raises(InvalidInput):
        accounts.set_first_password(session, invited, "short", "short", via="reviewer invitation")
    assert invited.password_hash is None
    accounts.set_first_password(session, invited, "a long enough passphrase", "a long enough passphrase",
                                via="reviewer invitation")
    session.flush()
    assert accounts.check_password(invited, "a long enough passphrase")
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "user.password_set"))
    assert event.after == {"via": "reviewer invitation"} and event.object_id == invited.id
    with pytest.raises(DomainError, match="has a password already"):
        accounts.set_first_password(session, invited, "another long passphrase", "another long passphrase",
                                    via="reviewer invitation")
    assert accounts.check_password(invited, "a long enough passphrase")
