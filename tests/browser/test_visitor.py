"""A visitor finds the call, reads its deadlines and funders, and logs in and out — in Chromium."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests import factories as f
from webapp.settings import PROJECT_DIR
from workflow.callconfig import load_call_file
from workflow.calls import load_call


def test_visitor_reads_the_call_and_logs_in(page: Page, live_server, session, shot):
    load_call(session, None, load_call_file(PROJECT_DIR / "config/calls/eppermed-jtc2024.toml"))
    f.make_user(session, "Søren Ødegaard", email="soren@example.org")
    session.commit()

    page.goto(live_server + "/")
    expect(page.get_by_role("heading", name="Calls for proposals")).to_be_visible()
    page.get_by_role("link", name="EP PerMed Joint Transnational Call 2024").click()
    expect(page.locator("#stages")).to_contain_text("5 March 2024, 17:00 CET")
    expect(page.locator("#funders")).to_contain_text("BMBF")
    shot("visitor-call-page")

    page.get_by_role("link", name="Log in").click()
    page.get_by_label("E-mail").fill("soren@example.org")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#password-error")).to_have_text("the e-mail address or the password is wrong")

    page.get_by_label("Password").fill("correct horse battery")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("status")).to_contain_text("Welcome, Søren Ødegaard.")
    expect(page.locator("#whoami")).to_have_text("Søren Ødegaard")
    shot("visitor-logged-in")

    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("status")).to_contain_text("You are logged out.")
