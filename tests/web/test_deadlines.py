"""Deadline edges through the submit page (DOMAIN.md rule 1): one second before the deadline is on time, the
deadline instant itself is late, in the call's time zone, also on the days the clocks change."""

from __future__ import annotations

import copy
import datetime as dt
import html
import re

import pytest
from sqlalchemy import func, select

from tests import factories as f
from workflow.callconfig import CallDef
from workflow.calls import load_call
from workflow.models import Submission

UTC = dt.UTC
SECOND = dt.timedelta(seconds=1)


def words(response) -> str:
    text = response.get_data(as_text=True)
    text = re.sub(r"</?(strong|span|em|a|code|b|i)\b[^>]*>", "", text)
    text = re.sub(r"<[^>]+>", " ", text)
    return re.sub(r"\s+", " ", html.unescape(text)).strip()


def login(client, user):
    assert client.post("/login", data={"email": user.email,
                                        "password": "correct horse battery"}).status_code == 302


def call_with_pre_deadline(session, deadline: str, *, full_opens: str = "2030-11-20T09:00:00",
                           full_deadline: str = "2030-12-20T17:00:00"):
    data = copy.deepcopy(f.BASE_DEFINITION)
    data["code"] = "dst-call"
    data["stages"] = [
        {"kind": "pre", "opens": "2030-01-10T09:00:00", "deadline": deadline},
        {"kind": "full", "opens": full_opens, "deadline": full_deadline},
    ]
    return load_call(session, None, CallDef.model_validate(data)).call


CASES = {
    # name: (local deadline in Europe/Paris, the deadline instant in UTC, how the page shows it)
    "winter (CET, UTC+1)": ("2030-03-05T17:00:00", dt.datetime(2030, 3, 5, 16, 0, tzinfo=UTC),
                            "5 March 2030, 17:00 CET"),
    "day the clocks go forward (CEST, UTC+2)": ("2030-03-31T17:00:00", dt.datetime(2030, 3, 31, 15, 0, tzinfo=UTC),
                                                "31 March 2030, 17:00 CEST"),
    "day the clocks go back (CET again)": ("2030-10-27T17:00:00", dt.datetime(2030, 10, 27, 16, 0, tzinfo=UTC),
                                           "27 October 2030, 17:00 CET"),
}


@pytest.fixture(params=list(CASES), ids=list(CASES))
def case(request, session, frozen):
    local, instant, shown = CASES[request.param]
    frozen(dt.datetime(2030, 2, 1, 12, 0, tzinfo=UTC))
    call = call_with_pre_deadline(session, local)
    proposal = f.valid_proposal(session, call)
    session.commit()
    return call, proposal, instant, shown


def submitted(session) -> int:
    return session.scalar(select(func.count(Submission.id)))


def test_the_deadline_instant_is_what_the_call_says_in_its_zone(case):
    call, _proposal, instant, _shown = case
    assert call.stage("pre").deadline == instant


def test_one_second_before_the_deadline_is_accepted(client, session, frozen, case):
    call, proposal, instant, shown = case
    frozen(instant - SECOND)
    login(client, proposal.coordinator)
    page = words(client.get(f"/my/proposals/{proposal.id}/submit"))
    assert f"Deadline: {shown} (less than a minute left)." in page
    response = client.post(f"/my/proposals/{proposal.id}/submit",
                           data={"version": str(proposal.version), "confirm": "y"})
    assert response.status_code == 302
    sub = session.scalars(select(Submission)).one()
    assert sub.submitted_at == instant - SECOND


def test_at_the_deadline_the_submission_is_refused_and_nothing_is_stored(client, session, frozen, case):
    call, proposal, instant, shown = case
    frozen(instant)
    login(client, proposal.coordinator)
    page = words(client.get(f"/my/proposals/{proposal.id}/submit"))
    assert f"Deadline: {shown} (the deadline has passed)." in page
    assert "Not possible now: the deadline has passed." in page
    response = client.post(f"/my/proposals/{proposal.id}/submit",
                           data={"version": str(proposal.version), "confirm": "y"})
    assert response.status_code == 422
    assert f"The pre-proposal was not submitted: the deadline passed on {shown}." in words(response)
    assert submitted(session) == 0


def test_one_second_after_the_deadline_is_refused(client, session, frozen, case):
    _call, proposal, instant, _shown = case
    frozen(instant + SECOND)
    login(client, proposal.coordinator)
    response = client.post(f"/my/proposals/{proposal.id}/submit",
                           data={"version": str(proposal.version), "confirm": "y"})
    assert response.status_code == 422 and submitted(session) == 0


def test_reopening_is_possible_until_the_last_second_only(client, session, frozen, case):
    _call, proposal, instant, _shown = case
    frozen(instant - dt.timedelta(minutes=5))
    login(client, proposal.coordinator)
    client.post(f"/my/proposals/{proposal.id}/submit", data={"version": str(proposal.version), "confirm": "y"})
    session.expire_all()
    frozen(instant)
    client.post(f"/my/proposals/{proposal.id}/reopen", data={"version": str(proposal.version)})
    session.expire_all()
    assert proposal.state == "submitted"  # too late to reopen: the submission stands
    assert "The proposal was not reopened: the deadline passed" in words(client.get(f"/my/proposals/{proposal.id}"))
    frozen(instant - SECOND)
    client.post(f"/my/proposals/{proposal.id}/reopen", data={"version": str(proposal.version)})
    session.expire_all()
    assert proposal.state == "draft"
