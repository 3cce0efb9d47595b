"""The audit log: events written in the operation's transaction, and a hash chain that names tampering.

Tampering is done the way someone with database access would do it: raw SQL through the `engine`
fixture, outside the application. `verify` always runs in a fresh session so that it reads what the
database holds, not what an earlier session remembers.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select, text

from tests import factories
from workflow import audit
from workflow.accounts import create_user, grant_role
from workflow.audit import GENESIS, verify
from workflow.models import AuditEvent, AuditHead, User
from workflow.proposals import update_proposal

CHAIN_LENGTH = 30

# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------


def person(session, name: str = "Audit Person"):
    """A confirmed user without a password (argon2 would cost ~0.1 s per user); one audit event."""
    n = session.scalar(select(func.count(User.id))) + 1
    return create_user(session, None, email=f"audit{n}@example.org", name=name, confirmed=True)


def fresh_verify(session_factory):
    with session_factory() as s:
        return verify(s)


def head(engine) -> tuple[int, str]:
    with engine.connect() as conn:
        seq, digest = conn.execute(text("SELECT seq, hash FROM audit_head WHERE id = 1")).one()
    return seq, digest


def seqs(engine) -> list[int]:
    with engine.connect() as conn:
        return list(conn.execute(text("SELECT seq FROM audit_event ORDER BY seq")).scalars())


def event_hash(engine, seq: int) -> str:
    with engine.connect() as conn:
        return conn.execute(text("SELECT hash FROM audit_event WHERE seq = :s"), {"s": seq}).scalar_one()


def sql(engine, *statements: tuple[str, dict]) -> None:
    """Run raw statements in one transaction, as an attacker with a database console would."""
    with engine.begin() as conn:
        for statement, params in statements:
            conn.execute(text(statement), params)


def json_value(engine) -> str:
    """The placeholder for a JSON value given as text: PostgreSQL needs the cast, SQLite stores the text."""
    return "CAST(:v AS JSON)" if engine.dialect.name == "postgresql" else ":v"


def renumber(engine, from_seq: int, by: int) -> None:
    """Renumber events from `from_seq` on by `by`, in two steps (seq is unique and checked row by row)."""
    sql(engine,
        ("UPDATE audit_event SET seq = seq + 1000000 WHERE seq >= :f", {"f": from_seq}),
        ("UPDATE audit_event SET seq = seq - 1000000 + :by WHERE seq >= 1000000", {"by": by}))


INSERT_COPY = (
    'INSERT INTO audit_event (seq, at, actor_id, actor_label, action, object_type, object_id, call_id, '
    '"before", "after", reason, prev_hash, hash) '
    'SELECT :seq, at, actor_id, actor_label, :action, object_type, object_id, call_id, "before", "after", '
    ':reason, :prev_hash, :hash FROM audit_event WHERE seq = :src'
)


def forged_copy(session_factory, src: int, seq: int, *, action: str, reason: str, prev_hash: str | None = None):
    """The params for INSERT_COPY: event `src` with another seq, action and reason. With prev_hash None the
    forger links it to event `src` and computes a hash that matches its content (they know the algorithm)."""
    with session_factory() as s:
        original = s.scalar(select(AuditEvent).where(AuditEvent.seq == src))
        fake = AuditEvent(
            seq=seq, at=original.at, actor_id=original.actor_id, actor_label=original.actor_label,
            action=action, object_type=original.object_type, object_id=original.object_id,
            call_id=original.call_id, before=original.before, after=original.after, reason=reason,
            prev_hash=original.hash if prev_hash is None else prev_hash,
        )
        digest = audit._digest(audit._fields(fake))
    return {"seq": seq, "action": action, "reason": reason, "prev_hash": fake.prev_hash, "hash": digest,
            "src": src}


@pytest.fixture
def chain(session, frozen) -> int:
    """30 committed events from real operations and direct records, with awkward payloads."""
    frozen(factories.PRE_OPEN)
    call = factories.make_call(session)                                         # 1
    coordinator = person(session, "Cora Coordinator")                           # 2
    proposal = factories.valid_proposal(session, call, coordinator)             # 3..8
    payloads = [
        {"state": "submitted", "amount": 250_000, "share": 0.1},
        {"organisation": "Hospital Clínic", "city": "Zürich", "note": "naïve “quotes” — ✓"},
        {"nested": {"b": [1, 2, {"c": None}], "a": True}},
        {1: "int keys become strings", 2: "in JSON"},
        {"when": dt.datetime(2030, 2, 1, 12, 0, tzinfo=dt.UTC)},
        {},
        None,
    ]
    while session.scalar(select(AuditHead.seq)) < CHAIN_LENGTH:
        n = session.scalar(select(AuditHead.seq)) + 1
        frozen(factories.PRE_OPEN + dt.timedelta(minutes=n, microseconds=n * 1234))
        after = payloads[n % len(payloads)]
        audit.record(session, coordinator, f"test.event{n}", proposal, before={"n": n - 1}, after=after,
                     reason=f"reason {n}" if n % 3 else None)
    session.commit()
    assert head(session.get_bind())[0] == CHAIN_LENGTH
    return CHAIN_LENGTH


# --------------------------------------------------------------------------------------------------
# Written in the same transaction as the change
# --------------------------------------------------------------------------------------------------


def test_an_empty_chain_is_intact(session_factory):
    result = fresh_verify(session_factory)
    assert result.ok and result.checked == 0


def test_the_event_commits_with_the_change(session, engine, session_factory):
    factories.make_call(session)
    session.commit()
    user = person(session, "Una User")  # an operation: a row and its event, not yet committed
    with engine.connect() as conn:  # another connection sees neither yet
        assert conn.execute(text("SELECT count(*) FROM audit_event")).scalar_one() == 1
        assert conn.execute(text("SELECT count(*) FROM user_account")).scalar_one() == 0
    assert head(engine)[0] == 1
    session.commit()
    with session_factory() as s:
        event = s.scalar(select(AuditEvent).where(AuditEvent.seq == 2))
        assert (event.action, event.object_type, event.object_id) == ("user.created", "user", user.id)
        assert event.after == {"email": user.email, "is_admin": False}
    assert fresh_verify(session_factory).ok


def test_rollback_leaves_no_event_and_does_not_advance_the_head(session, engine, session_factory):
    call = factories.make_call(session)
    coordinator = person(session)
    proposal = factories.valid_proposal(session, call, coordinator)
    session.commit()
    before_seqs, before_head = seqs(engine), head(engine)
    assert before_head == (len(before_seqs), event_hash(engine, len(before_seqs)))

    # Several operations, then the request fails and rolls back.
    officer = person(session, "Olga Officer")
    grant_role(session, None, officer, "officer", call.id, factories.funder(session, "DFG-T").id)
    update_proposal(session, coordinator, proposal, title="A title nobody will see")
    session.rollback()

    assert seqs(engine) == before_seqs
    assert head(engine) == before_head
    assert fresh_verify(session_factory).ok
    # The next event continues the chain where the committed one ended: no gap, no fork.
    event = audit.record(session, None, "test.after_rollback")
    session.commit()
    assert (event.seq, event.prev_hash) == (before_head[0] + 1, before_head[1])
    result = fresh_verify(session_factory)
    assert result.ok and result.checked == before_head[0] + 1


def test_interleaved_sessions_append_one_after_the_other(session_factory, engine):
    """Two sessions each append; the second one has read the head before the first committed. The head
    row update serialises them: the second event follows the first, the chain does not fork."""
    s1, s2 = session_factory(), session_factory()
    try:
        stale = s2.get(AuditHead, 1)
        assert stale.seq == 0
        first = audit.record(s1, None, "test.first", reason="from session 1")
        s1.commit()
        second = audit.record(s2, None, "test.second", reason="from session 2")
        s2.commit()
        assert (first.seq, second.seq) == (1, 2)
        assert (first.prev_hash, second.prev_hash) == (GENESIS, first.hash)
        third = audit.record(s1, None, "test.third")
        s1.commit()
        assert (third.seq, third.prev_hash) == (3, second.hash)
    finally:
        s1.close()
        s2.close()
    assert head(engine) == (3, third.hash)
    result = fresh_verify(session_factory)
    assert result.ok and result.checked == 3


# --------------------------------------------------------------------------------------------------
# verify(): intact, modified, deleted, inserted
# --------------------------------------------------------------------------------------------------


def test_an_intact_chain_verifies(chain, session_factory):
    result = fresh_verify(session_factory)
    assert result.ok, str(result)
    assert result.checked == chain
    assert "intact" in str(result) and str(chain) in str(result)


@pytest.mark.parametrize(("column", "value", "is_json"), [
    ("reason", "nothing to see here", False),
    ("action", "proposal.fund", False),
    ("actor_label", "Someone Else <else@example.org>", False),
    ("after", '{"state": "funded"}', True),
    ("before", '{"n": 999}', True),
])  # fmt: skip
def test_a_modified_event_is_named(chain, engine, session_factory, column, value, is_json):
    placeholder = json_value(engine) if is_json else ":v"
    sql(engine, (f'UPDATE audit_event SET "{column}" = {placeholder} WHERE seq = 17', {"v": value}))
    result = fresh_verify(session_factory)
    assert not result.ok
    assert result.seq == 17 and result.checked == 16
    assert "modified" in result.problem
    assert "#17" in str(result)


def test_a_modified_event_with_a_recomputed_hash_breaks_the_next_link(chain, engine, session_factory):
    """The forger knows the algorithm and rewrites the event's own hash too: the next event no longer
    follows it."""
    sql(engine, ("UPDATE audit_event SET reason = :v WHERE seq = 17", {"v": "rewritten"}))
    with session_factory() as s:
        ev = s.scalar(select(AuditEvent).where(AuditEvent.seq == 17))
        rehashed = audit._digest(audit._fields(ev))
    sql(engine, ("UPDATE audit_event SET hash = :h WHERE seq = 17", {"h": rehashed}))
    result = fresh_verify(session_factory)
    assert not result.ok and result.seq == 18 and result.checked == 17
    assert "does not follow" in result.problem


def test_a_deleted_event_in_the_middle_is_named(chain, engine, session_factory):
    sql(engine, ("DELETE FROM audit_event WHERE seq = 15", {}))
    result = fresh_verify(session_factory)
    assert not result.ok and result.seq == 15 and result.checked == 14
    assert "event #15 was deleted (the log jumps from #14 to #16)" in result.problem


def test_deleted_events_in_the_middle_are_named_as_a_range(chain, engine, session_factory):
    sql(engine, ("DELETE FROM audit_event WHERE seq BETWEEN 10 AND 12", {}))
    result = fresh_verify(session_factory)
    assert not result.ok and result.seq == 10
    assert "#10-#12" in result.problem and "deleted" in result.problem


def test_a_deleted_event_with_renumbered_successors_is_named(chain, engine, session_factory):
    """The forger closes the gap and fixes the head's count: the renumbered event does not follow."""
    sql(engine, ("DELETE FROM audit_event WHERE seq = 15", {}))
    renumber(engine, 16, -1)
    sql(engine, ("UPDATE audit_head SET seq = seq - 1 WHERE id = 1", {}))
    assert seqs(engine) == list(range(1, CHAIN_LENGTH))
    result = fresh_verify(session_factory)
    assert not result.ok and result.seq == 15 and result.checked == 14
    assert "deleted" in result.problem


@pytest.mark.parametrize("kept", [27, 29])
def test_deleted_last_events_are_reported(chain, engine, session_factory, kept):
    sql(engine, ("DELETE FROM audit_event WHERE seq > :k", {"k": kept}))
    result = fresh_verify(session_factory)
    assert not result.ok and result.checked == kept and result.seq == kept + 1
    assert f"last {CHAIN_LENGTH - kept} event(s) were deleted" in result.problem
    assert f"#{kept}" in result.problem and f"#{CHAIN_LENGTH}" in result.problem


def test_all_events_deleted_is_reported(chain, engine, session_factory):
    sql(engine, ("DELETE FROM audit_event", {}))
    result = fresh_verify(session_factory)
    assert not result.ok and result.seq == 1 and "deleted" in result.problem


def test_an_inserted_event_with_a_wrong_link_is_named(chain, engine, session_factory):
    renumber(engine, 15, +1)
    forged = forged_copy(session_factory, 14, 15, action="proposal.fund", reason="forged",
                         prev_hash=event_hash(engine, 13))
    sql(engine, (INSERT_COPY, forged), ("UPDATE audit_head SET seq = seq + 1 WHERE id = 1", {}))
    result = fresh_verify(session_factory)
    assert not result.ok and result.seq == 15 and result.checked == 14
    assert "inserted" in result.problem


def test_an_inserted_event_with_a_correct_link_and_hash_breaks_the_next_link(chain, engine, session_factory):
    """A forger who links the fake to its predecessor and hashes it correctly: the fake itself is
    consistent, and the first event after it no longer follows."""
    renumber(engine, 15, +1)
    forged = forged_copy(session_factory, 14, 15, action="proposal.fund", reason="forged")
    sql(engine, (INSERT_COPY, forged), ("UPDATE audit_head SET seq = seq + 1 WHERE id = 1", {}))
    result = fresh_verify(session_factory)
    assert not result.ok and result.seq == 16 and result.checked == 15
    assert "inserted" in result.problem


def test_an_event_appended_behind_the_heads_back_is_named(chain, engine, session_factory):
    forged = forged_copy(session_factory, CHAIN_LENGTH, CHAIN_LENGTH + 1, action="proposal.fund",
                         reason="forged")
    sql(engine, (INSERT_COPY, forged))
    result = fresh_verify(session_factory)
    assert not result.ok and result.seq == CHAIN_LENGTH + 1
    assert "head" in result.problem


def test_an_event_inserted_before_the_first_is_named(chain, engine, session_factory):
    forged = forged_copy(session_factory, 1, 0, action="proposal.fund", reason="forged", prev_hash=GENESIS)
    sql(engine, (INSERT_COPY, forged))
    result = fresh_verify(session_factory)
    assert not result.ok and result.seq == 0 and result.checked == 0


def test_a_missing_head_is_reported(chain, engine, session_factory):
    sql(engine, ("DELETE FROM audit_head", {}))
    result = fresh_verify(session_factory)
    assert not result.ok and "head is missing" in result.problem


def test_events_recorded_with_a_non_utc_clock_verify(session, session_factory, frozen):
    frozen(dt.datetime(2030, 3, 5, 17, 59, tzinfo=ZoneInfo("Europe/Paris")))
    audit.record(session, None, "test.local_clock")
    session.commit()
    result = fresh_verify(session_factory)
    assert result.ok, str(result)


# --------------------------------------------------------------------------------------------------
# The command: jointcall audit verify
# --------------------------------------------------------------------------------------------------


@pytest.fixture
def cli(monkeypatch, database_url):
    from webapp.cli import main

    monkeypatch.setenv("JOINTCALL_DATABASE_URL", database_url)
    monkeypatch.setenv("JOINTCALL_ENV", "development")

    def run(*args: str):
        return CliRunner().invoke(main, list(args), catch_exceptions=False)

    return run


def test_cli_verify_says_intact(chain, cli):
    result = cli("audit", "verify")
    assert result.exit_code == 0, result.output
    assert "intact" in result.output and f"{chain} events" in result.output


def test_cli_verify_names_the_tampered_event(chain, engine, cli):
    sql(engine, ("UPDATE audit_event SET reason = :v WHERE seq = 23", {"v": "tampered"}))
    result = cli("audit", "verify")
    assert result.exit_code == 1, result.output
    assert "#23" in result.output and "modified" in result.output
    assert "intact" not in result.output
