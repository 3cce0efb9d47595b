"""The secretariat's console in Chromium: an administrator sets up the EP PerMed 2024 call by uploading the
shipped definition, opens the pre-proposal stage early, invites a funder officer and a reviewer who accept
by their mailed links (creating their accounts), closes the stage after the deadline, and finds a
proposal by a partner's name in the proposal list."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from playwright.sync_api import Page, expect
from sqlalchemy import select

from tests import factories as f
from tests.browser.conftest import log_in, log_out
from tests.conftest import body_of
from workflow.models import Call, FundingOrganisation, Proposal
from workflow.operations import transition
from workflow.proposals import PartnerData, add_partner, create_proposal, update_proposal

SHIPPED = Path(__file__).resolve().parents[2] / "config" / "calls" / "eppermed-jtc2024.toml"
LINK = re.compile(r"http://jointcall\.test(/secretariat/join/[A-Za-z0-9_-]{43})")
UTC = dt.UTC



def accept(page: Page, base: str, message, name: str) -> None:
    path = LINK.search(body_of(message)).group(1)
    page.goto(base + path)
    page.get_by_label("Your name").fill(name)
    page.get_by_label("Choose a password").fill("a long secret phrase")
    page.get_by_label("Repeat the password").fill("a long secret phrase")
    page.get_by_role("button", name="Create my account and accept").click()
    expect(page.get_by_role("status").first).to_contain_text(f"Welcome, {name}: you are now")


def submitted_proposal(session, call: Call) -> Proposal:
    coordinator = f.make_user(session, "Cora Coordinator", email="cora@uni.example")
    proposal = create_proposal(session, coordinator, call, acronym="PASTEURX", title="Targets for precision medicine")
    update_proposal(session, coordinator, proposal, abstract="We study targets.", duration_months=36, keywords="x")
    for org, country, acronym, amount, pi in (("Sorbonne Université", "FR", "ANR", 250_000, "Paul Martin"),
                                              ("Institut Pasteur de Lille", "FR", "ANR", 200_000, "Lea Petit"),
                                              ("Charité Berlin", "DE", "BMBF", 280_000, "Jonas Weber"),
                                              ("Hospital Clínic Barcelona", "ES", "ISCIII", 190_000, "Ana Ruiz")):
        funder = session.scalar(select(FundingOrganisation).where(FundingOrganisation.acronym == acronym))
        add_partner(session, coordinator, proposal, PartnerData(
            organisation=org, country=country, pi_name=pi, pi_email=f"{pi.split()[0].lower()}@{country.lower()}.example",
            funder_id=funder.id, budget={"personnel": amount}))
    transition(session, coordinator, proposal.id, "submit")
    draft_owner = f.make_user(session, "Dan Draft", email="dan@uni.example")
    create_proposal(session, draft_owner, call, acronym="LATEONE", title="Never finished")
    session.commit()
    return proposal


def test_secretariat_sets_up_and_runs_a_call_from_the_console(page: Page, live_server, session, frozen, shot,
                                                              mailbox, mail):
    frozen(dt.datetime(2024, 1, 2, 10, 0, tzinfo=UTC))  # before the shipped call opens (12 January 2024)
    admin = f.make_user(session, "Ada Admin", email="ada@jcs.example", is_admin=True)
    session.commit()

    # 1. The call from the shipped definition, uploaded through the page.
    log_in(page, live_server, admin.email)
    page.get_by_role("link", name="Secretariat console").click()
    page.get_by_role("link", name="Create a call").click()
    page.get_by_label("Call definition (TOML file)").set_input_files(str(SHIPPED))
    shot("console-1-create-call")
    page.get_by_role("button", name="Upload and create the call").click()
    expect(page.get_by_role("status").first).to_contain_text(
        "The call “EP PerMed Joint Transnational Call 2024 (PMTargets)” was created from eppermed-jtc2024.toml.")
    expect(page.locator("#stage-pre")).to_contain_text("scheduled")
    expect(page.locator("#stage-pre")).to_contain_text("5 March 2024, 17:00 CET")

    # 2. The pre-proposal stage opens now, after a confirmation that says what happens.
    page.get_by_role("link", name="Open the pre-proposal stage now").click()
    expect(page.locator("#consequence")).to_contain_text(
        "The pre-proposal stage opens now instead of 12 January 2024, 00:00 CET: applicants can create and submit "
        "proposals until 5 March 2024, 17:00 CET.")
    shot("console-2-open-stage")
    page.get_by_role("button", name="Open the stage now").click()
    expect(page.get_by_role("status").first).to_contain_text("The pre-proposal stage is open since 2 January 2024, "
                                                             "11:00 CET")
    expect(page.locator("#stage-pre")).to_contain_text("open")

    # 3. A funder officer of ANR and a reviewer are invited by e-mail.
    page.locator("#call-nav").get_by_role("link", name="People").click()
    page.get_by_label("E-mail").fill("olga@anr.example")
    page.get_by_label("Role", exact=True).select_option("officer")
    page.get_by_label("Funder (for a funder officer)").select_option(label="ANR — Agence Nationale de la Recherche")
    page.get_by_role("button", name="Send the invitation").click()
    expect(page.get_by_role("status").first).to_contain_text(
        "Invitation sent to olga@anr.example as funder officer of anr.")
    page.get_by_label("E-mail").fill("rita@review.example")
    page.get_by_label("Role", exact=True).select_option("reviewer")
    page.get_by_role("button", name="Send the invitation").click()
    expect(page.locator("#pending")).to_contain_text("rita@review.example — Reviewer")
    shot("console-3-people-invited")
    messages = mail.wait(2)
    assert sorted(m["To"] for m in messages) == ["olga@anr.example", "rita@review.example"]
    log_out(page)

    # 4. Both accept by their mailed links, creating their accounts.
    accept(page, live_server, mailbox.to("olga@anr.example")[0], "Olga Officer")
    expect(page.get_by_role("status").first).to_contain_text("funder officer of anr in EP PerMed")
    log_out(page)
    accept(page, live_server, mailbox.to("rita@review.example")[0], "Rita Reviewer")
    shot("console-4-reviewer-accepted")
    log_out(page)

    log_in(page, live_server, admin.email)
    call = session.scalar(select(Call).where(Call.code == "eppermed-jtc2024"))
    page.goto(live_server + f"/secretariat/calls/{call.id}/people")
    expect(page.locator("#roles")).to_contain_text("Funder officer of ANR")
    expect(page.locator("#roles")).to_contain_text("Olga Officer")
    expect(page.locator("#roles")).to_contain_text("Rita Reviewer")
    expect(page.locator("#pending")).to_contain_text("No pending invitation.")

    # 5. A consortium submits; after the deadline the stage is closed on the existing page.
    session.expire_all()
    call = session.scalar(select(Call).where(Call.code == "eppermed-jtc2024"))
    call.__dict__.pop("settings", None)
    proposal = submitted_proposal(session, call)
    frozen(dt.datetime(2024, 3, 6, 9, 0, tzinfo=UTC))
    page.locator("#call-nav").get_by_role("link", name="Overview").click()
    expect(page.locator("#stage-pre")).to_contain_text("deadline passed")
    page.get_by_role("link", name="Close submission of the pre-proposal stage").click()
    expect(page.locator("#consequence")).to_contain_text(
        "1 submitted proposal goes to the eligibility check; 1 draft will be marked not submitted.")
    page.get_by_role("button", name="Close submission").click()
    expect(page.get_by_role("status").first).to_contain_text("1 proposal went to the eligibility check")
    page.goto(live_server + f"/secretariat/calls/{call.id}/")
    expect(page.locator("#stage-pre")).to_contain_text("closed")
    shot("console-5-stage-closed")

    # 6. The dashboard counts it; the list finds it by a partner's name.
    page.locator("#call-nav").get_by_role("link", name="Dashboard").click()
    expect(page.locator("#state-eligibility_check")).to_contain_text("1")
    expect(page.locator("#funder-ANR .partners")).to_have_text("2")
    shot("console-6-dashboard")
    page.locator("#call-nav").get_by_role("link", name="Proposals").click()
    page.get_by_role("searchbox", name="Search").fill("Pasteur de Lille")
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page.locator("#proposals tbody tr")).to_have_count(1)
    expect(page.locator("#proposals")).to_contain_text(proposal.reference)
    expect(page.locator("#proposals")).to_contain_text("PASTEURX")
    expect(page.locator("#result-count")).to_contain_text("Proposals 1–1 of 1 (filtered)")
    shot("console-7-found-by-partner")
    page.locator("#call-nav").get_by_role("link", name="State diagram").click()
    expect(page.locator("#box-eligibility_check .count")).to_have_text("1")
    expect(page.locator("#box-not_submitted .count")).to_have_text("1")
    shot("console-8-state-diagram")
