"""Backing up and restoring a Jointcall database (`jointcall backup` / `jointcall restore`).

- SQLite: a consistent copy made with sqlite3's online backup API (safe while the server runs); restoring
  copies it back the same way.
- PostgreSQL: `pg_dump --format=custom` and `pg_restore`. The URL's host, port, user, password and database
  go to those programs through the environment (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE), never on
  the command line, where other users of the machine could read them.

A restore goes into an empty database; a database that already has tables is refused unless `force`.
After a restore, `jointcall audit verify` checks that the audit chain came back intact.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import inspect
from sqlalchemy.engine import make_url

from workflow.db import make_engine

SQLITE_MAGIC = b"SQLite format 3\x00"
PGDUMP_MAGIC = b"PGDMP"


class BackupError(Exception):
    """A backup or restore that cannot be done; the message says why, in plain words."""


@dataclass
class BackupResult:
    path: Path
    kind: str  # "sqlite" or "pg_dump"
    size: int

    def __str__(self) -> str:
        return f"wrote {self.path} ({self.kind}, {self.size} bytes)"


def _dialect(url: str) -> str:
    return make_url(url).get_backend_name()


def _sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up")
    return Path(database)


def pg_environment(url: str) -> dict:
    """The process environment plus the libpq variables for `url` (the password stays out of argv)."""
    u = make_url(url)
    env = dict(os.environ)
    for key, value in (("PGHOST", u.host), ("PGPORT", u.port), ("PGUSER", u.username),
                       ("PGPASSWORD", u.password), ("PGDATABASE", u.database)):
        if value is not None:
            env[key] = str(value)
        else:
            env.pop(key, None)
    return env


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackupError(f"{name} is not installed (on Debian: apt-get install postgresql-client)")
    return path


def _run(argv: list[str], url: str) -> None:
    done = subprocess.run(argv, env=pg_environment(url), capture_output=True, text=True)
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise BackupError(f"{Path(argv[0]).name} failed: {detail[-1] if detail else f'exit {done.returncode}'}")


def backup(url: str, out: str | os.PathLike) -> BackupResult:
    """Write a consistent backup of the database at `url` to `out` (replaced atomically when done)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    partial.unlink(missing_ok=True)
    dialect = _dialect(url)
    try:
        if dialect == "sqlite":
            source_path = _sqlite_path(url)
            if not source_path.exists():
                raise BackupError(f"there is no database file at {source_path}")
            source = sqlite3.connect(f"file:{source_path}?mode=ro", uri=True)
            dest = sqlite3.connect(partial)
            try:
                source.backup(dest)
            finally:
                dest.close()
                source.close()
            kind = "sqlite"
        elif dialect == "postgresql":
            _run([_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges",
                  f"--file={partial}"], url)
            kind = "pg_dump"
        else:
            raise BackupError(f"backups of {dialect} databases are not supported")
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)
    return BackupResult(out, kind, out.stat().st_size)


def table_names(url: str) -> list[str]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return inspect(conn).get_table_names()
    finally:
        engine.dispose()


def backup_kind(path: Path) -> str:
    with open(path, "rb") as fh:
        head = fh.read(len(SQLITE_MAGIC))
    if head.startswith(SQLITE_MAGIC):
        return "sqlite"
    if head.startswith(PGDUMP_MAGIC):
        return "pg_dump"
    raise BackupError(f"{path} is not a Jointcall backup (neither a SQLite file nor a pg_dump archive)")


def restore(url: str, source: str | os.PathLike, *, force: bool = False) -> str:
    """Restore the backup `source` into the database at `url`, which must be empty unless `force`."""
    source = Path(source)
    if not source.is_file():
        raise BackupError(f"there is no backup file at {source}")
    kind = backup_kind(source)
    dialect = _dialect(url)
    if (kind, dialect) not in (("sqlite", "sqlite"), ("pg_dump", "postgresql")):
        raise BackupError(f"a {kind} backup cannot be restored into a {dialect} database")
    if dialect == "sqlite":
        target = _sqlite_path(url)
        target.parent.mkdir(parents=True, exist_ok=True)
    existing = table_names(url) if dialect == "postgresql" or target.exists() else []
    if existing and not force:
        raise BackupError(f"the database is not empty (it has {len(existing)} tables); restore into a new, "
                          "empty database, or use --force to replace its content")
    if dialect == "sqlite":
        src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        dest = sqlite3.connect(target)
        try:
            src.backup(dest)
        finally:
            dest.close()
            src.close()
    else:
        argv = [_tool("pg_restore"), "--no-owner", "--no-privileges", "--single-transaction", "--exit-on-error"]
        if existing:
            argv += ["--clean", "--if-exists"]
        env_db = make_url(url).database
        argv += [f"--dbname={env_db}", str(source)]
        _run(argv, url)
    return f"restored {source} ({kind}) into {make_url(url).render_as_string(hide_password=True)}"
