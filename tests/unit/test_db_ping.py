"""Connections are checked before use only after resting in the pool (workflow.db.ping_when_idle)."""

from __future__ import annotations

from sqlalchemy import text

from workflow.db import make_engine, ping_when_idle


def _counting_pings(engine) -> list:
    pings = []
    real = engine.dialect.do_ping

    def do_ping(dbapi_conn):
        pings.append(dbapi_conn)
        return real(dbapi_conn)

    engine.dialect.do_ping = do_ping
    return pings


def test_a_connection_used_a_moment_ago_is_not_pinged(database_url):
    engine = make_engine(database_url, pool_size=1, max_overflow=0)
    ping_when_idle(engine, idle_seconds=3600)
    pings = _counting_pings(engine)
    try:
        for _ in range(5):
            with engine.connect() as conn:
                assert conn.execute(text("SELECT 1")).scalar() == 1
        assert pings == []
    finally:
        engine.dispose()


def test_a_connection_that_died_while_resting_is_replaced_before_use(database_url):
    engine = make_engine(database_url, pool_size=1, max_overflow=0)
    ping_when_idle(engine, idle_seconds=0)  # every rested connection counts as idle
    pings = _counting_pings(engine)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            dead = conn.connection.dbapi_connection
        dead.close()  # as a server restart would, behind the pool's back

        with engine.connect() as conn:
            assert conn.execute(text("SELECT 1")).scalar() == 1
            assert conn.connection.dbapi_connection is not dead
        assert pings and pings[0] is dead
    finally:
        engine.dispose()
