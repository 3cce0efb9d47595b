"""Test fixtures: a migrated database (SQLite by default, PostgreSQL with JOINTCALL_TEST_DB=pg), cleaned
after every test; the Flask app and its test client; a frozen clock.

PostgreSQL: JOINTCALL_TEST_PG_URL (default postgresql+psycopg://jointcall:jointcall@127.0.0.1:5432/jointcall_test).
With CI=true a missing PostgreSQL or Chromium is an error, not a skip.
"""

from __future__ import annotations

import os
from contextlib import contextmanager

import pytest
from sqlalchemy import event, inspect, text

import reviews.models  # noqa: F401  (registers the review tables for wipe())
import workflow.console_models  # noqa: F401
import workflow.funding_models  # noqa: F401
import workflow.letter_models  # noqa: F401
from workflow import clock
from workflow.db import Base, make_engine, make_session_factory
from workflow.migrate import upgrade

IN_CI = os.environ.get("CI", "").lower() == "true"
PG_URL = os.environ.get("JOINTCALL_TEST_PG_URL",
                        "postgresql+psycopg://jointcall:jointcall@127.0.0.1:5432/jointcall_test")
USE_PG = os.environ.get("JOINTCALL_TEST_DB", "sqlite") == "pg"


def pg_available(url: str = PG_URL) -> str | None:
    """None when PostgreSQL answers at `url`, else why not."""
    try:
        engine = make_engine(url)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means "not available"
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


def need_pg(url: str = PG_URL) -> None:
    why = pg_available(url)
    if why is not None:
        message = f"PostgreSQL is not available at {url} ({why}); run `make test` to start it"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


def _reset_schema(url: str) -> None:
    engine = make_engine(url)
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(autouse=True, scope="session")
def _cheap_password_hashes():
    """Real argon2, with the smallest cost: the tests check behaviour, not the hash's strength."""
    from argon2 import PasswordHasher

    from workflow import accounts

    real = accounts._hasher
    accounts._hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    yield
    accounts._hasher = real


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> str:
    if USE_PG:
        need_pg()
        url = PG_URL
        _reset_schema(url)
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
    upgrade(url)
    return url


@pytest.fixture(scope="session")
def engine(database_url):
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


# TRUNCATE costs file work per table, so only the tables a test wrote to are truncated; every sequence
# is restarted (cheap) so that ids start at 1 again.
_PG_WIPE = """
CREATE OR REPLACE FUNCTION pg_temp.jointcall_wipe(names text[]) RETURNS void AS $$
DECLARE t text; used text[] := '{}'; found boolean;
BEGIN
  FOREACH t IN ARRAY names LOOP
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I)', t) INTO found;
    IF found THEN used := used || t; END IF;
  END LOOP;
  IF array_length(used, 1) > 0 THEN
    EXECUTE 'TRUNCATE ' || array_to_string(used, ', ') || ' CASCADE';
  END IF;
  FOR t IN SELECT sequencename FROM pg_sequences WHERE schemaname = 'public' LOOP
    PERFORM setval(quote_ident(t), 1, false);
  END LOOP;
END $$ LANGUAGE plpgsql;
"""


def wipe(engine) -> None:
    """Empty every table and restart the audit chain: each test starts from a fresh migrated database."""
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text(_PG_WIPE))
            conn.execute(text("SELECT pg_temp.jointcall_wipe(:names)"), {"names": tables})
        else:
            for name in tables:
                conn.execute(text(f"DELETE FROM {name}"))
            if inspect(conn).has_table("sqlite_sequence"):
                conn.execute(text("DELETE FROM sqlite_sequence"))
        conn.execute(text("INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, :h)"), {"h": "0" * 64})


@pytest.fixture
def session_factory(engine):
    factory = make_session_factory(engine)
    yield factory
    wipe(engine)


@pytest.fixture
def session(session_factory):
    s = session_factory()
    yield s
    s.rollback()
    s.close()


@pytest.fixture
def frozen():
    """`frozen(instant)` freezes the clock for the rest of the test."""
    previous = clock._source

    def freeze(instant):
        clock.set_clock(lambda: instant)

    yield freeze
    clock.set_clock(previous)


class Mailbox:
    """A real SMTP server (aiosmtpd) on localhost that keeps what it receives."""

    def __init__(self):
        import email
        import email.policy

        from aiosmtpd.controller import Controller

        self._email, self._policy = email, email.policy.default
        self.messages: list = []
        self.greetings: list = []  # the name each sender gave in HELO/EHLO
        mailbox = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                mailbox.greetings.append(session.host_name)
                mailbox.messages.append(
                    mailbox._email.message_from_bytes(envelope.original_content, policy=mailbox._policy))
                return "250 Message accepted for delivery"

        import socket

        with socket.socket() as probe:  # aiosmtpd checks readiness by connecting, so it needs a real port
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        # server_hostname: else aiosmtpd asks the DNS for this machine's FQDN on every connection.
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port, server_hostname="localhost")
        self.database_url: str | None = None  # set per test, to explain a wait that timed out
        self.controller.start()

    def to(self, address: str) -> list:
        return [m for m in self.messages if address.lower() in str(m["To"]).lower()]

    def wait_for(self, count: int, timeout: float = 30.0) -> list:
        import time

        end = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < end:
            time.sleep(0.05)
        if len(self.messages) < count:
            self._explain_missing(count)
        return self.messages

    def _explain_missing(self, count: int) -> None:
        """Print what the outbox holds and what every thread is doing, so a mail that never came can be
        diagnosed from the test report alone."""
        import faulthandler
        import sys

        print(f"\nmailbox: {len(self.messages)} of {count} messages arrived", file=sys.stderr)
        if self.database_url:
            from sqlalchemy import create_engine, text

            engine = create_engine(self.database_url)
            try:
                with engine.connect() as conn:
                    for row in conn.execute(text("SELECT id, kind, to_address, status, attempts, last_error, "
                                                 "next_attempt_at, claimed_at FROM outbox_message ORDER BY id")):
                        print(f"outbox: {tuple(row)}", file=sys.stderr)
            except Exception as exc:  # noqa: BLE001 - diagnostics only
                print(f"outbox unreadable: {exc!r}", file=sys.stderr)
            finally:
                engine.dispose()
        sys.stderr.flush()
        faulthandler.dump_traceback(file=sys.stderr, all_threads=True)

    def stop(self):
        self.controller.stop()


@pytest.fixture(scope="session")
def _mailbox():
    box = Mailbox()
    yield box
    box.stop()


@pytest.fixture
def mailbox(_mailbox):
    _mailbox.messages.clear()
    _mailbox.greetings.clear()
    return _mailbox


@contextmanager
def statements(app):
    """Counts the SQL statements the app sends inside the block: `with statements(app) as seen: ...`,
    then len(seen)."""
    seen = []

    def count(*_args):
        seen.append(1)

    engine = app.extensions["jointcall.engine"]
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def body_of(message) -> str:
    part = message.get_body(preferencelist=("plain",))
    return part.get_content() if part is not None else ""


@pytest.fixture
def settings_overrides(database_url, tmp_path, mailbox) -> dict:
    mailbox.database_url = database_url
    return {"database_url": database_url, "testing": True, "storage_dir": str(tmp_path / "files"),
            "secret_key": "test-secret-key-that-is-long-enough-for-tests",
            "smtp_host": "127.0.0.1", "smtp_port": mailbox.port, "base_url": "http://jointcall.test"}


@pytest.fixture
def app(settings_overrides, session_factory):
    from webapp import create_app

    app = create_app(settings_overrides)
    app.config["WTF_CSRF_ENABLED"] = False
    yield app
    app.extensions["jointcall.engine"].dispose()


@pytest.fixture
def client(app):
    return app.test_client()


# ---------------------------------------------------------------------------------------------------------
# PostgreSQL-only tests (tests/pg): they use the PostgreSQL pass's database, or PostgreSQL on their own.


@pytest.fixture(scope="session")
def pg_engine(request, tmp_path_factory):
    if USE_PG:
        engine = request.getfixturevalue("engine")
        yield engine
        return
    need_pg()
    _reset_schema(PG_URL)
    upgrade(PG_URL)
    engine = make_engine(PG_URL)
    yield engine
    engine.dispose()


@pytest.fixture
def pg_session_factory(pg_engine):
    factory = make_session_factory(pg_engine)
    yield factory
    wipe(pg_engine)
