"""Crafted query strings and form numbers on list pages: a page number in non-ASCII digits ("²" passes
str.isdigit), ids beyond any column, days at the ends of the calendar. Each page answers as if the value
were absent (page 1, no filter) instead of failing."""

from __future__ import annotations

import pytest

from tests.web.test_console_calls import login
from tests.web.test_console_mail_audit import setup
from workflow.paging import page_number, positive_int

SUPERSCRIPT_TWO = "%C2%B2"
HUGE = "9" * 30

URLS = [
    "/secretariat/calls/{id}/audit?until=9999-12-31",
    "/secretariat/calls/{id}/audit?since=0001-01-01",
    f"/secretariat/calls/{{id}}/audit?object_id={HUGE}",
    f"/secretariat/calls/{{id}}/audit?page={SUPERSCRIPT_TWO}",
    f"/secretariat/calls/{{id}}/proposals?page={SUPERSCRIPT_TWO}",
    f"/secretariat/calls/{{id}}/proposals?page={'9' * 5000}",
    f"/secretariat/calls/{{id}}/proposals?funder={HUGE}",
    f"/secretariat/calls/{{id}}/proposals.csv?funder={HUGE}",
    f"/secretariat/calls/{{id}}/people?page={SUPERSCRIPT_TWO}",
    f"/secretariat/calls/{{id}}/outbox?page={SUPERSCRIPT_TWO}",
    f"/secretariat/calls/{{id}}/eligibility/pre?page={SUPERSCRIPT_TWO}",
    f"/secretariat/calls/{{id}}/reviews/pool?page={SUPERSCRIPT_TWO}",
    f"/funding/calls/{{id}}/scenario?page={SUPERSCRIPT_TWO}",
    f"/secretariat/calls/{{id}}/mail/bulk?funder={HUGE}",
]


@pytest.mark.parametrize("url", URLS)
def test_a_crafted_number_or_day_in_the_address_shows_the_page_not_an_error(client, session, frozen, url):
    call, sec = setup(session, frozen)
    login(client, sec)
    response = client.get(url.format(id=call.id))
    assert response.status_code == 200, (url, response.status_code)


def test_only_plain_small_numbers_count():
    assert [positive_int(v) for v in ("7", " 12 ", "0", "-3", "²", "１２", "1e3", "", None, HUGE)] == \
        [7, 12, None, None, None, None, None, None, None, None]
    assert page_number("²") == 1 and page_number("3") == 3
