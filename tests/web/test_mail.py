"""Mail leaves through the outbox after the commit: a real SMTP server receives it, a server that is
down leaves it queued, and it goes out exactly once when the server is back."""

from __future__ import annotations

import datetime as dt

import pytest
from click.testing import CliRunner
from pypdf import PdfReader
from sqlalchemy import select

from tests import factories as f
from tests.conftest import body_of
from webapp.cli import main
from webapp.mail import MAX_ATTEMPTS, deliver_pending, resend
from workflow import operations, outbox
from workflow.models import OutboxMessage, Submission


@pytest.fixture
def settings(app):
    return app.config["JOINTCALL"]


def queue(session, n=1, **kw):
    for i in range(n):
        outbox.enqueue(session, kind="test", to=f"person{i}@example.org", subject=f"Hello {i} — ünïcode",
                       body=f"Body {i}", **kw)
    session.commit()


def test_queued_mail_is_delivered_once(session, session_factory, settings, mailbox):
    queue(session, 3)
    report = deliver_pending(session_factory, settings)
    assert (report.sent, report.retried, report.failed) == (3, 0, 0)
    assert sorted(m["To"] for m in mailbox.wait_for(3)) == [f"person{i}@example.org" for i in range(3)]
    assert mailbox.messages[0]["Subject"] == "Hello 0 — ünïcode"
    assert mailbox.messages[0]["Message-ID"].startswith("<outbox-")
    again = deliver_pending(session_factory, settings)
    assert again.sent == 0 and len(mailbox.messages) == 3
    with session_factory() as s:
        assert {m.status for m in s.scalars(select(OutboxMessage))} == {"sent"}


def test_smtp_down_keeps_mail_queued_then_sends_exactly_once(session, session_factory, settings,
                                                             mailbox, frozen):
    start = dt.datetime(2030, 1, 1, 12, 0, tzinfo=dt.UTC)
    frozen(start)
    queue(session, 2)
    down = {**settings, "smtp_port": 1}  # nothing listens there
    report = deliver_pending(session_factory, down)
    assert report.sent == 0 and report.retried == 1  # stops at the first connection failure
    with session_factory() as s:
        msgs = s.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
        assert [m.status for m in msgs] == ["queued", "queued"]
        assert msgs[0].attempts == 1 and "Connection refused" in msgs[0].last_error
        assert msgs[0].next_attempt_at > start
    # Back up, but the failed one waits for its back-off; the other goes now.
    first = deliver_pending(session_factory, settings)
    assert first.sent == 1
    frozen(start + dt.timedelta(minutes=5))
    second = deliver_pending(session_factory, settings)
    assert second.sent == 1
    assert len(mailbox.wait_for(2)) == 2
    assert deliver_pending(session_factory, settings).sent == 0
    assert len(mailbox.messages) == 2


def test_mail_that_keeps_failing_is_marked_failed_and_can_be_resent(session, session_factory, settings,
                                                                    mailbox, frozen):
    now = dt.datetime(2030, 1, 1, 12, 0, tzinfo=dt.UTC)
    queue(session, 1)
    down = {**settings, "smtp_port": 1}
    for _ in range(MAX_ATTEMPTS):
        frozen(now)
        deliver_pending(session_factory, down)
        now += dt.timedelta(hours=2)
    with session_factory() as s:
        msg = s.scalars(select(OutboxMessage)).one()
        assert msg.status == "failed" and msg.attempts == MAX_ATTEMPTS
        resend(s, msg.id)
        s.commit()
    assert deliver_pending(session_factory, settings).sent == 1
    assert len(mailbox.wait_for(1)) == 1


def test_receipt_mail_carries_the_receipt_pdf(session, session_factory, settings, mailbox, frozen, app):
    frozen(f.PRE_OPEN)
    call = f.make_call(session)
    proposal = f.valid_proposal(session, call, acronym="ZOË-PM")
    operations.transition(session, proposal.coordinator, proposal.id, "submit")
    session.commit()
    with app.app_context():
        assert deliver_pending(session_factory, settings).sent == 1
    mail = mailbox.wait_for(1)[0]
    assert "ZOË-PM: receipt of your pre-proposal" in mail["Subject"]
    sub = session.scalars(select(Submission)).one()
    assert sub.sha256 in body_of(mail)
    attachment = next(mail.iter_attachments())
    assert attachment.get_content_type() == "application/pdf"
    import io

    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(attachment.get_content())).pages)
    assert "ZOË-PM" in text and sub.sha256[:32] in text.replace("\n", "")
    assert "Charité Berlin" in text


def test_outbox_send_command(monkeypatch, session, settings, mailbox):
    queue(session, 2)
    for key in ("database_url", "smtp_host", "smtp_port"):
        monkeypatch.setenv(f"JOINTCALL_{key.upper()}", str(settings[key]))
    result = CliRunner().invoke(main, ["outbox", "send"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "2 sent, 0 to retry, 0 failed" in result.output
    assert len(mailbox.wait_for(2)) == 2


@pytest.mark.parametrize("dedup", ["receipt:submission:1"])
def test_the_same_event_queues_one_message(session, dedup):
    queue(session, 1, dedup_key=dedup)
    queue(session, 1, dedup_key=dedup)
    assert len(session.scalars(select(OutboxMessage)).all()) == 1


@pytest.mark.parametrize(("configured", "base_url", "greeting"), [
    ("", "http://jointcall.test", "jointcall.test"),  # the site's host name
    ("", "http://127.0.0.1:5000", "[127.0.0.1]"),  # an address goes in brackets (RFC 5321)
    ("", "http://[::1]:5000", "[IPv6:::1]"),
    ("mail-out.example.org", "http://127.0.0.1:5000", "mail-out.example.org"),  # the setting wins
])
def test_the_smtp_server_is_greeted_with_the_site_name_or_the_setting(session, session_factory, settings, mailbox,
                                                                      configured, base_url, greeting):
    queue(session)
    report = deliver_pending(session_factory, {**settings, "smtp_helo_name": configured, "base_url": base_url})
    assert report.sent == 1 and mailbox.wait_for(1)
    assert mailbox.greetings == [greeting]
