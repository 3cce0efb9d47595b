"""The deadline rush, short form (the long form is `python -m benchmarks.rush`): gunicorn with two workers
on its own PostgreSQL database, CSRF on; 20 coordinators log in, save a last edit and submit in the last
seconds before the deadline while 5 more try just after it. No 5xx, no lost submission, every receipt
matching the stored data, every late submission refused with the deadline message."""

from __future__ import annotations

import pytest

from benchmarks import rush
from tests.conftest import PG_URL, need_pg

pytestmark = pytest.mark.pg


def test_the_deadline_rush_loses_nothing_and_refuses_the_late(tmp_path):
    need_pg()
    url = rush.rush_url("jointcall_rush", base=PG_URL)
    report = rush.run(url, coordinators=20, late=5, window=8.0, clients=8, gunicorn_workers=2,
                      log_path=tmp_path / "gunicorn.log")
    print()
    print(report.summary())
    assert report.problems == [], report.summary() + "\n" + (tmp_path / "gunicorn.log").read_text()[-3000:]
    assert not [t for t in report.timings if t[2] >= 500]
    assert report.accepted + report.refused_late == 25
    # Everyone early was accepted; only a submit still in flight at the deadline may have been refused.
    assert 5 <= report.refused_late <= 5 + report.straddled
    assert len(report.timings) >= 25 * 5  # every coordinator went through login, save and submit
