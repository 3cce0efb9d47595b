"""The eligibility step in Chromium: the secretariat closes submission and reminds the funders, two officers
of different funders sign off their own applicants (one partner not eligible), the secretariat does the
formal checks and closes the step; one proposal turns ineligible and its coordinator sees why."""

from __future__ import annotations

from playwright.sync_api import Page, expect
from sqlalchemy import select

from tests import factories as f
from tests.browser.conftest import log_in, log_out
from workflow.models import Proposal
from workflow.operations import transition
from workflow.proposals import PartnerData, add_partner, create_proposal, update_proposal

REASON = "Institut Curie is not a public research body under the ANR-T rules"


def _proposal(session, call, acronym: str, n: int):
    coordinator = f.make_user(session, f"Coordinator {acronym}", email=f"coord.{acronym.lower()}@example.org")
    proposal = create_proposal(session, coordinator, call, acronym=acronym, title=f"{acronym}: precision medicine")
    update_proposal(session, coordinator, proposal, abstract="We study things.", duration_months=36, keywords="x")
    for org, country, funder, amount in (("Charité Berlin", "DE", "DFG-T", 250_000),
                                         ("Institut Curie", "FR", "ANR-T", 300_000),
                                         ("Universität Heidelberg", "DE", "DFG-T", 150_000)):
        add_partner(session, coordinator, proposal, PartnerData(
            organisation=org, country=country, pi_name=f"PI {org} {n}", pi_email=f"pi{n}.{country.lower()}.{amount}@example.org",
            funder_id=f.funder(session, funder).id, budget={"personnel": amount}))
    return proposal



def test_officers_and_secretariat_complete_the_eligibility_step(page: Page, live_server, session, frozen, shot,
                                                                mailbox, mail):
    frozen(f.PRE_OPEN)
    # Two funders take part in these consortia; the call does not allow replacing an ineligible partner.
    call = f.make_call(session, min_funded_partners=2, min_countries=2, min_eu_associated_partners=2,
                       allow_replacing_ineligible_partner=False)
    sec = f.make_user(session, "Sam Secretariat", email="sam@example.org")
    dfg = f.make_user(session, "Dora DFG", email="dora@example.org")
    anr = f.make_user(session, "Anton ANR", email="anton@example.org")
    from workflow.accounts import grant_role

    grant_role(session, None, sec, "secretariat", call.id)
    grant_role(session, None, dfg, "officer", call.id, f.funder(session, "DFG-T").id)
    grant_role(session, None, anr, "officer", call.id, f.funder(session, "ANR-T").id)
    alpha, beta = _proposal(session, call, "ALPHA", 1), _proposal(session, call, "BETA", 2)
    _proposal(session, call, "LATE", 3)
    for p in (alpha, beta):
        transition(session, p.coordinator, p.id, "submit")
    session.commit()
    frozen(f.PRE_CLOSED)  # the live server runs in this process: its clock is frozen too

    # 1. The secretariat closes submission, knowing what will happen, and reminds the funders.
    log_in(page, live_server, sec.email)
    page.goto(live_server + "/secretariat/eligibility")
    page.get_by_role("link", name="Close submission of the pre-proposal stage").click()
    expect(page.locator("#consequence")).to_contain_text(
        "2 submitted proposals go to the eligibility check; 1 draft will be marked not submitted.")
    expect(page.locator("#closing-facts")).to_contain_text("5 March 2030, 17:00 CET")
    shot("eligibility-1-close-submission")
    page.get_by_role("button", name="Close submission").click()
    expect(page.get_by_role("status").first).to_contain_text("2 proposals went to the eligibility check")
    expect(page.get_by_role("heading", name="Eligibility check: pre-proposal stage")).to_be_visible()
    page.get_by_role("button", name="Remind funders with pending checks").click()
    expect(page.get_by_role("status").first).to_contain_text("2 reminders queued")
    reminders = mail.wait(2, subject="Reminder:")
    assert sorted(m["To"] for m in reminders) == ["anton@example.org", "dora@example.org"]
    shot("eligibility-2-matrix-pending")
    log_out(page)

    # 2. The DFG-T officer signs off all four of its partners at once.
    log_in(page, live_server, dfg.email)
    page.goto(live_server + "/funder/")
    page.get_by_role("link", name="Pre-proposal stage").click()
    expect(page.locator("#partners tbody tr")).to_have_count(4)
    expect(page.locator("#partners")).not_to_contain_text("Institut Curie")
    expect(page.locator("#budget-DFG-T")).to_contain_text("€800,000")
    for acronym in ("ALPHA", "BETA"):
        for org in ("Charité Berlin", "Universität Heidelberg"):
            page.get_by_label(f"Select {acronym}, {org}").check()
    page.get_by_label("Eligible", exact=True).check()
    shot("eligibility-3-dfg-bulk")
    page.get_by_role("button", name="Sign off the selected partners").click()
    expect(page.get_by_role("status").first).to_contain_text("4 partners signed off as eligible")
    log_out(page)

    # 3. The ANR-T officer finds BETA's partner not eligible (the reason is required), ALPHA's eligible.
    log_in(page, live_server, anr.email)
    page.goto(live_server + f"/funder/calls/{call.id}/pre")
    expect(page.locator("#partners tbody tr")).to_have_count(2)
    page.locator(f"#partners tr:has-text('{beta.reference}')").get_by_role("link", name="Institut Curie").click()
    page.get_by_label("Not eligible", exact=True).check()
    page.get_by_role("button", name="Save verdict").click()
    expect(page.locator("#reason-error")).to_have_text("give the reason why the partner is not eligible")
    page.get_by_label("Reason (required for not eligible)").fill(REASON)
    page.get_by_role("button", name="Save verdict").click()
    expect(page.get_by_role("status").first).to_contain_text("Verdict saved: Institut Curie is not eligible.")
    shot("eligibility-4-anr-not-eligible")
    page.get_by_role("link", name="Back to the partners of your organisation").click()
    page.locator(f"#partners tr:has-text('{alpha.reference}')").get_by_role("link", name="Institut Curie").click()
    page.get_by_label("Eligible", exact=True).check()
    page.get_by_role("button", name="Save verdict").click()
    expect(page.get_by_role("status").first).to_contain_text("Verdict saved: Institut Curie is eligible.")
    log_out(page)

    # 4. The secretariat does the formal checks and closes the step.
    log_in(page, live_server, sec.email)
    page.goto(live_server + f"/secretariat/calls/{call.id}/eligibility/pre")
    for p in (alpha, beta):
        page.get_by_role("link", name=p.reference).click()
        expect(page.locator("#findings")).to_contain_text("finds nothing against the call rules")
        page.get_by_label("Eligible", exact=True).check()
        page.get_by_role("button", name="Save the formal check").click()
        expect(page.get_by_role("status").first).to_contain_text(f"Formal check saved: {p.acronym} is eligible")
        page.get_by_role("link", name="Back to the eligibility matrix").click()
    expect(page.locator("#close-help")).to_contain_text("1 goes on, 1 becomes ineligible, 0 wait for pending checks")
    expect(page.locator(f"#proposal-{beta.id} td[data-funder='ANR-T']")).to_contain_text(REASON)
    shot("eligibility-5-matrix-decided")
    page.get_by_role("button", name="Close the eligibility step").click()
    expect(page.locator("#closing-summary")).to_contain_text(
        "1 proposal went on; 1 was found ineligible; 0 stay in the eligibility check.")
    expect(page.locator("#ineligible")).to_contain_text(REASON)
    shot("eligibility-6-step-closed")
    log_out(page)

    session.expire_all()
    assert session.scalar(select(Proposal.state).where(Proposal.id == alpha.id)) == "pre_review"
    assert session.scalar(select(Proposal.state).where(Proposal.id == beta.id)) == "ineligible"

    # 5. BETA's coordinator sees why on the proposal's page.
    log_in(page, live_server, beta.coordinator.email)
    page.goto(live_server + f"/my/proposals/{beta.id}")
    outcome = page.locator("#outcome-panel")
    expect(outcome).to_contain_text("Not eligible")
    expect(outcome).to_contain_text(f"ANR-T, for Institut Curie: {REASON}")
    shot("eligibility-7-coordinator-sees-why")
