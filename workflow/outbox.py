"""The outbox: messages are rows written in the same transaction as the change that causes them.

Delivery happens after the commit (webapp.mail sends queued rows); a message whose dedup key exists
already is not queued twice.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from workflow.models import OutboxMessage


def enqueue(
    session: Session,
    *,
    kind: str,
    to: str,
    subject: str,
    body: str,
    dedup_key: str | None = None,
    call_id: int | None = None,
    attachments: list | None = None,
) -> OutboxMessage:
    if dedup_key is not None:
        existing = session.scalar(select(OutboxMessage).where(OutboxMessage.dedup_key == dedup_key))
        if existing is not None:
            return existing
    subject = " ".join(subject.split())  # one header line, whatever a proposal's fields contain
    msg = OutboxMessage(
        kind=kind, to_address=to, subject=subject, body_text=body, dedup_key=dedup_key,
        call_id=call_id, attachments=attachments or [], status="queued", attempts=0,
    )
    session.add(msg)
    return msg


def to_coordinator(session: Session, proposal, *, kind: str, subject: str, text: str, dedup_key: str,
                   attachments: list | None = None, context: dict | None = None) -> OutboxMessage:
    """A message to a proposal's coordinator: the call's name and the acronym lead the subject, the body
    greets them by name. The one place every coordinator mail is composed.

    Kinds the secretariat can word (workflow.mail_templates.KINDS) use the call's wording, filled in with
    `context`; the others use `subject` and `text`."""
    from workflow import mail_templates

    call = proposal.call
    if kind in mail_templates.KINDS:
        full_subject, body = mail_templates.render(session, call, kind, {
            "proposal": {"reference": proposal.reference, "acronym": proposal.acronym, "title": proposal.title},
            "coordinator": {"name": proposal.coordinator.name, "email": proposal.coordinator.email},
            **(context or {}),
        })
    else:
        full_subject = f"[{call.settings.title}] {proposal.acronym}: {subject}"
        body = f"Dear {proposal.coordinator.name},\n\n{text}"
    return enqueue(session, kind=kind, to=proposal.coordinator.email, call_id=call.id, dedup_key=dedup_key,
                   subject=full_subject, body=body, attachments=attachments)
