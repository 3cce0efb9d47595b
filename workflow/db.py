"""Database plumbing: the declarative base, a UTC datetime type, engines and sessions.

Instants are stored as naive UTC on both SQLite and PostgreSQL and come back timezone-aware (UTC);
pages convert them to the call's time zone.
"""

from __future__ import annotations

import datetime as dt
import time

from sqlalchemy import JSON, DateTime, MetaData, create_engine, event, exc, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, sessionmaker
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator):
    """Aware datetimes in, aware UTC datetimes out; stored naive UTC so both databases agree."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; attach a time zone first")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dt.datetime: UTCDateTime, dict: JSON, list: JSON}


def make_engine(url: str, **kwargs) -> Engine:
    if url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {"timeout": 30})
    engine = create_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

    return engine


# A connection that was used this recently is not pinged before it is handed out again: under load that
# saves a round trip per request (a cheap page sends three or four statements), and a connection that
# rested longer, across which the server may have restarted, is still checked before use.
PING_AFTER_IDLE_SECONDS = 2.0


def ping_when_idle(engine: Engine, idle_seconds: float | None = None) -> None:
    """Pessimistic disconnect handling (like pool_pre_ping) for connections that rested in the pool for
    `idle_seconds` or more; a dead one is replaced (the pool retries the checkout with a new connection)."""

    @event.listens_for(engine, "checkin")
    def _rested_from(_dbapi_conn, record):
        record.info["checked_in"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_rested(dbapi_conn, record, _proxy):
        since = record.info.get("checked_in")
        limit = PING_AFTER_IDLE_SECONDS if idle_seconds is None else idle_seconds
        if since is None or time.monotonic() - since < limit:
            return  # new, or in use a moment ago
        try:
            engine.dialect.do_ping(dbapi_conn)
        except Exception as error:  # noqa: BLE001 - any failure means "this connection is gone"
            raise exc.DisconnectionError(f"connection lost while idle: {error}") from error


def make_session_factory(engine: Engine) -> sessionmaker:
    return sessionmaker(bind=engine, expire_on_commit=False, future=True)


def distinct_values(session, column, *where) -> list:
    """The distinct non-null values of `column` among the rows `where` selects, in order, found by walking
    an index that starts with the conditions' columns and then `column` (a "loose index scan": one probe
    per value found, where SELECT DISTINCT reads every row; neither PostgreSQL 15 nor SQLite skips on its
    own). The audit log's filter lists read tens of actions out of hundreds of thousands of events."""
    walk = select(func.min(column).label("value")).where(*where).cte("walk", recursive=True)
    step = select(func.min(column)).where(*where, column > walk.c.value).scalar_subquery()
    walk = walk.union_all(select(step).where(walk.c.value.is_not(None)))
    return list(session.scalars(select(walk.c.value).where(walk.c.value.is_not(None)).order_by(walk.c.value)))
