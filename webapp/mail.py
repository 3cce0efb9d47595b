"""Delivering the outbox over SMTP, after the commit that queued the messages.

Each message is claimed under a row lock (SKIP LOCKED on PostgreSQL), sent, and marked sent in its own
short transaction, so two senders never send the same message and a failure leaves it queued for a
retry with back-off. A deterministic Message-ID lets receivers drop the duplicate should a crash fall
between the SMTP server's acceptance and our commit.
"""

from __future__ import annotations

import datetime as dt
import logging
import smtplib
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate

from sqlalchemy import or_, select, update

from workflow.clock import utcnow
from workflow.models import OutboxMessage, Proposal, Submission

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 8


@dataclass
class DeliveryReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return f"{self.sent} sent, {self.retried} to retry, {self.failed} failed"


def _attachments(session, message: OutboxMessage) -> list[tuple[str, str, bytes]]:
    out = []
    for att in message.attachments or []:
        if att.get("kind") == "receipt":
            from webapp.pdfs import receipt_pdf  # WeasyPrint loads only for mail that needs a PDF

            sub = session.get(Submission, att["submission_id"])
            proposal = session.get(Proposal, sub.proposal_id)
            name = f"receipt-{proposal.reference}-{sub.stage}-{sub.number}.pdf"
            out.append((name, "application/pdf", receipt_pdf(sub, proposal, proposal.call)))
        elif att.get("kind") == "decision_letter":
            from workflow.letter_models import DecisionLetter

            letter = session.get(DecisionLetter, att["letter_id"])
            proposal = session.get(Proposal, letter.proposal_id)
            out.append((f"decision-{proposal.reference}-{letter.stage}.pdf", "application/pdf", letter.pdf))
    return out


def build_email(session, message: OutboxMessage, settings: dict) -> EmailMessage:
    email = EmailMessage()
    email["From"] = settings["mail_from"]
    email["To"] = message.to_address
    email["Subject"] = message.subject
    email["Date"] = formatdate(localtime=False)
    email["Message-ID"] = f"<outbox-{message.id}@jointcall.invalid>"
    email.set_content(message.body_text)
    for name, mime, data in _attachments(session, message):
        maintype, subtype = mime.split("/", 1)
        email.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return email


def helo_name(settings: dict) -> str:
    """The name we greet the SMTP server with: configured, else the host of the site's address. Given
    explicitly because smtplib would otherwise look up this machine's FQDN in the DNS on every
    connection, which stalls delivery for as long as a slow resolver takes."""
    import ipaddress
    from urllib.parse import urlsplit

    name = settings.get("smtp_helo_name") or urlsplit(settings.get("base_url", "")).hostname or "localhost"
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return name
    # RFC 5321 4.1.3: an address literal in brackets (strict servers refuse a bare address)
    return f"[IPv6:{address}]" if address.version == 6 else f"[{address}]"


def _smtp(settings: dict) -> smtplib.SMTP:
    smtp = smtplib.SMTP(settings["smtp_host"], int(settings["smtp_port"]), timeout=20,
                        local_hostname=helo_name(settings))
    if settings.get("smtp_starttls"):
        smtp.starttls()
    if settings.get("smtp_user"):
        smtp.login(settings["smtp_user"], settings["smtp_password"])
    return smtp


def _backoff(attempts: int) -> dt.timedelta:
    return dt.timedelta(seconds=min(30 * 2 ** (attempts - 1), 3600))


CLAIM_TIMEOUT = dt.timedelta(minutes=15)


def _claim_next(session, now) -> OutboxMessage | None:
    """Take the next due message for this sender: an UPDATE that only one sender can win."""
    while True:
        candidate = session.scalar(
            select(OutboxMessage.id)
            .where(OutboxMessage.status == "queued",
                   or_(OutboxMessage.next_attempt_at.is_(None), OutboxMessage.next_attempt_at <= now))
            .order_by(OutboxMessage.id).limit(1)
        )
        if candidate is None:
            return None
        won = session.execute(
            update(OutboxMessage).where(OutboxMessage.id == candidate, OutboxMessage.status == "queued")
            .values(status="sending", claimed_at=now).execution_options(synchronize_session=False)
        ).rowcount
        session.commit()
        if won:
            return session.get(OutboxMessage, candidate, populate_existing=True)


def deliver_pending(session_factory, settings: dict, limit: int = 200) -> DeliveryReport:
    """Send queued messages that are due. Safe to run from several processes at once: each message is
    claimed by one sender before it is sent."""
    from workflow.accounts import redact_delivered_links

    report = DeliveryReport()
    smtp = None
    try:
        with session_factory() as session:
            # A sender that died mid-message leaves a stale claim: put it back in the queue.
            session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.status == "sending", OutboxMessage.claimed_at < utcnow() - CLAIM_TIMEOUT)
                .values(status="queued", claimed_at=None).execution_options(synchronize_session=False)
            )
            session.commit()
        for _ in range(limit):
            with session_factory() as session:
                now = utcnow()
                message = _claim_next(session, now)
                if message is None:
                    break
                try:
                    email = build_email(session, message, settings)
                    if smtp is None:
                        smtp = _smtp(settings)
                    smtp.send_message(email)
                except Exception as exc:  # noqa: BLE001 - any failure means "try again later"
                    smtp = _close(smtp)
                    message.attempts += 1
                    message.last_error = f"{type(exc).__name__}: {exc}"[:2000]
                    message.claimed_at = None
                    if message.attempts >= MAX_ATTEMPTS:
                        message.status = "failed"
                        report.failed += 1
                    else:
                        message.status = "queued"
                        message.next_attempt_at = now + _backoff(message.attempts)
                        report.retried += 1
                    report.errors.append(message.last_error)
                    session.commit()
                    log.warning("outbox message %s not sent: %s", message.id, message.last_error)
                    # The server is likely down: leave the rest for the next run.
                    if isinstance(exc, OSError | smtplib.SMTPException):
                        break
                    continue
                message.status, message.sent_at, message.claimed_at = "sent", utcnow(), None
                message.attempts += 1
                message.last_error = None
                session.commit()
                report.sent += 1
        if report.sent:
            with session_factory() as session:
                redact_delivered_links(session)  # sent links must not stay usable in the database
                session.commit()
    finally:
        _close(smtp)
    return report


def _close(smtp):
    if smtp is not None:
        try:
            smtp.quit()
        except Exception:  # noqa: BLE001
            pass
    return None


def resend(session, message_id: int) -> None:
    """Put a failed message back in the queue (the secretariat's "resend")."""
    message = session.get(OutboxMessage, message_id)
    if message is not None and message.status == "failed":
        message.status, message.next_attempt_at, message.attempts = "queued", None, 0
