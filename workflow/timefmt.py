"""Showing money and instants the way people read them: euros with the currency, times in the call's zone."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from babel.numbers import format_currency

LOCALE = "en_GB"


# Babel formats a number or a date in ~0.1 ms, and a budget table shows the same few amounts and instants
# on every request: the results are kept (they depend only on the arguments).
@lru_cache(maxsize=16384)
def format_instant(instant: dt.datetime | None, zone: str, fmt: str = "d MMMM y, HH:mm zzz") -> str:
    if instant is None:
        return ""
    return format_datetime(instant.astimezone(ZoneInfo(zone)), fmt, tzinfo=ZoneInfo(zone), locale=LOCALE)


@lru_cache(maxsize=16384)
def format_eur(amount: int | None, currency: str = "EUR") -> str:
    if amount is None:
        return ""
    return format_currency(amount, currency, locale=LOCALE, format="¤#,##0", currency_digits=False)


def format_time_left(delta: dt.timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds <= 0:
        return "closed"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days} day{'s' if days != 1 else ''} {hours} h left"
    if hours:
        return f"{hours} h {minutes} min left"
    return f"{minutes} min left" if minutes else "less than a minute left"
