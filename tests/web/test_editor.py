"""The consortium editor through the browser's interface (Flask test client): the dashboard, creating a
proposal, its texts with the call's limits, partners, the rules' violations, co-applicants, and who may
see and change what."""

from __future__ import annotations

import html
import re

import pytest
from sqlalchemy import select

from tests import factories as f
from tests.conftest import body_of
from workflow.models import AuditEvent, OutboxMessage, Partner, Proposal, ProposalInvitation, ProposalMember
from workflow.operations import transition
from workflow.proposals import PartnerData, add_partner, create_proposal

PASSWORD = "correct horse battery"
MIN_COUNTRIES = "partners from at least 3 participating countries are needed; you have 2"


def text_of(response) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.get_data(as_text=True))))


def raw(response) -> str:
    return response.get_data(as_text=True)


def login(client, user) -> None:
    response = client.post("/login", data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 302, raw(response)


def error_of(response, field: str) -> str:
    match = re.search(rf'id="{field}-error">([^<]*)<', raw(response))
    assert match, f"no error shown next to {field}"
    return html.unescape(match.group(1))


def value_of(response, field: str) -> str:
    page = raw(response)
    match = re.search(rf'<textarea[^>]*\bid="{field}"[^>]*>(.*?)</textarea>', page, re.S)
    if match:
        return html.unescape(match.group(1)).lstrip("\r\n")
    tag = re.search(rf'<input[^>]*\bid="{field}"[^>]*>', page)
    assert tag, f"no field {field}"
    value = re.search(r'\bvalue="([^"]*)"', tag.group(0))
    return html.unescape(value.group(1)) if value else ""


def selected_of(response, field: str) -> str:
    block = re.search(rf'<select[^>]*\bid="{field}"[^>]*>(.*?)</select>', raw(response), re.S)
    assert block, f"no select {field}"
    for option in re.findall(r"<option[^>]*>", block.group(1)):
        if re.search(r"\bselected\b", option):
            return re.search(r'value="([^"]*)"', option).group(1)
    return ""


@pytest.fixture
def world(session, frozen):
    frozen(f.PRE_OPEN)
    call = f.make_call(session)
    cora = f.make_user(session, "Cora Coordinator", email="cora@example.org", organisation="Charité Berlin",
                       country="DE")
    session.commit()
    return call, cora


def funder_id(session, acronym: str) -> int:
    return f.funder(session, acronym).id


def partner_form(session, **overrides) -> dict:
    data = {
        "organisation": "Institut Curie", "partner_type": "academia", "country": "FR", "region": "",
        "funder": str(funder_id(session, "ANR-T")), "pi_name": "Pia Partner", "pi_email": "pia@example.org",
        "budget_personnel": "200000", "budget_consumables": "30 000", "budget_equipment": "",
        "budget_travel": "€5,000", "budget_subcontracting": "", "budget_other": "",
    }
    data.update(overrides)
    return data


def draft(session, call, coordinator, *countries: str) -> Proposal:
    """A draft with one funded partner per given country (DE, FR, ES, IT, CA have funders)."""
    acronyms = {"DE": "DFG-T", "FR": "ANR-T", "ES": "ISCIII-T", "IT": "MOH-T", "CA": "CIHR-T"}
    proposal = create_proposal(session, coordinator, call, acronym="PRECISE", title="Precision oncology")
    for i, country in enumerate(countries, start=1):
        add_partner(session, coordinator, proposal, PartnerData(
            organisation=f"Org {i} {country}", country=country, pi_name=f"PI {i}",
            pi_email=f"pi{i}.{country.lower()}@example.org", funder_id=funder_id(session, acronyms[country]),
            budget={"personnel": 100_000},
        ))
    session.commit()
    return proposal


# ---------------------------------------------------------------------------------------------------------
# Dashboard and creating a proposal


def test_dashboard_lists_open_calls_and_creating_a_proposal_makes_the_user_its_coordinator(client, session, world):
    call, cora = world
    login(client, cora)
    page = client.get("/my/")
    assert page.status_code == 200
    assert "You have no proposals yet" in text_of(page)
    assert "Test Call 2030" in text_of(page)
    assert "Pre-proposal stage deadline: 5 March 2030, 17:00 CET (32 days 4 h left)" in text_of(page)
    assert f'href="/my/calls/{call.code}/proposals/new"' in raw(page)

    form = client.get(f"/my/calls/{call.code}/proposals/new")
    assert form.status_code == 200 and "Start a proposal" in text_of(form)
    created = client.post(f"/my/calls/{call.code}/proposals/new",
                          data={"acronym": "  PRECISE ", "title": "Precision oncology"})
    assert created.status_code == 302
    proposal = session.scalar(select(Proposal))
    assert created.headers["Location"].endswith(f"/my/proposals/{proposal.id}")
    assert (proposal.acronym, proposal.coordinator_id, proposal.state) == ("PRECISE", cora.id, "draft")

    overview = client.get(created.headers["Location"])
    assert "Proposal PRECISE created (TEST-CALL-0001)" in text_of(overview)
    assert "Add partner 1 (your organisation)" in text_of(overview)

    mine = text_of(client.get("/my/"))
    assert "PRECISE" in mine and "TEST-CALL-0001" in mine and "Coordinator" in mine and "Draft" in mine
    assert "Pre-proposal stage: 5 March 2030, 17:00 CET" in mine and "32 days 4 h left" in mine


def test_an_unconfirmed_user_is_told_why_they_cannot_start_a_proposal(client, session, world):
    call, _ = world
    from workflow.accounts import create_user

    newbie = create_user(session, None, email="new@example.org", name="New Person", password=PASSWORD)
    session.commit()
    login(client, newbie)
    assert "You cannot start a proposal yet: confirm your e-mail address first" in text_of(client.get("/my/"))
    refused = client.post(f"/my/calls/{call.code}/proposals/new", data={"acronym": "X"})
    assert refused.status_code == 403
    assert "confirm your e-mail address first" in text_of(refused)
    assert session.scalar(select(Proposal)) is None


def test_the_dashboard_needs_a_login(client, world):
    response = client.get("/my/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_a_proposal_cannot_be_started_after_the_deadline(client, session, world, frozen):
    call, cora = world
    frozen(f.PRE_CLOSED)
    login(client, cora)
    assert "No call is open for new proposals right now." in text_of(client.get("/my/"))
    page = client.get(f"/my/calls/{call.code}/proposals/new")
    assert ("A new proposal cannot be started: the deadline of the pre-proposal stage passed on "
            "5 March 2030, 17:00 CET.") in text_of(page)
    refused = client.post(f"/my/calls/{call.code}/proposals/new", data={"acronym": "LATE"})
    assert refused.status_code == 422
    assert "the deadline of the pre-proposal stage passed on 5 March 2030, 17:00 CET" in text_of(refused)
    assert value_of(refused, "acronym") == "LATE"
    assert session.scalar(select(Proposal)) is None


def test_creating_without_an_acronym_or_with_a_long_one_is_refused_next_to_the_field(client, session, world):
    call, cora = world
    login(client, cora)
    empty = client.post(f"/my/calls/{call.code}/proposals/new", data={"acronym": " ", "title": "Kept title"})
    assert empty.status_code == 422
    assert error_of(empty, "acronym") == "give the proposal an acronym"
    assert value_of(empty, "title") == "Kept title"
    long = client.post(f"/my/calls/{call.code}/proposals/new", data={"acronym": "A" * 41})
    assert long.status_code == 422
    assert error_of(long, "acronym") == "the acronym can have at most 40 characters"
    assert value_of(long, "acronym") == "A" * 41
    assert session.scalar(select(Proposal)) is None


# ---------------------------------------------------------------------------------------------------------
# Texts


def test_texts_are_saved_and_show_n_of_m_characters(client, session, world):
    call, cora = world
    proposal = draft(session, call, cora)
    login(client, cora)
    page = client.get(f"/my/proposals/{proposal.id}/edit")
    assert page.status_code == 200
    assert "18 of 300 characters" in text_of(page)  # the title, at the pre stage's limit of 300
    assert "0 of 4000 characters" in text_of(page)  # the abstract
    assert 'data-maxchars="4000"' in raw(page) and "/static/js/editor.js" in raw(page)
    saved = client.post(f"/my/proposals/{proposal.id}/edit", data={
        "version": value_of(page, "version"), "acronym": "PRECISE", "title": "Precision oncology for all",
        "abstract": "Line one.\r\nLine two.", "keywords": "oncology; biomarkers", "topic": "Module A",
        "duration_months": "36"})
    assert saved.status_code == 302
    session.refresh(proposal)
    assert proposal.abstract == "Line one.\nLine two."  # one line break is one character
    assert (proposal.title, proposal.keywords, proposal.topic, proposal.duration_months) == (
        "Precision oncology for all", "oncology; biomarkers", "Module A", 36)
    again = client.get(saved.headers["Location"])
    assert "Draft saved." in text_of(again)
    assert "19 of 4000 characters" in text_of(again)
    assert session.scalar(select(AuditEvent).where(AuditEvent.action == "proposal.edited")) is not None


@pytest.mark.parametrize("field,limit", [("title", 300), ("abstract", 4000), ("acronym", 40), ("keywords", 500),
                                         ("topic", 200)])
def test_a_text_at_the_limit_is_saved_and_one_character_more_is_refused_with_the_text_kept(
        client, session, world, field, limit):
    call, cora = world
    proposal = draft(session, call, cora)
    login(client, cora)
    base = {"acronym": "PRECISE", "title": "T", "abstract": "", "keywords": "", "topic": "", "duration_months": ""}
    at_limit = "é" * limit  # characters, not bytes
    ok = client.post(f"/my/proposals/{proposal.id}/edit", data={**base, field: at_limit})
    assert ok.status_code == 302
    session.refresh(proposal)
    assert getattr(proposal, field) == at_limit

    other = "topic" if field == "keywords" else "keywords"
    over = "x" * (limit + 1)
    refused = client.post(f"/my/proposals/{proposal.id}/edit", data={**base, field: over, other: "kept"})
    assert refused.status_code == 422
    assert error_of(refused, field) == f"the {field} has {limit + 1} characters; at most {limit} are allowed"
    assert f"{limit + 1} of {limit} characters (1 too many)" in text_of(refused)
    assert value_of(refused, field) == over
    assert value_of(refused, other) == "kept"
    assert 'aria-invalid="true"' in raw(refused)
    assert f'aria-describedby="{field}' in raw(refused) and f'id="{field}-error"' in raw(refused)
    session.expire_all()
    assert getattr(session.get(Proposal, proposal.id), field) == at_limit  # nothing saved
    assert getattr(session.get(Proposal, proposal.id), other) == ""


def test_the_full_stage_limits_apply_to_a_full_proposal(client, session, frozen):
    frozen(f.PRE_OPEN)
    from workflow.callconfig import CallDef

    data = f.definition().model_dump(mode="json")
    data["stages"][0]["abstract_max_chars"] = 100
    data["stages"][1]["abstract_max_chars"] = 200
    from workflow.calls import load_call

    call = load_call(session, None, CallDef.model_validate(data)).call
    cora = f.make_user(session, "Cora")
    proposal = draft(session, call, cora)
    login(client, cora)
    assert "0 of 100 characters" in text_of(client.get(f"/my/proposals/{proposal.id}/edit"))
    proposal.state = "full_draft"  # as after start_full
    session.commit()
    assert "0 of 200 characters" in text_of(client.get(f"/my/proposals/{proposal.id}/edit"))


def test_bad_duration_and_every_problem_at_once_with_all_input_kept(client, session, world):
    call, cora = world
    proposal = draft(session, call, cora)
    login(client, cora)
    refused = client.post(f"/my/proposals/{proposal.id}/edit", data={
        "acronym": "", "title": "y" * 301, "abstract": "An abstract", "keywords": "k", "topic": "t",
        "duration_months": "three years"})
    assert refused.status_code == 422
    assert error_of(refused, "acronym") == "give the proposal an acronym"
    assert error_of(refused, "title") == "the title has 301 characters; at most 300 are allowed"
    assert "Not a valid integer" in error_of(refused, "duration_months")
    assert value_of(refused, "duration_months") == "three years"
    assert value_of(refused, "abstract") == "An abstract"
    assert "Nothing was saved" in text_of(refused)
    too_long = client.post(f"/my/proposals/{proposal.id}/edit", data={
        "acronym": "PRECISE", "title": "T", "duration_months": "121"})
    assert too_long.status_code == 422
    assert error_of(too_long, "duration_months") == "give the duration as whole months from 1 to 120"
    session.expire_all()
    assert session.get(Proposal, proposal.id).abstract == ""


def test_a_save_over_someone_elses_newer_save_is_refused_with_the_text_kept(client, session, world):
    call, cora = world
    proposal = draft(session, call, cora)
    login(client, cora)
    seen = value_of(client.get(f"/my/proposals/{proposal.id}/edit"), "version")
    proposal.topic = "Changed by a co-applicant"
    session.commit()
    refused = client.post(f"/my/proposals/{proposal.id}/edit", data={
        "version": seen, "acronym": "PRECISE", "title": "Mine", "topic": "My topic"})
    assert refused.status_code == 409
    assert "changed by someone else meanwhile" in text_of(refused)
    assert value_of(refused, "title") == "Mine"
    session.expire_all()
    assert session.get(Proposal, proposal.id).topic == "Changed by a co-applicant"
    # Having been told, the person saves again and it goes through.
    resend = client.post(f"/my/proposals/{proposal.id}/edit", data={
        "version": value_of(refused, "version"), "acronym": "PRECISE", "title": "Mine", "topic": "My topic"})
    assert resend.status_code == 302


# ---------------------------------------------------------------------------------------------------------
# Partners


def test_partner_1_starts_from_the_coordinators_account_and_budget_adds_up(client, session, world):
    call, cora = world
    proposal = draft(session, call, cora)
    login(client, cora)
    form = client.get(f"/my/proposals/{proposal.id}/partners/new")
    assert form.status_code == 200
    assert "Add partner 1: your own organisation (coordinator)" in text_of(form)
    assert value_of(form, "organisation") == "Charité Berlin"
    assert selected_of(form, "country") == "DE"
    assert value_of(form, "pi_email") == "cora@example.org"
    # Without JavaScript every funder of the call is offered, grouped by country, plus own funding.
    assert '<optgroup label="Germany" data-country="DE">' in raw(form)
    assert '<optgroup label="Canada" data-country="CA">' in raw(form)
    assert '<option value="own"' in raw(form)

    saved = client.post(f"/my/proposals/{proposal.id}/partners/new", data=partner_form(
        session, organisation="Charité Berlin", country="DE", funder=str(funder_id(session, "DFG-T")),
        pi_name="Cora Coordinator", pi_email="cora@example.org"))
    assert saved.status_code == 302 and saved.headers["Location"].endswith("#partners")
    partner = session.scalar(select(Partner))
    assert (partner.position, partner.organisation, partner.requested_amount) == (1, "Charité Berlin", 235_000)
    assert partner.budget == {"personnel": 200_000, "consumables": 30_000, "travel": 5_000}
    overview = text_of(client.get(saved.headers["Location"]))
    assert "Partner 1 (Charité Berlin) added." in overview
    assert "€235,000" in overview and "DFG-T" in overview

    edit = client.get(f"/my/proposals/{proposal.id}/partners/{partner.id}/edit")
    assert value_of(edit, "budget_consumables") == "30000"
    assert "Total: €235,000" in text_of(edit)
    assert selected_of(edit, "funder") == str(funder_id(session, "DFG-T"))


def test_a_partner_saved_by_someone_else_meanwhile_is_not_overwritten_and_what_was_typed_is_kept(
        client, session, world):
    call, cora = world
    proposal = draft(session, call, cora, "DE", "FR")
    partner = next(p for p in proposal.partners if p.country == "FR")
    login(client, cora)
    page = f"/my/proposals/{proposal.id}/partners/{partner.id}/edit"
    seen = value_of(client.get(page), "version")
    # A co-applicant saves the same partner first (another browser).
    partner.pi_name = "Changed By Co-applicant"
    session.commit()
    refused = client.post(page, data=partner_form(session, version=seen, organisation="Org 2 FR", pi_name="Mine"))
    assert refused.status_code == 409
    assert "Someone else saved this partner" in text_of(refused)
    assert "reload the page" not in text_of(refused)  # reloading would lose what was typed
    assert value_of(refused, "pi_name") == "Mine"
    session.expire_all()
    assert session.get(Partner, partner.id).pi_name == "Changed By Co-applicant"
    # Told so, the person saves again over the newer version, and it goes through.
    again = client.post(page, data=partner_form(session, version=value_of(refused, "version"),
                                                organisation="Org 2 FR", pi_name="Mine"))
    assert again.status_code == 302
    session.expire_all()
    assert session.get(Partner, partner.id).pi_name == "Mine"


@pytest.mark.parametrize("field,value,message", [
    ("organisation", "", "give the partner's organisation"),
    ("country", "", "choose the partner's country"),
    ("country", "XX", "choose the partner's country"),
    ("partner_type", "wizard", "choose the type of organisation"),
    ("pi_name", "", "give the name of the partner's principal investigator (PI)"),
    ("pi_email", "", "give the PI's e-mail address"),
    ("pi_email", "not-an-address", "this is not an e-mail address"),
    ("funder", "99999", "choose one of the call's funders, or Own funding"),
    ("budget_personnel", "-5", "an amount cannot be negative"),
    ("budget_travel", "12.50", "enter whole euros in digits, without cents, e.g. 25000"),
    ("budget_other", "lots", "enter whole euros in digits, without cents, e.g. 25000"),
])
def test_each_partner_field_is_checked_next_to_it_with_the_input_kept(client, session, world, field, value, message):
    call, cora = world
    proposal = draft(session, call, cora, "DE")
    login(client, cora)
    data = partner_form(session, **{field: value})
    refused = client.post(f"/my/proposals/{proposal.id}/partners/new", data=data)
    assert refused.status_code == 422
    assert error_of(refused, field) == message
    assert "Nothing was saved" in text_of(refused)
    # What was typed is all still there.
    kept = "organisation" if field != "organisation" else "pi_name"
    assert value_of(refused, kept) == data[kept]
    if field.startswith("budget_") or field in ("organisation", "pi_name", "pi_email"):
        assert value_of(refused, field) == value
    assert value_of(refused, "budget_consumables") == "30 000"
    session.expire_all()
    assert len(session.get(Proposal, proposal.id).partners) == 1


def test_a_funder_from_another_country_is_refused_with_the_reason(client, session, world):
    call, cora = world
    proposal = draft(session, call, cora, "DE")
    login(client, cora)
    refused = client.post(f"/my/proposals/{proposal.id}/partners/new", data=partner_form(
        session, country="FR", funder=str(funder_id(session, "DFG-T"))))
    assert refused.status_code == 422
    assert error_of(refused, "funder") == "DFG-T funds partners in Germany only; choose ANR-T, or Own funding"
    assert selected_of(refused, "funder") == str(funder_id(session, "DFG-T"))
    assert selected_of(refused, "country") == "FR"
    nowhere = client.post(f"/my/proposals/{proposal.id}/partners/new", data=partner_form(
        session, country="US", funder=str(funder_id(session, "ANR-T"))))
    assert error_of(nowhere, "funder") == ("ANR-T funds partners in France only; no funder of this call funds "
                                           "partners in United States, so choose Own funding")
    own = client.post(f"/my/proposals/{proposal.id}/partners/new", data=partner_form(
        session, country="US", funder="own", organisation="Mayo Clinic"))
    assert own.status_code == 302
    us = session.scalar(select(Partner).where(Partner.organisation == "Mayo Clinic"))
    assert (us.own_funded, us.funder_id, us.requested_amount) == (True, None, 0)


def test_a_regional_funder_needs_its_region(client, session, frozen):
    frozen(f.PRE_OPEN)
    from workflow.callconfig import CallDef
    from workflow.calls import load_call

    data = f.definition().model_dump(mode="json")
    data["funders"].append({"acronym": "SMWK-T", "name": "Saxon Test Funder", "country": "DE",
                            "region": "Saxony", "committed_budget": 100_000})
    call = load_call(session, None, CallDef.model_validate(data)).call
    cora = f.make_user(session, "Cora")
    proposal = draft(session, call, cora, "DE")
    login(client, cora)
    form = partner_form(session, country="DE", funder=str(funder_id(session, "SMWK-T")), region="Bavaria")
    refused = client.post(f"/my/proposals/{proposal.id}/partners/new", data=form)
    assert refused.status_code == 422
    assert error_of(refused, "region") == ("SMWK-T funds partners in Saxony only; enter Saxony as the region, "
                                           "or choose another funder")
    assert "(Saxony only)" in text_of(refused)
    ok = client.post(f"/my/proposals/{proposal.id}/partners/new", data={**form, "region": "saxony"})
    assert ok.status_code == 302


def test_partners_are_edited_moved_and_removed_with_positions_renumbered(client, session, world):
    call, cora = world
    proposal = draft(session, call, cora, "DE", "FR", "ES", "IT")
    ids = [p.id for p in proposal.partners]
    login(client, cora)
    base = f"/my/proposals/{proposal.id}/partners"

    edited = client.post(f"{base}/{ids[1]}/edit", data=partner_form(session, organisation="Institut Pasteur"))
    assert edited.status_code == 302
    assert "Partner 2 (Institut Pasteur) saved." in text_of(client.get(edited.headers["Location"]))

    def order():
        session.expire_all()
        return [(p.position, p.id) for p in session.get(Proposal, proposal.id).partners]

    assert client.post(f"{base}/{ids[3]}/move", data={"direction": "up"}).status_code == 303
    assert order() == [(1, ids[0]), (2, ids[1]), (3, ids[3]), (4, ids[2])]
    moved = client.post(f"{base}/{ids[1]}/move", data={"direction": "down"}, follow_redirects=True)
    assert "Institut Pasteur is now partner 3." in text_of(moved)
    assert order() == [(1, ids[0]), (2, ids[3]), (3, ids[1]), (4, ids[2])]

    # Position 1 stays the coordinator's: it does not move, nobody moves above it, it cannot be removed.
    assert "Move partner 1 up" not in text_of(moved) and "Move partner 2 up" not in text_of(moved)
    assert "Remove partner 1" not in text_of(moved) and "Remove partner 2" in text_of(moved)
    for url, data, message in (
        (f"{base}/{ids[0]}/move", {"direction": "down"}, "partner 1 is the coordinator's own organisation and stays first"),
        (f"{base}/{ids[3]}/move", {"direction": "up"}, "position 1 is the coordinator's; no partner can move above it"),
        (f"{base}/{ids[2]}/move", {"direction": "down"}, "this partner is the last one already"),
        (f"{base}/{ids[0]}/remove", {}, "partner 1 is the coordinator's own organisation and cannot be removed"),
    ):
        refused = client.post(url, data=data, follow_redirects=True)
        assert message in text_of(refused)
    assert order() == [(1, ids[0]), (2, ids[3]), (3, ids[1]), (4, ids[2])]

    removed = client.post(f"{base}/{ids[3]}/remove", follow_redirects=True)
    assert "Partner 2 (Org 4 IT) removed; the partners after it moved up." in text_of(removed)
    assert order() == [(1, ids[0]), (2, ids[1]), (3, ids[2])]
    actions = session.scalars(select(AuditEvent.action).where(AuditEvent.action.like("partner.%"))).all()
    assert actions.count("partner.moved") == 2 and "partner.removed" in actions
    assert client.post(f"{base}/999999/remove").status_code == 404


def test_overview_shows_texts_partners_and_totals_per_funder(client, session, world):
    call, cora = world
    proposal = f.valid_proposal(session, call, cora)
    session.commit()
    login(client, cora)
    page = client.get(f"/my/proposals/{proposal.id}")
    assert page.status_code == 200
    text = text_of(page)
    assert "Draft" in text and proposal.reference in text and "Test Call 2030" in text
    assert "Pre-proposal stage deadline 5 March 2030, 17:00 CET (32 days 4 h left)" in text
    assert "Precision oncology for all" in text and "We study things." in text and "36 months" in text
    assert "Charité Berlin" in text and "Hospital Clínic" in text
    assert "DFG-T €400,000" in text and "ANR-T €300,000" in text and "ISCIII-T €200,000" in text
    assert "Total requested €900,000" in text
    assert "No problems: the proposal meets every rule the editor checks." in text


# ---------------------------------------------------------------------------------------------------------
# The call's rules, live


def test_violations_appear_and_disappear_as_partners_are_added(client, session, world):
    call, cora = world
    proposal = draft(session, call, cora, "DE", "FR")
    login(client, cora)
    before = client.get(f"/my/proposals/{proposal.id}")
    assert "Blocks submission" in text_of(before)
    assert MIN_COUNTRIES in text_of(before)
    assert "at least 3 partners requesting funding are needed; you have 2" in text_of(before)
    assert "write the abstract" in text_of(before)
    assert "The call's consortium rules" in text_of(before)
    # The same checks on the editor's other pages.
    assert MIN_COUNTRIES in text_of(client.get(f"/my/proposals/{proposal.id}/edit"))
    assert MIN_COUNTRIES in text_of(client.get(f"/my/proposals/{proposal.id}/partners/new"))

    added = client.post(f"/my/proposals/{proposal.id}/partners/new", data=partner_form(
        session, organisation="Hospital Clínic", country="ES", funder=str(funder_id(session, "ISCIII-T")),
        pi_email="es@example.org"), follow_redirects=True)
    assert added.status_code == 200
    assert MIN_COUNTRIES not in text_of(added)
    assert "at least 3 partners requesting funding" not in text_of(added)
    assert "write the abstract" in text_of(added)  # still open


def test_warnings_are_apart_from_blocking_problems_and_messages_are_escaped(client, session, frozen):
    frozen(f.PRE_OPEN)
    from workflow.callconfig import CallDef
    from workflow.calls import load_call

    data = f.definition().model_dump(mode="json")
    data["funders"][1]["national_application_required"] = True  # ANR-T
    call = load_call(session, None, CallDef.model_validate(data)).call
    cora = f.make_user(session, "Cora")
    proposal = f.valid_proposal(session, call, cora)
    proposal.partners[1].organisation = "Curie <b>& Co</b>"
    session.commit()
    login(client, cora)
    page = client.get(f"/my/proposals/{proposal.id}")
    text = text_of(page)
    assert "Warnings (1)" in text and "Blocks submission" not in text and "Nothing blocks submission." in text
    assert ("partner 2 (Curie <b>& Co</b>): ANR-T also requires a parallel national application; "
            "see its national annex") in text
    assert "Curie &lt;b&gt;&amp; Co&lt;/b&gt;" in raw(page) and "<b>& Co" not in raw(page)


# ---------------------------------------------------------------------------------------------------------
# Co-applicants


def invitation_link(message) -> str:
    match = re.search(r"http://jointcall\.test(/my/invitations/[A-Za-z0-9_\-]+)", body_of(message))
    assert match, body_of(message)
    return match.group(1)


def test_a_co_applicant_invitation_end_to_end(app, session, world, mailbox):
    call, cora = world
    proposal = f.valid_proposal(session, call, cora)
    pia = f.make_user(session, "Pia Partner", email="pia@example.org")
    session.commit()
    coordinator, invitee = app.test_client(), app.test_client()
    login(coordinator, cora)

    members = coordinator.get(f"/my/proposals/{proposal.id}/members")
    assert members.status_code == 200 and "Nobody has joined yet." in text_of(members)
    sent = coordinator.post(f"/my/proposals/{proposal.id}/members",
                            data={"action": "invite", "email": "Pia@Example.org", "access": "edit"})
    assert sent.status_code == 302
    sent.close()  # a server closes every response; queued mail goes out then
    assert "Invitation sent to pia@example.org." in text_of(coordinator.get(sent.headers["Location"]))

    (message,) = mailbox.wait_for(1)
    assert message["To"] == "pia@example.org"
    assert "Invitation to join the proposal PRECISE" in message["Subject"]
    assert "Cora Coordinator" in body_of(message) and "view and edit" in body_of(message)
    link = invitation_link(message)
    token = link.rsplit("/", 1)[1]
    stored = session.scalar(select(ProposalInvitation))
    assert stored.token_sha256 != token and token not in str(stored.__dict__)  # only the hash is kept
    assert (stored.expires_at - stored.created_at).days == 14

    # Not logged in: the page says what it is and sends the person to log in, then back here.
    anonymous = invitee.get(link)
    assert anonymous.status_code == 200
    assert "Join PRECISE as a co-applicant" in text_of(anonymous)
    assert "/login?next=" in raw(anonymous) and "Log in to accept" in text_of(anonymous)
    assert "Create an account" in text_of(anonymous)
    back = invitee.post(f"/login?next={link}", data={"email": pia.email, "password": PASSWORD})
    assert back.headers["Location"] == link
    assert "Accept invitation" in text_of(invitee.get(link))
    accepted = invitee.post(link)
    assert accepted.status_code == 302 and accepted.headers["Location"].endswith(f"/my/proposals/{proposal.id}")
    assert "You joined PRECISE as a co-applicant (view and edit)." in text_of(invitee.get(accepted.headers["Location"]))

    # The link works once.
    again = invitee.get(link)
    assert again.status_code == 410
    assert "this invitation has been accepted already" in text_of(again).lower()
    assert invitee.post(link).status_code == 410

    # The member edits texts and partners, sees the proposal on their dashboard, but cannot manage members.
    edit = invitee.post(f"/my/proposals/{proposal.id}/edit", data={
        "acronym": "PRECISE", "title": "Edited by Pia", "abstract": "We study things.", "duration_months": "36"})
    assert edit.status_code == 302
    session.expire_all()
    assert session.get(Proposal, proposal.id).title == "Edited by Pia"
    partner = session.get(Proposal, proposal.id).partners[1]
    assert invitee.post(f"/my/proposals/{proposal.id}/partners/{partner.id}/edit", data=partner_form(
        session, organisation="Institut Curie (Paris)")).status_code == 302
    assert "Co-applicant (view and edit)" in text_of(invitee.get("/my/"))
    refused = invitee.get(f"/my/proposals/{proposal.id}/members")
    assert refused.status_code == 403
    assert "only the coordinator can invite or remove co-applicants" in text_of(refused)

    # The coordinator removes her; she loses access.
    member = session.scalar(select(ProposalMember))
    assert "Pia Partner" in text_of(coordinator.get(f"/my/proposals/{proposal.id}/members"))
    removed = coordinator.post(f"/my/proposals/{proposal.id}/members",
                               data={"action": "remove", "id": str(member.id)}, follow_redirects=True)
    assert "Pia Partner is no longer a co-applicant of this proposal." in text_of(removed)
    assert invitee.get(f"/my/proposals/{proposal.id}").status_code == 403
    actions = set(session.scalars(select(AuditEvent.action)))
    assert {"proposal.invitation_sent", "proposal.member_added", "proposal.member_removed"} <= actions


def test_an_invited_person_without_an_account_registers_and_the_confirmation_link_leads_back(
        app, session, world, mailbox):
    call, cora = world
    proposal = f.valid_proposal(session, call, cora)
    session.commit()
    coordinator, invitee = app.test_client(), app.test_client()
    login(coordinator, cora)
    sent = coordinator.post(f"/my/proposals/{proposal.id}/members",
                            data={"action": "invite", "email": "nova@example.org", "access": "edit"})
    sent.close()
    link = invitation_link(mailbox.wait_for(1)[0])

    page = raw(invitee.get(link))
    register_url = html.unescape(re.search(r'href="(/register\?next=[^"]+)"[^>]*>Create an account', page).group(1))
    form = {"name": "Nova New", "email": "nova@example.org", "password": PASSWORD, "confirm": PASSWORD}
    registered = invitee.post(register_url, data=form)
    assert registered.status_code == 302 and registered.headers["Location"] == "/check-mail/registered"
    registered.close()
    confirmation = mailbox.wait_for(2)[1]
    confirm = re.search(r"http://jointcall\.test(/confirm/\S+)", body_of(confirmation)).group(1)
    assert "next=" in confirm

    opened = invitee.get(confirm)
    assert opened.status_code == 302 and opened.headers["Location"] == link
    assert "Accept invitation" in text_of(invitee.get(link))


def test_the_confirmation_link_never_leads_off_the_site(client, session, mailbox):
    form = {"name": "Eve Else", "email": "eve@example.org", "password": PASSWORD, "confirm": PASSWORD}
    client.post("/register?next=https://evil.example/phish", data=form).close()
    (message,) = mailbox.wait_for(1)
    confirm = re.search(r"http://jointcall\.test(/confirm/\S+)", body_of(message)).group(1)
    assert "next=" not in confirm and "evil" not in body_of(message)
    opened = client.get(confirm + "?next=//evil.example")
    assert opened.status_code == 302 and opened.headers["Location"] == "/"


def test_a_read_only_member_reads_but_gets_403_on_every_edit(app, session, world, mailbox):
    call, cora = world
    proposal = f.valid_proposal(session, call, cora)
    reader = f.make_user(session, "Rita Reader", email="rita@example.org")
    session.commit()
    coordinator, client = app.test_client(), app.test_client()
    login(coordinator, cora)
    coordinator.post(f"/my/proposals/{proposal.id}/members",
                     data={"action": "invite", "email": "rita@example.org", "access": "view"}).close()
    (message,) = mailbox.wait_for(1)
    assert "view it (read-only)" in body_of(message)
    login(client, reader)
    assert client.post(invitation_link(message)).status_code == 302

    overview = client.get(f"/my/proposals/{proposal.id}")
    assert overview.status_code == 200 and "Precision oncology for all" in text_of(overview)
    assert "Edit texts" not in text_of(overview)
    assert "You cannot edit this proposal now: the coordinator gave you read-only access." in text_of(overview)
    partner = proposal.partners[1]
    for method, url in (("get", f"/my/proposals/{proposal.id}/edit"),
                        ("post", f"/my/proposals/{proposal.id}/edit"),
                        ("get", f"/my/proposals/{proposal.id}/partners/new"),
                        ("post", f"/my/proposals/{proposal.id}/partners/{partner.id}/edit"),
                        ("post", f"/my/proposals/{proposal.id}/partners/{partner.id}/remove")):
        response = getattr(client, method)(url, data={"title": "hacked"})
        assert response.status_code == 403, url
        assert "the coordinator gave you read-only access" in text_of(response)
    session.expire_all()
    assert len(session.get(Proposal, proposal.id).partners) == 4


def test_a_withdrawn_invitation_link_stops_working_and_a_new_one_replaces_the_old(app, session, world, mailbox):
    call, cora = world
    proposal = f.valid_proposal(session, call, cora)
    pia = f.make_user(session, "Pia Partner", email="pia@example.org")
    session.commit()
    coordinator, client = app.test_client(), app.test_client()
    login(coordinator, cora)
    url = f"/my/proposals/{proposal.id}/members"
    coordinator.post(url, data={"action": "invite", "email": "pia@example.org", "access": "edit"}).close()
    coordinator.post(url, data={"action": "invite", "email": "pia@example.org", "access": "view"}).close()
    first, second = mailbox.wait_for(2)
    page = text_of(coordinator.get(url))
    assert page.count("Withdraw invitation to pia@example.org") == 1  # the second replaced the first
    assert "View only" in page

    login(client, pia)
    replaced = client.get(invitation_link(first))
    assert replaced.status_code == 410 and "withdrew this invitation" in text_of(replaced)

    pending = session.scalar(select(ProposalInvitation).where(ProposalInvitation.revoked_at.is_(None)))
    withdrawn = coordinator.post(url, data={"action": "revoke", "id": str(pending.id)}, follow_redirects=True)
    assert "The invitation to pia@example.org was withdrawn; its link no longer works." in text_of(withdrawn)
    assert client.post(invitation_link(second)).status_code == 410
    assert session.scalar(select(ProposalMember)) is None
    assert client.get("/my/invitations/not-a-real-token").status_code == 404


def test_invitation_input_is_checked_next_to_the_field(client, session, world):
    call, cora = world
    proposal = f.valid_proposal(session, call, cora)
    session.commit()
    login(client, cora)
    url = f"/my/proposals/{proposal.id}/members"
    bad = client.post(url, data={"action": "invite", "email": "nobody", "access": "edit"})
    assert bad.status_code == 422 and error_of(bad, "email") == "this is not an e-mail address"
    assert value_of(bad, "email") == "nobody"
    own = client.post(url, data={"action": "invite", "email": "cora@example.org", "access": "edit"})
    assert own.status_code == 422 and error_of(own, "email") == "this is the coordinator's own address"
    assert session.scalar(select(OutboxMessage)) is None


# ---------------------------------------------------------------------------------------------------------
# Who may do what


def test_an_outsider_gets_403_on_every_editor_route_and_sees_none_of_the_proposal(client, session, world):
    call, cora = world
    proposal = f.valid_proposal(session, call, cora, acronym="SECRETACR")
    proposal.title = "Confidential title"
    outsider = f.make_user(session, "Otto Outsider")
    session.commit()
    partner = proposal.partners[1]
    invitation_page = f"/my/proposals/{proposal.id}/members"
    login(client, outsider)
    base = f"/my/proposals/{proposal.id}"
    routes = [
        ("get", base), ("get", f"{base}/edit"), ("post", f"{base}/edit"),
        ("get", f"{base}/partners/new"), ("post", f"{base}/partners/new"),
        ("get", f"{base}/partners/{partner.id}/edit"), ("post", f"{base}/partners/{partner.id}/edit"),
        ("post", f"{base}/partners/{partner.id}/remove"), ("post", f"{base}/partners/{partner.id}/move"),
        ("get", invitation_page), ("post", invitation_page),
    ]
    secrets = ["SECRETACR", "Confidential title", "Charité", "Institut Curie", "@example.org", proposal.reference,
               "€"]
    for method, url in routes:
        response = getattr(client, method)(url, data={"direction": "up", "action": "invite", "email": "x@y.org"})
        assert response.status_code == 403, (method, url)
        body = raw(response)
        for secret in secrets:
            assert secret not in body, (url, secret)
        reason = text_of(response)
        assert ("you are not part of this proposal's consortium" in reason
                or "only the consortium can edit this proposal" in reason
                or "only the coordinator can invite or remove co-applicants" in reason), url
    session.expire_all()
    assert session.get(Proposal, proposal.id).partners[1].organisation == "Institut Curie"
    assert session.scalar(select(ProposalInvitation)) is None


def test_anonymous_visitors_are_sent_to_log_in(client, session, world):
    call, cora = world
    proposal = f.valid_proposal(session, call, cora)
    session.commit()
    for url in (f"/my/proposals/{proposal.id}", f"/my/proposals/{proposal.id}/edit",
                f"/my/calls/{call.code}/proposals/new"):
        response = client.get(url)
        assert response.status_code == 302 and "/login" in response.headers["Location"], url


def test_a_submitted_proposal_cannot_be_edited_and_the_page_says_why(client, session, world):
    call, cora = world
    proposal = f.valid_proposal(session, call, cora)
    transition(session, cora, proposal.id, "submit")
    session.commit()
    login(client, cora)
    reason = "a submitted proposal cannot be edited; reopen it first if the deadline allows"
    overview = client.get(f"/my/proposals/{proposal.id}")
    assert overview.status_code == 200 and "Submitted" in text_of(overview)
    assert f"You cannot edit this proposal now: {reason}" in text_of(overview)
    partner = proposal.partners[1]
    for method, url in (("get", f"/my/proposals/{proposal.id}/edit"),
                        ("post", f"/my/proposals/{proposal.id}/edit"),
                        ("post", f"/my/proposals/{proposal.id}/partners/new"),
                        ("post", f"/my/proposals/{proposal.id}/partners/{partner.id}/edit"),
                        ("post", f"/my/proposals/{proposal.id}/partners/{partner.id}/move")):
        response = getattr(client, method)(url, data={"title": "Late change", "direction": "down"})
        assert response.status_code == 403, url
        assert reason in text_of(response)
    session.expire_all()
    assert session.get(Proposal, proposal.id).title == "Precision oncology for all"


def test_a_member_cannot_add_partner_1_before_the_coordinator(client, session, world):
    call, cora = world
    proposal = create_proposal(session, cora, call, acronym="EMPTY")
    pia = f.make_user(session, "Pia")
    proposal.members.append(ProposalMember(user=pia, can_edit=True))
    session.commit()
    login(client, pia)
    response = client.get(f"/my/proposals/{proposal.id}/partners/new", follow_redirects=True)
    assert "The coordinator adds partner 1, their own organisation, first." in text_of(response)
    refused = client.post(f"/my/proposals/{proposal.id}/partners/new", data=partner_form(session))
    assert refused.status_code == 302
    session.expire_all()
    assert session.get(Proposal, proposal.id).partners == []


def test_a_partner_save_that_loses_a_race_gets_the_409_page_not_an_error(client, session, world, session_factory,
                                                                          monkeypatch):
    """Another save lands after this one's version check passed and before its UPDATE: the UPDATE finds
    no row of the version shown, and the person is told as for any save over a newer one."""
    import webapp.applicant.editor as editor

    call, cora = world
    proposal = draft(session, call, cora, "DE", "FR")
    partner_id = next(p for p in proposal.partners if p.country == "FR").id
    login(client, cora)
    page = f"/my/proposals/{proposal.id}/partners/{partner_id}/edit"
    seen = value_of(client.get(page), "version")
    checked_then_saved_elsewhere = editor.update_partner

    def racing(*args, **kwargs):
        with session_factory() as other:
            other.get(Partner, partner_id).pi_name = "The Other Save"
            other.commit()
        return checked_then_saved_elsewhere(*args, **kwargs)

    monkeypatch.setattr(editor, "update_partner", racing)
    refused = client.post(page, data=partner_form(session, version=seen, organisation="Org 2 FR", pi_name="Mine"))
    assert refused.status_code == 409
    assert "Someone else saved this partner" in text_of(refused) and value_of(refused, "pi_name") == "Mine"
    session.expire_all()
    assert session.get(Partner, partner_id).pi_name == "The Other Save"
