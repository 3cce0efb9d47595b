"""The audit log: append-only, hash-chained, written in the same transaction as the change it records.

Each event's hash covers its content and the previous event's hash; the one-row `audit_head` holds the
chain's end. Updating that row first serialises concurrent appends (a row lock on PostgreSQL, the write
lock on SQLite), so the chain never forks. `verify` walks the chain and names the first event that was
modified, inserted or deleted.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from workflow.clock import utcnow
from workflow.models import AuditEvent, AuditHead

GENESIS = "0" * 64


def _plain(value):
    """What JSON storage gives back, so the hash we compute now is the hash we recompute later."""
    if value is None:
        return None
    return json.loads(json.dumps(value, default=str, sort_keys=True))


def _digest(fields: dict) -> str:
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _fields(ev: AuditEvent) -> dict:
    return {
        "seq": ev.seq,
        "at": ev.at.isoformat(),
        "actor_id": ev.actor_id,
        "actor_label": ev.actor_label,
        "action": ev.action,
        "object_type": ev.object_type,
        "object_id": ev.object_id,
        "call_id": ev.call_id,
        "before": ev.before,
        "after": ev.after,
        "reason": ev.reason,
        "prev_hash": ev.prev_hash,
    }


def actor_label(actor) -> str:
    if actor is None:
        return "system"
    return f"{actor.name} <{actor.email}>"


def record(
    session: Session,
    actor,
    action: str,
    obj=None,
    *,
    before: dict | None = None,
    after: dict | None = None,
    reason: str | None = None,
    call_id: int | None = None,
    object_type: str | None = None,
    object_id: int | None = None,
) -> AuditEvent:
    """Append one event. Call it inside the operation's transaction; the caller commits."""
    if obj is not None:
        if getattr(obj, "id", None) is None:
            session.flush()
        object_type = object_type or type(obj).__name__.lower()
        object_id = object_id if object_id is not None else obj.id
        if call_id is None:
            call_id = getattr(obj, "call_id", None)
    row = session.execute(
        update(AuditHead).where(AuditHead.id == 1).values(seq=AuditHead.seq + 1)
        .returning(AuditHead.seq, AuditHead.hash)
        # The head row is never loaded as an object: without this, every record() would scan every object
        # in the session (an accepted assignment of 6,000 pairs took 90 s).
        .execution_options(synchronize_session=False)
    ).one()
    seq, prev_hash = row
    ev = AuditEvent(
        seq=seq,
        at=utcnow().astimezone(dt.UTC),
        actor_id=getattr(actor, "id", None),
        actor_label=actor_label(actor),
        action=action,
        object_type=object_type or "system",
        object_id=object_id,
        call_id=call_id,
        before=_plain(before),
        after=_plain(after),
        reason=reason,
        prev_hash=prev_hash,
    )
    ev.hash = _digest(_fields(ev))
    session.add(ev)
    session.execute(update(AuditHead).where(AuditHead.id == 1).values(hash=ev.hash)
                    .execution_options(synchronize_session=False))
    return ev


@dataclass
class VerifyResult:
    ok: bool
    checked: int
    problem: str = ""
    seq: int | None = None

    def __str__(self) -> str:
        if self.ok:
            return f"audit chain intact: {self.checked} events verified"
        return f"audit chain broken at event #{self.seq}: {self.problem}"


def verify(session: Session) -> VerifyResult:
    head = session.get(AuditHead, 1)
    prev_hash, expected_seq, checked = GENESIS, 1, 0
    for ev in session.scalars(select(AuditEvent).order_by(AuditEvent.seq)).yield_per(1000):
        if ev.seq != expected_seq:
            if ev.seq > expected_seq:
                if ev.seq == expected_seq + 1:
                    gone = f"event #{expected_seq} was deleted"
                else:
                    gone = f"events #{expected_seq}-#{ev.seq - 1} were deleted"
                return VerifyResult(False, checked, f"{gone} (the log jumps from #{expected_seq - 1} to #{ev.seq})",
                                    expected_seq)
            return VerifyResult(False, checked, "an event was inserted with a repeated number", ev.seq)
        if ev.prev_hash != prev_hash:
            return VerifyResult(False, checked, "it does not follow the event before it: an event was "
                                "inserted or deleted here", ev.seq)
        if _digest(_fields(ev)) != ev.hash:
            return VerifyResult(False, checked, "its content was modified after it was written", ev.seq)
        prev_hash, expected_seq, checked = ev.hash, expected_seq + 1, checked + 1
    if head is None:
        return VerifyResult(False, checked, "the chain head is missing", expected_seq)
    if head.seq != checked or head.hash != prev_hash:
        if head.seq > checked:
            return VerifyResult(False, checked, f"the last {head.seq - checked} event(s) were deleted "
                                f"(the log ends at #{checked}, the chain head says #{head.seq})", checked + 1)
        return VerifyResult(False, checked, "the chain head does not match the last event", checked)
    return VerifyResult(True, checked)
