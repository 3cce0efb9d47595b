"""The `jointcall` command: schema upgrades, loading call definitions, users."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from webapp.cli import main
from webapp.settings import PROJECT_DIR
from workflow.db import make_engine
from workflow.migrate import current_revision, head_revision
from workflow.models import AuditEvent, Call, CallFunder, FundingOrganisation

EPPERMED = PROJECT_DIR / "config/calls/eppermed-jtc2024.toml"
SINGLE = PROJECT_DIR / "config/calls/sample-single-stage.toml"


@pytest.fixture
def cli(monkeypatch, database_url, session_factory, tmp_path):
    monkeypatch.setenv("JOINTCALL_DATABASE_URL", database_url)
    monkeypatch.setenv("JOINTCALL_STORAGE_DIR", str(tmp_path))
    runner = CliRunner()

    def run(*args, **kwargs):
        return runner.invoke(main, list(args), catch_exceptions=False, **kwargs)

    return run


def counts(session_factory):
    with session_factory() as s:
        return tuple(s.scalar(select(func.count()).select_from(m)) for m in (Call, CallFunder,
                                                                             FundingOrganisation, AuditEvent))


def test_db_upgrade_brings_a_new_sqlite_file_to_head(monkeypatch, tmp_path):
    url = f"sqlite:///{tmp_path / 'new.db'}"
    monkeypatch.setenv("JOINTCALL_DATABASE_URL", url)
    result = CliRunner().invoke(main, ["db", "upgrade"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "database is up to date" in result.output
    engine = make_engine(url)
    assert current_revision(engine) == head_revision(url)
    engine.dispose()


def test_db_upgrade_on_the_test_database_is_idempotent(cli, database_url):
    assert cli("db", "upgrade").exit_code == 0
    assert cli("db", "upgrade").exit_code == 0
    engine = make_engine(database_url)
    assert current_revision(engine) == head_revision(database_url)
    engine.dispose()


def test_load_call_twice_changes_nothing(cli, session_factory):
    first = cli("load-call", str(EPPERMED))
    assert first.exit_code == 0, first.output
    assert "eppermed-jtc2024: created (30 funders, 2 stages)" in first.output
    after_first = counts(session_factory)
    second = cli("load-call", str(EPPERMED))
    assert second.exit_code == 0
    assert "eppermed-jtc2024: unchanged" in second.output
    assert counts(session_factory) == after_first


def test_load_call_shares_funders_between_calls(cli, session_factory):
    assert cli("load-call", str(EPPERMED)).exit_code == 0
    assert cli("load-call", str(SINGLE)).exit_code == 0
    with session_factory() as s:
        anr = s.scalars(select(FundingOrganisation).where(FundingOrganisation.acronym == "ANR")).all()
        assert len(anr) == 1
        assert s.scalar(select(func.count(CallFunder.id)).where(CallFunder.funder_id == anr[0].id)) == 2


def test_load_call_changed_file_updates_and_audits(cli, session_factory, tmp_path):
    assert cli("load-call", str(EPPERMED)).exit_code == 0
    changed = tmp_path / "changed.toml"
    changed.write_text(EPPERMED.read_text(encoding="utf-8").replace("committed_budget = 4500000",
                                                                    "committed_budget = 4600000", 1),
                       encoding="utf-8")
    result = cli("load-call", str(changed))
    assert "eppermed-jtc2024: updated" in result.output
    with session_factory() as s:
        bmbf = s.scalar(select(CallFunder).join(FundingOrganisation).where(FundingOrganisation.acronym == "BMBF"))
        assert bmbf.committed_budget == 4_600_000
        assert s.scalar(select(func.count(AuditEvent.id)).where(AuditEvent.action == "call.updated")) == 1


@pytest.mark.parametrize("edit, key, why", [
    (lambda t: t.replace('time_zone = "Europe/Paris"', 'time_zone = "Europe/Pariss"'), "time_zone",
     "not an IANA time zone"),
    (lambda t: t.replace("committed_budget = 4500000", "committed_budget = -1", 1), "funders[",
     "greater than or equal to 0"),
    (lambda t: t.replace("[consortium]", "[consortium]\nmax_partnerz = 3", 1), "consortium.max_partnerz",
     "unknown key"),
    (lambda t: t + "\n[[[broken", "(file)", "not valid TOML"),
])
def test_load_call_errors_name_the_key_and_change_nothing(cli, session_factory, tmp_path, edit, key, why):
    bad = tmp_path / "bad.toml"
    bad.write_text(edit(EPPERMED.read_text(encoding="utf-8")), encoding="utf-8")
    before = counts(session_factory)
    result = cli("load-call", str(bad))
    assert result.exit_code == 1
    assert key in result.output and why in result.output
    assert counts(session_factory) == before


def test_load_call_missing_file(cli):
    result = cli("load-call", "/nonexistent/call.toml")
    assert result.exit_code == 1
    assert "cannot be read" in result.output


def test_create_user_then_log_in(cli, app):
    result = cli("create-user", "--email", "Admin@Example.org", "--name", "Ada Admin", "--admin",
                 input="a-long-password\na-long-password\n")
    assert result.exit_code == 0, result.output
    assert "created admin@example.org (admin)" in result.output
    client = app.test_client()
    page = client.post("/login", data={"email": "admin@example.org", "password": "a-long-password"},
                       follow_redirects=True)
    assert "Welcome, Ada Admin." in page.get_data(as_text=True)


def test_create_user_rejects_short_password_and_duplicates(cli):
    short = cli("create-user", "--email", "x@example.org", "--name", "X", input="short\nshort\n")
    assert short.exit_code == 1 and "at least 10 characters" in short.output
    assert cli("create-user", "--email", "y@example.org", "--name", "Y",
               input="long-enough-pw\nlong-enough-pw\n").exit_code == 0
    dup = cli("create-user", "--email", "Y@example.org", "--name", "Y2", input="long-enough-pw\nlong-enough-pw\n")
    assert dup.exit_code == 1 and "exists already" in dup.output


def test_remind_reviewers_queues_the_reminders_due_today_and_says_so(cli, session, frozen):
    import datetime as dt

    from tests import factories as f
    from tests.unit.reviews_helpers import assign, make_proposal, make_reviewer
    from workflow.callconfig import parse_call_definition
    from workflow.calls import load_call
    from workflow.console import definition_data
    from workflow.models import OutboxMessage

    frozen(f.FULL_CLOSED)
    call = f.make_call(session)
    sec = f.secretariat(session, call)
    rita = make_reviewer(session, call, "Rita Reviewer")
    assign(session, make_proposal(session, call, "PGX"), rita)
    data = definition_data(call.settings)
    next(st for st in data["stages"] if st["kind"] == "full")["review_deadline"] = dt.datetime(2030, 7, 15, 17, 0)
    load_call(session, sec, parse_call_definition(data))
    session.commit()

    for bad_days in ("seven", "", ",", "-3"):
        bad = cli("remind-reviewers", "--days", bad_days)
        assert bad.exit_code == 2 and "--days takes whole numbers of 0 or more" in bad.output, bad_days
    frozen(dt.datetime(2030, 7, 12, 8, 0, tzinfo=dt.UTC))  # 3 days before: not a reminder day
    assert "no review deadline is due for a reminder today" in cli("remind-reviewers").output
    result = cli("remind-reviewers", "--days", "3")
    assert result.exit_code == 0 and f"{call.code} full: 1 reminder queued" in result.output
    session.expire_all()
    assert session.scalar(select(OutboxMessage.to_address).where(OutboxMessage.kind == "review_reminder")) == rita.email
