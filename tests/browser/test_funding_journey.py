"""The funding decision in Chromium: the secretariat reads the funding list and records the steering
committee's approval after its confirmation page, the officers of two funders confirm their partners and the
proposal is funded, and the secretariat exports the letters as a ZIP, watching the progress page refresh
itself, and downloads it.

The call is the funding world of tests/web/test_funding_pages.py: five recommended proposals whose order
(no approved ranking list exists here) is the documented fallback, by reference: ONE, TWO, THREE, FOUR,
FIVE. FOUR's partners are funded by DFG-T and ISCIII-T only."""

from __future__ import annotations

import io
import re
import time
import zipfile

from playwright.sync_api import Page, expect

from tests.browser.conftest import log_in, log_out
from tests.web.test_funding_pages import build_world


def confirm_four(page: Page, base: str, w, funder: str) -> None:
    c = w.confirmation("FOUR", funder)
    log_in(page, base, w.officers[funder].email)
    page.goto(f"{base}/funding/calls/{w.call.id}/confirmations")
    card = page.locator(f"#confirmation-{c.id}")
    expect(card).to_contain_text(f"TEST-0004 FOUR — {funder}")
    card.get_by_label("Confirm the funding").check()
    card.get_by_role("button", name="Save the decision").click()


def test_approval_confirmations_funded_and_the_letters_zip(page: Page, live_server, app, session, shot, monkeypatch):
    w = build_world(session)
    # Render the letters one by one, slowly, in the job's thread, so that the progress page is seen at work
    # (the Pool of 2 processes is exercised in tests/web/test_letters.py).
    from webapp import letters as L

    app.config["JOINTCALL"]["letter_processes"] = 0
    real = L.pdf_of_html

    def slow(html):
        time.sleep(1.5)
        return real(html)

    monkeypatch.setattr(L, "pdf_of_html", slow)

    # 1. The secretariat reads the list and records the approval after seeing what it will do.
    log_in(page, live_server, w.sec.email)
    page.goto(live_server + "/funding/")
    page.get_by_role("link", name="Funding list of Test Call 2030").click()
    expect(page.locator("#row-TEST-0003")).to_contain_text("blocked by ANR-T (short €200,000)")
    expect(page.locator("#ranking-origin")).to_contain_text("fallback")
    expect(page.locator("#bar-ANR-T")).to_contain_text("€1,300,000")
    shot("funding-1-scenario")
    page.get_by_role("link", name="Record the steering committee's approval").click()
    expect(page.locator("#consequences")).to_contain_text("3 proposals become selected: ONE, TWO, FOUR.")
    expect(page.locator("#consequences")).to_contain_text("ISCIII-T is asked to confirm 3 proposals (€750,000).")
    page.get_by_role("button", name="Record the approval").click()
    expect(page.locator("#note-error")).to_have_text(
        "say where the steering committee approved the list (e.g. the meeting and its date)")
    page.get_by_label("Where the steering committee approved the list").fill("CSC meeting of 30 September 2030, item 4")
    shot("funding-2-approval-confirmation")
    page.get_by_role("button", name="Record the approval").click()
    expect(page.get_by_role("status").first).to_contain_text(
        "The steering committee's approval is recorded: 3 proposals selected, 2 on the reserve list.")
    expect(page.locator("#row-TEST-0004")).to_contain_text("DFG-T Pending")
    shot("funding-3-approved")
    log_out(page)

    # 2. The officers of FOUR's two funders confirm their partners; FOUR is funded.
    confirm_four(page, live_server, w, "DFG-T")
    expect(page.get_by_role("status").first).to_contain_text("DFG-T confirmed the funding of its partners in TEST-0004 FOUR.")
    expect(page.locator("#confirmation-" + str(w.confirmation("FOUR", "DFG-T").id))).to_contain_text("Confirmed")
    shot("funding-4-dfg-confirmed")
    log_out(page)
    confirm_four(page, live_server, w, "ISCIII-T")
    expect(page.get_by_role("status").first).to_contain_text("Every funder has confirmed: the proposal is funded.")
    log_out(page)
    assert w.states()["FOUR"] == "funded"

    log_in(page, live_server, w.p["FOUR"].coordinator.email)
    page.goto(f"{live_server}/my/proposals/{w.p['FOUR'].id}/decision")
    expect(page.locator("#outcome-full")).to_be_visible()
    expect(page.locator("main")).to_contain_text("Funded")
    expect(page.locator("#letter-status")).to_contain_text("will be available here once the secretariat releases it")
    log_out(page)

    # 3. The secretariat exports the full stage's letters and downloads the ZIP.
    log_in(page, live_server, w.sec.email)
    page.goto(f"{live_server}/funding/calls/{w.call.id}/scenario")
    expect(page.locator("#row-TEST-0004")).to_contain_text("ISCIII-T Confirmed")
    page.get_by_role("link", name="Decision letters").click()
    expect(page.locator("#letter-counts")).to_contain_text("3 letters: 1 funded, 2 on the reserve list.")
    shot("funding-5-letters")
    page.get_by_role("button", name="Generate the letters as a ZIP").click()
    expect(page.locator("#job")).to_have_attribute("data-state", re.compile("queued|running"))
    expect(page.locator("#progress-text")).to_contain_text(re.compile(r"[0-2] of [03] letters"))
    shot("funding-6-export-progress")
    # The page refreshes itself (a meta refresh, no script) until the ZIP is ready: nobody clicks.
    expect(page.get_by_role("link", name="Download the ZIP (3 letters)")).to_be_visible(timeout=60_000)
    expect(page.locator("#progress-text")).to_have_text("3 of 3 letters.")
    shot("funding-7-export-done")
    with page.expect_download() as info:
        page.get_by_role("link", name="Download the ZIP (3 letters)").click()
    data = open(info.value.path(), "rb").read()
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert sorted(zf.namelist()) == ["TEST-0003-full-THREE.pdf", "TEST-0004-full-FOUR.pdf",
                                         "TEST-0005-full-FIVE.pdf"]
        assert all(zf.read(name).startswith(b"%PDF") for name in zf.namelist())
    assert info.value.suggested_filename == "test-call-full-letters.zip"

    # 4. The letter template: previewed in the page before anything is saved.
    page.goto(f"{live_server}/funding/calls/{w.call.id}/letters")
    page.get_by_role("link", name="letter template").click()
    page.get_by_label("Preview for").select_option(label="TEST-0004 FOUR (full proposal stage, funded)")
    page.get_by_role("button", name="Preview", exact=True).click()
    expect(page.locator("#preview")).to_contain_text("Dear Jürgen Groß,")
    expect(page.locator("#preview")).to_contain_text("€350,000")
    shot("funding-8-letter-template")
