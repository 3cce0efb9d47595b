"""Browser tests: Playwright drives Debian Chromium (/usr/bin/chromium) against the app served on a free
localhost port, on the test database. Screenshots go to test-artifacts/screenshots/."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from tests.conftest import IN_CI

PASSWORD = "correct horse battery"  # what tests/factories.make_user gives every account

CHROMIUM = os.environ.get("JOINTCALL_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/browser/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        message = f"Chromium is not installed at {CHROMIUM}; run `make test` as root to install it"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


@pytest.fixture
def live_server(app):
    app.config["WTF_CSRF_ENABLED"] = True  # the browser sends real forms with real tokens
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


@pytest.fixture
def shot(page):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


class MailWaiter:
    """Waits for mail the live server sends after its responses, keeping Playwright's loop running.

    If it has not come after 10 s, the reason is printed (outbox rows, every thread's stack) and the queue
    is sent once as `jointcall outbox send` does in production, so a slow in-process send on a loaded
    machine does not fail a journey that is about the person's steps; a mail never queued still fails."""

    def __init__(self, page, mailbox, app):
        self.page, self.mailbox, self.app = page, mailbox, app

    def wait(self, count: int = 1, *, to: str | None = None, subject: str | None = None) -> list:
        def found():
            return [m for m in self.mailbox.messages
                    if (to is None or to.lower() in str(m["To"]).lower())
                    and (subject is None or subject in str(m["Subject"]))]

        for n in range(400):
            hits = found()
            if len(hits) >= count:
                return hits
            if n == 100:
                from webapp.db import send_outbox

                self.mailbox._explain_missing(count)
                send_outbox(self.app)
            self.page.wait_for_timeout(100)
        raise AssertionError(f"expected {count} mail(s) to={to!r} subject~{subject!r}; got {len(found())}")


@pytest.fixture
def mail(page, mailbox, app):
    return MailWaiter(page, mailbox, app)


def log_in(page, base: str, email: str, password: str = PASSWORD) -> None:
    """Log in through the login form, as a person would."""
    from playwright.sync_api import expect

    page.goto(base + "/login")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()


def log_out(page) -> None:
    from playwright.sync_api import expect

    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("status").first).to_contain_text("You are logged out.")
