"""The pages anyone sees: the list of calls, a call's facts, logging in and out, errors, headers."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from tests import factories as f
from webapp.settings import PROJECT_DIR
from workflow.callconfig import load_call_file
from workflow.calls import load_call


@pytest.fixture
def eppermed(session):
    call = load_call(session, None, load_call_file(PROJECT_DIR / "config/calls/eppermed-jtc2024.toml")).call
    session.commit()
    return call


def text_of(response) -> str:
    return re.sub(r"\s+", " ", response.get_data(as_text=True))


def test_landing_lists_calls_with_deadline_in_the_calls_time_zone(client, eppermed, frozen):
    frozen(dt.datetime(2024, 2, 1, 12, 0, tzinfo=dt.UTC))
    page = text_of(client.get("/"))
    assert eppermed.title in page
    assert "Pre-proposal: 5 March 2024, 17:00 CET" in page
    assert "open, 33 days 4 h left" in page


def test_call_page_shows_stages_rules_and_funders_with_currency(client, eppermed):
    response = client.get("/calls/eppermed-jtc2024")
    assert response.status_code == 200
    page = text_of(response)
    assert "5 March 2024, 17:00 CET" in page
    assert "20 June 2024, 17:00 CEST" in page  # summer time for the full-proposal deadline
    assert "At least 3 partners requesting funding, from at least 3 participating countries." in page
    assert "BMBF" in page and "€4,500,000" in page
    total = sum(cf.committed_budget for cf in eppermed.funders)
    assert f"€{total:,}" in page


def test_unknown_call_is_a_friendly_404(client):
    response = client.get("/calls/nope")
    assert response.status_code == 404
    assert "There is no such page." in response.get_data(as_text=True)


def test_login_wrong_password_says_so_next_to_the_field_then_logs_in(client, session):
    f.make_user(session, "Zoë García", email="zoe@example.org")
    session.commit()
    bad = client.post("/login", data={"email": "zoe@example.org", "password": "wrong password"})
    assert bad.status_code == 422
    assert 'id="password-error">the e-mail address or the password is wrong' in bad.get_data(as_text=True)
    good = client.post("/login", data={"email": "ZOE@example.org", "password": "correct horse battery"},
                       follow_redirects=True)
    assert "Welcome, Zoë García." in good.get_data(as_text=True)
    out = client.post("/logout", follow_redirects=True)
    assert "You are logged out." in out.get_data(as_text=True)
    assert "Zoë García" not in out.get_data(as_text=True)


def test_login_with_empty_fields_shows_messages_next_to_fields(client):
    response = client.post("/login", data={"email": "", "password": ""})
    body = response.get_data(as_text=True)
    assert 'id="email-error">enter your e-mail address' in body
    assert 'id="password-error">enter your password' in body


def test_login_redirect_never_leaves_the_site(client, session):
    f.make_user(session, email="a@example.org")
    session.commit()
    response = client.post("/login?next=https://evil.example/x",
                           data={"email": "a@example.org", "password": "correct horse battery"})
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


def test_security_headers_and_no_remote_assets(client, eppermed):
    response = client.get("/")
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    body = response.get_data(as_text=True)
    assert not re.search(r'(src|href)="(https?:)?//', body), "pages must load no asset from the internet"
    css = client.get("/static/vendor/bootstrap/bootstrap.min.css")
    assert css.status_code == 200 and b"Bootstrap" in css.data[:200]


def test_csrf_is_enforced_when_enabled(app, client, session):
    app.config["WTF_CSRF_ENABLED"] = True
    f.make_user(session, email="b@example.org")
    session.commit()
    response = client.post("/login", data={"email": "b@example.org", "password": "correct horse battery"})
    assert response.status_code == 400
    assert "This form was not sent from this site or has expired" in response.get_data(as_text=True)
