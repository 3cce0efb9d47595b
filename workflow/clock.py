"""The one clock. Everything asks `utcnow()`; tests and the demo freeze it with `frozen(instant)`.

Deadlines are exclusive instants compared in UTC; time zones matter only for input and display.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterator
from zoneinfo import ZoneInfo

_source: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)  # noqa: E731


def utcnow() -> dt.datetime:
    return _source()


def set_clock(source: Callable[[], dt.datetime] | None) -> None:
    """Replace the clock (None restores the real one). Used by tests and the CLI's --now option."""
    global _source
    _source = source or (lambda: dt.datetime.now(dt.UTC))


@contextlib.contextmanager
def frozen(instant: dt.datetime) -> Iterator[None]:
    if instant.tzinfo is None:
        raise ValueError("freeze the clock with an aware datetime")
    previous = _source
    set_clock(lambda: instant)
    try:
        yield
    finally:
        set_clock(previous)


def local(instant: dt.datetime | None, zone: str) -> dt.datetime | None:
    return None if instant is None else instant.astimezone(ZoneInfo(zone))


def from_local(naive: dt.datetime, zone: str) -> dt.datetime:
    """A wall-clock time in `zone` to an aware UTC instant (fold=0 for ambiguous times)."""
    return naive.replace(tzinfo=ZoneInfo(zone)).astimezone(dt.UTC)
