"""`jointcall backup` and `jointcall restore`: a backup of the running database restores into an empty one
with every submission and an intact audit chain. SQLite in the SQLite pass; PostgreSQL (pg_dump/pg_restore
into a scratch database) in the PostgreSQL pass."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select, text, update
from sqlalchemy.engine import make_url

from tests import factories as f
from webapp.cli import main
from workflow import backup as backup_mod
from workflow import operations
from workflow.db import make_engine, make_session_factory
from workflow.models import AuditEvent, Proposal, Submission

SCRATCH_DB = "jointcall_backup_scratch"


def _run(monkeypatch, url, *args):
    monkeypatch.setenv("JOINTCALL_DATABASE_URL", url)
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture
def scratch_url(database_url, tmp_path):
    """An empty database of the same kind as the test database, dropped afterwards."""
    if make_url(database_url).get_backend_name() == "sqlite":
        yield f"sqlite:///{tmp_path / 'restored.db'}"
        return
    admin = make_engine(database_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {SCRATCH_DB} WITH (FORCE)"))
        conn.execute(text(f"CREATE DATABASE {SCRATCH_DB}"))
    yield make_url(database_url).set(database=SCRATCH_DB).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {SCRATCH_DB} WITH (FORCE)"))
    admin.dispose()


@pytest.fixture
def submitted(session, frozen, monkeypatch, tmp_path):
    """Two submitted proposals and a draft: what a call looks like on the day a backup matters."""
    monkeypatch.setenv("JOINTCALL_STORAGE_DIR", str(tmp_path / "files"))
    frozen(f.PRE_OPEN)
    call = f.make_call(session)
    proposals = [f.valid_proposal(session, call, acronym=name) for name in ("HELIOS", "ORION", "VEGA")]
    session.commit()
    for p in proposals[:2]:
        operations.transition(session, p.coordinator, p.id, "submit")
        session.commit()
    return proposals


def _snapshot(url):
    engine = make_engine(url)
    try:
        with make_session_factory(engine)() as s:
            subs = [(x.proposal_id, x.stage, x.number, x.sha256, operations.content_hash(x.content))
                    for x in s.scalars(select(Submission).order_by(Submission.id))]
            states = s.execute(select(Proposal.acronym, Proposal.state).order_by(Proposal.id)).all()
            events = s.scalar(select(func.count(AuditEvent.id)))
            return subs, [tuple(r) for r in states], events
    finally:
        engine.dispose()


def test_a_backup_restores_into_an_empty_database_with_the_data_and_an_intact_audit_chain(
        monkeypatch, database_url, scratch_url, submitted, tmp_path):
    out = tmp_path / "backups" / "jointcall.backup"
    made = _run(monkeypatch, database_url, "backup", "--out", str(out))
    assert made.exit_code == 0, made.output
    assert made.output.startswith(f"wrote {out} (")
    assert out.is_file() and not out.with_name(out.name + ".partial").exists()

    restored = _run(monkeypatch, scratch_url, "restore", str(out))
    assert restored.exit_code == 0, restored.output
    assert restored.output.startswith(f"restored {out}")

    verified = _run(monkeypatch, scratch_url, "audit", "verify")
    assert verified.exit_code == 0, verified.output
    subs, states, events = _snapshot(scratch_url)
    assert f"audit chain intact: {events} events verified" in verified.output
    assert events > 0
    assert (subs, states, events) == _snapshot(database_url)
    assert states == [("HELIOS", "submitted"), ("ORION", "submitted"), ("VEGA", "draft")]
    assert len(subs) == 2 and all(sha == recomputed for *_, sha, recomputed in subs)


def test_restore_refuses_a_database_that_is_not_empty_unless_forced(monkeypatch, database_url, scratch_url,
                                                                    submitted, tmp_path):
    out = tmp_path / "jointcall.backup"
    assert _run(monkeypatch, database_url, "backup", "--out", str(out)).exit_code == 0
    assert _run(monkeypatch, scratch_url, "restore", str(out)).exit_code == 0
    before = _snapshot(scratch_url)

    again = _run(monkeypatch, scratch_url, "restore", str(out))
    assert again.exit_code == 1
    assert "the database is not empty" in again.output and "--force" in again.output
    assert _snapshot(scratch_url) == before

    forced = _run(monkeypatch, scratch_url, "restore", "--force", str(out))
    assert forced.exit_code == 0, forced.output
    assert _snapshot(scratch_url) == before
    assert _run(monkeypatch, scratch_url, "audit", "verify").exit_code == 0


def test_a_backup_changed_after_the_fact_fails_the_audit_check(monkeypatch, database_url, scratch_url,
                                                              submitted, tmp_path):
    out = tmp_path / "jointcall.backup"
    assert _run(monkeypatch, database_url, "backup", "--out", str(out)).exit_code == 0
    assert _run(monkeypatch, scratch_url, "restore", str(out)).exit_code == 0
    engine = make_engine(scratch_url)
    with engine.begin() as conn:
        conn.execute(update(AuditEvent).where(AuditEvent.seq == 2).values(reason="edited afterwards"))
    engine.dispose()
    verified = _run(monkeypatch, scratch_url, "audit", "verify")
    assert verified.exit_code == 1
    assert "audit chain broken at event #2: its content was modified after it was written" in verified.output


def test_a_file_that_is_not_a_backup_is_refused(monkeypatch, scratch_url, tmp_path):
    junk = tmp_path / "notes.txt"
    junk.write_text("not a backup")
    result = _run(monkeypatch, scratch_url, "restore", str(junk))
    assert result.exit_code == 1
    assert "is not a Jointcall backup" in result.output


def test_pg_dump_gets_the_password_from_the_environment_never_the_command_line(monkeypatch, tmp_path):
    seen = {}

    def fake_run(argv, env, **_kw):
        seen["argv"], seen["env"] = argv, env
        (tmp_path / "db.backup.partial").write_bytes(b"PGDMP fake archive")

        class Done:
            returncode, stdout, stderr = 0, "", ""

        return Done()

    monkeypatch.setattr(backup_mod.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(backup_mod.subprocess, "run", fake_run)
    result = backup_mod.backup("postgresql+psycopg://calls:s3cr%40t-pw@db.example:6543/jointcall",
                               tmp_path / "db.backup")
    assert result.kind == "pg_dump" and (tmp_path / "db.backup").read_bytes().startswith(b"PGDMP")
    assert not any("s3cr" in arg for arg in seen["argv"])
    assert seen["argv"][:2] == ["/usr/bin/pg_dump", "--format=custom"]
    assert {k: seen["env"][k] for k in ("PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE")} == {
        "PGHOST": "db.example", "PGPORT": "6543", "PGUSER": "calls", "PGPASSWORD": "s3cr@t-pw",
        "PGDATABASE": "jointcall"}
