"""workflow.db.distinct_values (the audit log's filter lists walk an index instead of reading the log):
the same answer as SELECT DISTINCT, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from workflow.console import audit_vocabulary
from workflow.db import distinct_values
from workflow.models import AuditEvent, Call

AT = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


def add_events(session, rows):
    for seq, (call_id, action, object_type) in enumerate(rows, start=1):
        session.add(AuditEvent(seq=seq, at=AT, actor_label="test", action=action, object_type=object_type,
                               call_id=call_id, prev_hash="0" * 64, hash=f"{seq:064d}"))
    session.flush()


ROWS = [(1, "proposal.submitted", "proposal")] * 5 + [
    (1, "eligibility.signed_off", "eligibility_check"),
    (1, "call.settings_changed", "call"),
    (2, "review.submitted", "review"),
    (2, "proposal.submitted", "proposal"),
    (None, "account.registered", "user"),
    (1, "proposal.submitted", "proposal"),
]


def test_the_values_of_one_call_in_order_each_once(session):
    add_events(session, ROWS)
    assert distinct_values(session, AuditEvent.action, AuditEvent.call_id == 1) == [
        "call.settings_changed", "eligibility.signed_off", "proposal.submitted"]
    assert distinct_values(session, AuditEvent.object_type, AuditEvent.call_id == 2) == ["proposal", "review"]


def test_without_conditions_every_value_and_the_same_as_select_distinct(session):
    add_events(session, ROWS)
    expected = list(session.scalars(select(AuditEvent.action).distinct().order_by(AuditEvent.action)))
    assert distinct_values(session, AuditEvent.action) == expected
    assert len(expected) == 5


def test_nothing_selected_nothing_listed(session):
    add_events(session, ROWS)
    assert distinct_values(session, AuditEvent.action, AuditEvent.call_id == 99) == []
    assert distinct_values(session, AuditEvent.call_id) == [1, 2]  # NULL is not a value to filter by


def test_the_audit_pages_filter_lists_name_what_happened_in_that_call(session):
    add_events(session, ROWS)
    call = Call(id=2, code="two")  # only its id is read
    actions, types = audit_vocabulary(session, call)
    assert actions == ["proposal.submitted", "review.submitted"] and types == ["proposal", "review"]
    actions, types = audit_vocabulary(session, None)  # an administrator's whole log
    assert "account.registered" in actions and "user" in types and len(actions) == 5
