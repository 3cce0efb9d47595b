"""What the benchmarks share: where generated databases live, the benchmark's own PostgreSQL database,
the app on a generated database, logging a generated user in, and small statistics."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

PROJECT = Path(__file__).resolve().parent.parent
DEFAULT_TEST_PG_URL = "postgresql+psycopg://jointcall:jointcall@127.0.0.1:5432/jointcall_test"
BENCH_DB = "jointcall_bench"
SECRET_KEY = "benchmark-secret-key-that-is-long-enough-0123456789"


def workdir() -> Path:
    """A scratch folder for generated databases and files (JOINTCALL_BENCH_DIR, else a temporary one)."""
    base = os.environ.get("JOINTCALL_BENCH_DIR")
    path = Path(base) if base else Path(tempfile.gettempdir()) / "jointcall-bench"
    path.mkdir(parents=True, exist_ok=True)
    return path


def sqlite_url(name: str) -> str:
    return f"sqlite:///{workdir() / name}"


def clean_workdir() -> None:
    shutil.rmtree(workdir(), ignore_errors=True)


# ---------------------------------------------------------------------------------------------------------
# PostgreSQL: the benchmark's own database, never the tests'


def bench_pg_url() -> str:
    """The test URL's server and role (JOINTCALL_TEST_PG_URL or the default), with the database
    jointcall_bench instead of the tests' database."""
    base = os.environ.get("JOINTCALL_TEST_PG_URL", DEFAULT_TEST_PG_URL)
    parts = urlsplit(base)
    return urlunsplit(parts._replace(path=f"/{BENCH_DB}"))


def _can_connect(url: str) -> str | None:
    from sqlalchemy import text

    from workflow.db import make_engine

    try:
        engine = make_engine(url, connect_args={"connect_timeout": 5})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means "not available"
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


def ensure_bench_database() -> tuple[str | None, str]:
    """(URL of jointcall_bench, "") once it exists, else (None, why not). Creates only that database:
    as the postgres OS user with createdb (as scripts/test-services.sh does), else as the test role."""
    url = bench_pg_url()
    if _can_connect(url) is None:
        return url, ""
    parts = urlsplit(url)
    owner = parts.username or "jointcall"
    port = str(parts.port or 5432)
    why = ""
    if os.geteuid() == 0 and shutil.which("su"):
        done = subprocess.run(["su", "postgres", "-c", f"createdb -p {port} -O {owner} {BENCH_DB}"],
                              capture_output=True, text=True, timeout=60)
        why = done.stderr.strip()
    if _can_connect(url) is not None:
        from sqlalchemy import text

        from workflow.db import make_engine

        admin = urlunsplit(parts._replace(path="/postgres"))
        try:
            engine = make_engine(admin, isolation_level="AUTOCOMMIT")
            with engine.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{BENCH_DB}"'))
            engine.dispose()
        except Exception as exc:  # noqa: BLE001
            why = why or f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
    problem = _can_connect(url)
    return (url, "") if problem is None else (None, f"{why or problem}")


def server_version(url: str) -> str:
    from sqlalchemy import text

    from workflow.db import make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "postgresql":
                return "PostgreSQL " + conn.execute(text("SHOW server_version")).scalar().split()[0]
            return "SQLite " + conn.execute(text("SELECT sqlite_version()")).scalar()
    finally:
        engine.dispose()


# ---------------------------------------------------------------------------------------------------------
# The app on a generated database


def make_app(url: str, *, storage: Path | None = None):
    """The real app (create_app) on `url`; exceptions propagate so a failing page says why."""
    from webapp import create_app
    from webapp.process import tune_garbage_collector

    storage = storage or workdir() / "files"
    app = create_app({"database_url": url, "secret_key": SECRET_KEY, "storage_dir": str(storage),
                      "mail_inline": False, "base_url": "http://jointcall.bench"})
    app.config["PROPAGATE_EXCEPTIONS"] = True
    tune_garbage_collector()  # as webapp.wsgi does in a server process: the figures are a server's
    return app


def login_id(app, user_id: int) -> str:
    """What Flask-Login keeps in the session for this user (webapp.auth.session_id)."""
    from webapp.auth import session_id
    from workflow.models import User

    with app.app_context():
        factory = app.extensions["jointcall.sessions"]
        with factory() as session:
            user = session.get(User, user_id)
            return session_id(user)


def session_cookie(app, user_id: int | None) -> tuple[str, str] | None:
    """(cookie name, value) of a signed session logged in as `user_id`, for HTTP clients."""
    if user_id is None:
        return None
    serializer = app.session_interface.get_signing_serializer(app)
    value = serializer.dumps({"_user_id": login_id(app, user_id), "_fresh": True})
    return app.config.get("SESSION_COOKIE_NAME", "session"), value


def median(values) -> float:
    values = list(values)
    return statistics.median(values) if values else float("nan")
