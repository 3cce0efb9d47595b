"""Jinja filters: money with its currency, instants in the call's time zone, state labels."""

from __future__ import annotations

from workflow.countries import country_name
from workflow.lifecycle import STATE_BY_NAME
from workflow.timefmt import format_eur, format_instant


def register_filters(app) -> None:
    app.jinja_env.filters["eur"] = format_eur
    app.jinja_env.filters["instant"] = lambda value, zone, fmt="d MMMM y, HH:mm zzz": format_instant(value, zone, fmt)
    app.jinja_env.filters["country"] = country_name
    app.jinja_env.filters["state_label"] = lambda s: STATE_BY_NAME[s].label if s in STATE_BY_NAME else s
