"""The secretariat's console, calls: creating a call from an uploaded definition or a short form (errors
name the key, nothing is created), the settings page (validated as a whole definition; invalid or
phase-forbidden changes refused with the key and nothing changed; every change audited), the definition
back as TOML, and opening a stage now."""

from __future__ import annotations

import datetime as dt
import html
import io
import re
import tomllib
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests import factories as f
from workflow.callconfig import parse_call_definition
from workflow.models import AuditEvent, Call, CallStage
from workflow.operations import close_stage, transition

PASSWORD = "correct horse battery"
EPPERMED = Path(__file__).resolve().parents[2] / "config" / "calls" / "eppermed-jtc2024.toml"


def text_of(response) -> str:
    return re.sub(r"\s+", " ", response.get_data(as_text=True))


def plain(response) -> str:
    """The page's text without its tags, spaces collapsed."""
    text = re.sub(r"<[^>]+>", " ", response.get_data(as_text=True))
    return re.sub(r"\s+", " ", html.unescape(text)).replace(" :", ":")


def login(client, user) -> None:
    client.post("/logout")
    response = client.post("/login", data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 302, response.get_data(as_text=True)


def events(session, action: str) -> list[AuditEvent]:
    session.expire_all()
    return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)))


def fresh(session, call) -> Call:
    """The call as the database has it now, its parsed settings included."""
    session.expire_all()
    call = session.get(Call, call.id)
    call.__dict__.pop("settings", None)
    return call


def count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


def upload(client, url: str, raw: bytes, name: str = "call.toml", field: str = "upload-definition", **extra):
    return client.post(url, data={field: (io.BytesIO(raw), name), **extra}, content_type="multipart/form-data")


@pytest.fixture
def admin(session):
    user = f.make_user(session, "Ada Admin", is_admin=True)
    session.commit()
    return user


@pytest.fixture
def world(session, frozen):
    """The test call before its pre-proposal stage opens, and its secretariat."""
    frozen(dt.datetime(2030, 1, 5, 12, 0, tzinfo=dt.UTC))
    call = f.make_call(session)
    sec = f.secretariat(session, call)
    session.commit()
    return call, sec


# ---------------------------------------------------------------------------------------------------------
# Creating a call


def test_admin_creates_a_call_by_uploading_the_shipped_definition(client, session, admin):
    login(client, admin)
    response = upload(client, "/secretariat/calls/new/upload", EPPERMED.read_bytes(), "eppermed-jtc2024.toml")
    assert response.status_code == 302
    call = session.scalar(select(Call).where(Call.code == "eppermed-jtc2024"))
    assert call is not None and len(call.funders) == 30 and [s.kind for s in call.stages] == ["pre", "full"]
    assert response.headers["Location"].endswith(f"/secretariat/calls/{call.id}/")
    assert [e.after["title"] for e in events(session, "call.created")] == [call.title]
    page = text_of(client.get(response.headers["Location"]))
    assert "was created from eppermed-jtc2024.toml" in page and "EP PerMed Joint Transnational Call 2024" in page

    again = upload(client, "/secretariat/calls/new/upload", EPPERMED.read_bytes(), "eppermed-jtc2024.toml")
    assert again.status_code == 422
    assert "code: a call with the code 'eppermed-jtc2024' exists already" in plain(again)
    assert count(session, Call) == 1


def test_an_invalid_upload_lists_each_problem_by_key_and_creates_nothing(client, session, admin):
    login(client, admin)
    raw = EPPERMED.read_text().replace('country = "DE"\ncommitted_budget = 4500000', 'country = "XX"\n'
                                       'committed_budget = 4500000').replace("max_partners = 6", "max_partnres = 6")
    response = upload(client, "/secretariat/calls/new/upload", raw.encode(), "broken.toml")
    assert response.status_code == 422
    page = plain(response)
    assert "broken.toml is not a valid call definition: 2 problems, listed below" in page
    assert "funders[1].country: 'XX' is not an ISO 3166 country code" in page
    assert "consortium.max_partnres: unknown key (check the spelling)" in page
    assert 'aria-describedby="upload-definition-error"' in text_of(response)
    assert count(session, Call) == 0 and not events(session, "call.created")

    not_toml = upload(client, "/secretariat/calls/new/upload", b"code = [unclosed", "x.toml")
    assert not_toml.status_code == 422 and "(file): is not valid TOML" in plain(not_toml)


def test_admin_creates_a_call_from_the_short_form(client, session, admin):
    login(client, admin)
    form = {"new-template": "eppermed-jtc2024", "new-code": "jtc2031", "new-title": "Joint Call 2031",
            "new-time_zone": "Europe/Berlin", "new-two_stage": "y",
            "new-pre_opens": "2031-01-10T09:00", "new-pre_deadline": "2031-03-05T17:00",
            "new-full_opens": "2031-05-20T09:00", "new-full_deadline": "2031-06-20T14:00"}
    response = client.post("/secretariat/calls/new/form", data=form)
    assert response.status_code == 302, text_of(response)
    call = session.scalar(select(Call).where(Call.code == "jtc2031"))
    assert call.title == "Joint Call 2031" and call.time_zone == "Europe/Berlin"
    # 17:00 in Berlin in March is 16:00 UTC; the rules and funders come from the template
    assert call.stage("pre").deadline == dt.datetime(2031, 3, 5, 16, 0, tzinfo=dt.UTC)
    assert call.settings.consortium.widening_bonus == 1 and len(call.settings.funders) == 30


def test_the_short_form_refuses_dates_in_the_wrong_order_next_to_the_field(client, session, admin):
    login(client, admin)
    form = {"new-template": "eppermed-jtc2024", "new-code": "jtc2031", "new-title": "Joint Call 2031",
            "new-time_zone": "Europe/Paris", "new-two_stage": "y",
            "new-pre_opens": "2031-03-10T09:00", "new-pre_deadline": "2031-03-05T17:00",
            "new-full_opens": "2031-05-20T09:00", "new-full_deadline": "2031-06-20T14:00"}
    response = client.post("/secretariat/calls/new/form", data=form)
    assert response.status_code == 422
    page = text_of(response)
    assert ('<div class="field-error" id="new-pre_deadline-error">stages[0].deadline: the deadline must be after '
            "the stage opens</div>") in page
    assert 'value="Joint Call 2031"' in page  # nothing typed is lost
    assert count(session, Call) == 0


def test_only_an_administrator_creates_calls(client, session, world):
    _call, sec = world
    login(client, sec)
    assert client.get("/secretariat/calls/new").status_code == 403
    assert upload(client, "/secretariat/calls/new/upload", EPPERMED.read_bytes()).status_code == 403
    assert count(session, Call) == 1


def test_the_console_lists_the_calls_a_person_runs(client, session, world, admin):
    call, sec = world
    other = f.make_call(session, code="other-call")
    session.commit()
    login(client, sec)
    page = text_of(client.get("/secretariat/"))
    assert f'id="call-{call.code}"' in page and 'id="call-other-call"' not in page
    assert "Secretariat console" in page  # the navigation link
    login(client, admin)
    page = text_of(client.get("/secretariat/"))
    assert f'id="call-{call.code}"' in page and f'id="call-{other.code}"' in page
    stranger = f.make_user(session, "Stranger")
    session.commit()
    login(client, stranger)
    assert client.get("/secretariat/").status_code == 403
    assert client.get(f"/secretariat/calls/{call.id}/settings").status_code == 403


# ---------------------------------------------------------------------------------------------------------
# Settings


def settings_form(call, **changes) -> dict:
    s = call.settings
    data = {"title": s.title, "description": s.description, "reason": ""}
    for i, st in enumerate(s.stages):
        data[f"stages-{i}-opens"] = st.opens.strftime("%Y-%m-%dT%H:%M")
        data[f"stages-{i}-deadline"] = st.deadline.strftime("%Y-%m-%dT%H:%M")
    for i, fd in enumerate(s.funders):
        data[f"funders-{i}-committed_budget"] = str(fd.committed_budget)
        data[f"funders-{i}-max_per_partner"] = "" if fd.max_per_partner is None else str(fd.max_per_partner)
        data[f"funders-{i}-max_per_project"] = "" if fd.max_per_project is None else str(fd.max_per_project)
    data.update(changes)
    return data


def test_secretariat_changes_title_deadline_and_budget_audited(client, session, world):
    call, sec = world
    login(client, sec)
    assert "Committed budget of DFG-T" in text_of(client.get(f"/secretariat/calls/{call.id}/settings"))
    response = client.post(f"/secretariat/calls/{call.id}/settings", data=settings_form(
        call, title="Test Call 2030 (extended)", **{"stages-0-deadline": "2030-03-12T17:00",
                                                    "funders-1-committed_budget": "1750000",
                                                    "reason": "steering committee, 3 Jan"}))
    assert response.status_code == 302, text_of(response)
    call = fresh(session, call)
    assert call.title == "Test Call 2030 (extended)"
    assert call.stage("pre").deadline == dt.datetime(2030, 3, 12, 16, 0, tzinfo=dt.UTC)
    assert next(cf for cf in call.funders if cf.funder.acronym == "ANR-T").committed_budget == 1_750_000
    [changed] = events(session, "call.settings_changed")
    assert changed.actor_id == sec.id and changed.reason == "steering committee, 3 Jan"
    assert changed.before == {"funders[1].committed_budget": 1_500_000, "stages[0].deadline": "2030-03-05T17:00:00",
                              "title": "Test Call 2030"}
    assert changed.after["stages[0].deadline"] == "2030-03-12T17:00:00"
    assert len(events(session, "call.updated")) == 1


@pytest.mark.parametrize("changes, key, message", [
    ({"stages-0-deadline": "2030-01-09T17:00"}, "stages[0].deadline", "the deadline must be after the stage opens"),
    ({"stages-1-opens": "2030-03-01T09:00"}, "stages[1].opens",
     "the full stage must open after the pre-proposal deadline"),
    ({"funders-0-max_per_partner": "2500000"}, "funders[0].max_per_partner", "cannot exceed committed_budget"),
    ({"funders-2-max_per_project": "900000"}, "funders[2].max_per_project", "cannot exceed committed_budget"),
])
def test_invalid_settings_are_refused_naming_the_key_and_nothing_changes(client, session, world, changes, key,
                                                                         message):
    call, sec = world
    before = call.definition_sha256
    login(client, sec)
    response = client.post(f"/secretariat/calls/{call.id}/settings", data=settings_form(call, **changes))
    assert response.status_code == 422
    page = text_of(response)
    assert f"<code>{key}</code>: {message}" in page  # the list above the form
    field_id = key.replace("[", "-").replace("].", "-").replace(".", "-")
    assert f'id="{field_id}-error">{key}: {message}' in page  # and next to the field
    assert f'aria-describedby="{field_id}-error"' in page
    for value in changes.values():
        assert f'value="{value}"' in page  # the user's input is kept
    session.expire_all()
    assert session.get(Call, call.id).definition_sha256 == before
    assert not events(session, "call.settings_changed") and not events(session, "call.updated")


def test_a_negative_budget_is_refused_by_the_form(client, session, world):
    call, sec = world
    login(client, sec)
    response = client.post(f"/secretariat/calls/{call.id}/settings",
                           data=settings_form(call, **{"funders-0-committed_budget": "-5"}))
    assert response.status_code == 422
    assert 'id="funders-0-committed_budget-error">cannot be negative' in text_of(response)
    assert not events(session, "call.settings_changed")


def test_the_phase_freezes_a_closed_stage_and_the_opening_of_an_open_one(client, session, world, frozen):
    call, sec = world
    frozen(f.PRE_CLOSED)
    close_stage(session, sec, call, "pre")
    session.commit()
    login(client, sec)
    response = client.post(f"/secretariat/calls/{call.id}/settings",
                           data=settings_form(call, **{"stages-0-deadline": "2030-03-20T17:00"}))
    assert response.status_code == 422
    assert "stages[0].deadline: submission of this stage closed on 10 March 2030" in text_of(response)
    frozen(f.FULL_OPEN)
    response = client.post(f"/secretariat/calls/{call.id}/settings",
                           data=settings_form(call, **{"stages-1-opens": "2030-05-25T09:00"}))
    assert response.status_code == 422
    assert "stages[1].opens: the stage opened on 20 May 2030, 09:00 CEST; its opening can no longer change" \
        in text_of(response)
    response = client.post(f"/secretariat/calls/{call.id}/settings",
                           data=settings_form(call, **{"stages-1-deadline": "2030-05-30T17:00"}))
    assert "stages[1].deadline: must be in the future" in text_of(response)
    # extending the open stage is fine
    response = client.post(f"/secretariat/calls/{call.id}/settings",
                           data=settings_form(call, **{"stages-1-deadline": "2030-06-27T17:00"}))
    assert response.status_code == 302
    assert len(events(session, "call.settings_changed")) == 1


def test_a_funder_with_applicants_cannot_be_removed_by_upload(client, session, world, frozen):
    call, sec = world
    frozen(f.PRE_OPEN)
    f.valid_proposal(session, call)
    session.commit()
    login(client, sec)
    toml = client.get(f"/secretariat/calls/{call.id}/definition.toml").get_data(as_text=True)
    without_anr = re.sub(r'\[\[funders\]\]\nacronym = "ANR-T"\n(?:[^\[\n].*\n)*', "", toml)
    assert "ANR-T" not in without_anr
    response = upload(client, f"/secretariat/calls/{call.id}/definition", without_anr.encode(), "new.toml",
                      field="replace-definition")
    assert response.status_code == 422
    assert "<code>funders</code>: ANR-T cannot be removed: 1 partner request money from it" in text_of(response)
    # rules change fine before the first deadline, by upload
    stricter = toml.replace("max_partners = 6", "max_partners = 5")
    response = upload(client, f"/secretariat/calls/{call.id}/definition", stricter.encode(), "new.toml",
                      field="replace-definition")
    assert response.status_code == 302
    assert fresh(session, call).settings.consortium.max_partners == 5
    assert events(session, "call.settings_changed")[-1].after == {"consortium.max_partners": 5}


def test_the_definition_exports_as_toml_that_loads_back_to_the_same_call(client, session, world):
    call, sec = world
    login(client, sec)
    response = client.get(f"/secretariat/calls/{call.id}/definition.toml")
    assert response.status_code == 200 and response.mimetype == "application/toml"
    assert 'filename="test-call.toml"' in response.headers["Content-Disposition"]
    text = response.get_data(as_text=True)
    assert 'deadline = 2030-03-05T17:00:00' in text
    assert parse_call_definition(tomllib.loads(text)) == call.settings


# ---------------------------------------------------------------------------------------------------------
# Opening a stage now


def test_opening_a_stage_now_says_what_happens_and_is_audited(client, session, world, frozen):
    call, sec = world
    frozen(dt.datetime(2030, 1, 6, 10, 30, 45, tzinfo=dt.UTC))
    login(client, sec)
    home = text_of(client.get(f"/secretariat/calls/{call.id}/"))
    assert "Open the pre-proposal stage now" in home
    assert "Close submission of the full proposal stage" not in home
    page = text_of(client.get(f"/secretariat/calls/{call.id}/stages/pre/open"))
    assert ("The pre-proposal stage opens now instead of 10 January 2030, 09:00 CET: applicants can create and "
            "submit proposals until 5 March 2030, 17:00 CET.") in page
    response = client.post(f"/secretariat/calls/{call.id}/stages/pre/open")
    assert response.status_code == 302
    session.expire_all()
    stage = session.scalar(select(CallStage).where(CallStage.call_id == call.id, CallStage.kind == "pre"))
    assert stage.opens_at == dt.datetime(2030, 1, 6, 10, 30, tzinfo=dt.UTC)
    [opened] = events(session, "stage.opened")
    assert opened.after == {"stage": "pre", "opens_at": "2030-01-06T10:30:00+00:00"}
    assert "is open since 6 January 2030, 11:30 CET" in text_of(client.get(response.headers["Location"]))
    again = client.post(f"/secretariat/calls/{call.id}/stages/pre/open")
    assert again.status_code == 422 and "the pre-proposal stage is open already" in text_of(again)
    assert len(events(session, "stage.opened")) == 1


def test_a_proposal_can_be_submitted_once_the_stage_is_opened_early(client, session, world, frozen):
    call, sec = world
    proposal = f.valid_proposal(session, call)
    session.commit()
    login(client, sec)
    client.post(f"/secretariat/calls/{call.id}/stages/pre/open")
    session.expire_all()
    transition(session, proposal.coordinator, proposal.id, "submit")
    assert proposal.state == "submitted"


def test_the_review_deadline_is_set_on_the_settings_page_even_after_submission_closed(client, session, world, frozen):
    call, sec = world
    frozen(f.PRE_CLOSED)
    close_stage(session, sec, call, "pre")
    session.commit()
    login(client, sec)
    url = f"/secretariat/calls/{call.id}/settings"
    too_early = client.post(url, data=settings_form(call, **{"stages-0-review_deadline": "2030-03-01T17:00"}))
    assert too_early.status_code == 422
    assert "the reviews are due after the submission deadline of the stage" in text_of(too_early)
    assert 'id="stages-0-review_deadline-error"' in too_early.get_data(as_text=True)
    saved = client.post(url, data=settings_form(call, **{"stages-0-review_deadline": "2030-04-30T17:00",
                                                         "reason": "panel date fixed"}))
    assert saved.status_code == 302, text_of(saved)
    session.expire_all()
    call.__dict__.pop("settings", None)  # the parsed definition is cached on the object
    assert call.settings.stage("pre").review_deadline == dt.datetime(2030, 4, 30, 17, 0)
    assert 'value="2030-04-30T17:00"' in client.get(url).get_data(as_text=True)
    assert events(session, "call.settings_changed")
