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
    msg = OutboxMessage(
        kind=kind, to_address=to, subject=subject, body_text=body, dedup_key=dedup_key,
        call_id=call_id, attachments=attachments or [], status="queued", attempts=0,
    )
    session.add(msg)
    return msg
