"""Sessions and secrets in the browser's place (issue 8, item 3): cookie flags, a fresh session at login,
logout really ending the session, reset links that work once and expire, and the security headers on every
kind of page. (Production refusing a default secret is in test_settings.py; login throttling and the reset
journey in test_accounts.py.)"""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import urljoin, urlsplit

import pytest

from tests import factories as f
from webapp import create_app
from workflow import accounts

PASSWORD = "correct horse battery"


def login(client, user, password: str = PASSWORD):
    return client.post("/login", data={"email": user.email, "password": password})


def session_cookie(client) -> str | None:
    cookie = client.get_cookie("session")
    return cookie.value if cookie is not None else None


def logged_in(client) -> bool:
    return 'id="whoami"' in client.get("/").get_data(as_text=True)


def set_cookie_header(response, name: str = "session") -> str:
    for header in response.headers.getlist("Set-Cookie"):
        if header.startswith(name + "="):
            return header
    raise AssertionError(f"no {name} cookie set")


@pytest.fixture
def rita(session):
    user = f.make_user(session, "Rita Secure", email="rita@example.org")
    session.commit()
    return user


def test_the_session_cookie_is_httponly_and_samesite_lax(client, rita):
    response = login(client, rita)
    assert response.status_code == 302
    header = set_cookie_header(response)
    assert "HttpOnly" in header and "SameSite=Lax" in header
    assert "Secure" not in header  # plain http in development and tests


def test_production_sets_the_secure_flag_on_the_session_cookie(monkeypatch, tmp_path, database_url,
                                                             session_factory, rita):
    monkeypatch.setenv("JOINTCALL_ENV", "production")
    monkeypatch.setenv("JOINTCALL_SECRET_KEY", "p" * 64)
    app = create_app({"database_url": database_url, "storage_dir": str(tmp_path / "files"),
                      "base_url": "https://jointcall.test"})
    app.config["WTF_CSRF_ENABLED"] = False  # this test is about the cookie, not the form token
    client = app.test_client()
    response = client.post("/login", data={"email": rita.email, "password": PASSWORD},
                           base_url="https://jointcall.test")
    assert response.status_code == 302
    header = set_cookie_header(response)
    assert "Secure" in header and "HttpOnly" in header and "SameSite=Lax" in header


def test_login_starts_a_new_session_and_a_cookie_from_before_login_does_not_authenticate(client, rita):
    client.post("/forgot-password", data={"email": "someone@example.org"})  # an anonymous session
    before = session_cookie(client)
    assert before is not None
    assert login(client, rita).status_code == 302
    after = session_cookie(client)
    assert after and after != before
    assert logged_in(client)
    client.post("/logout")
    client.set_cookie("session", before or "")
    assert not logged_in(client)


def test_logout_ends_the_session_for_the_browser(client, rita):
    login(client, rita)
    assert logged_in(client)
    response = client.post("/logout")
    assert response.status_code == 302
    assert not logged_in(client)
    assert client.get("/my/").status_code in (302, 401)


def test_a_session_cookie_copied_before_logout_no_longer_authenticates(client, app, rita):
    login(client, rita)
    stolen = session_cookie(client)
    client.post("/logout")
    other = app.test_client()
    other.set_cookie("session", stolen)
    assert not logged_in(other)


def test_a_reset_link_works_once_and_not_after_its_hour(client, session, frozen, rita):
    start = dt.datetime(2030, 2, 1, 12, 0, tzinfo=dt.UTC)
    frozen(start)
    token = accounts.issue_token(session, rita, accounts.RESET_PASSWORD)
    session.commit()
    new = {"password": "a brand new password", "confirm": "a brand new password"}
    assert client.post(f"/reset-password/{token}", data=new).status_code == 302
    client.post("/logout")
    again = client.post(f"/reset-password/{token}", data={"password": "yet another password", "confirm":
                                                           "yet another password"})
    assert again.status_code != 302 or "/login" in again.headers.get("Location", "")
    assert login(client, rita, "yet another password").status_code != 302
    client.post("/logout")
    late = accounts.issue_token(session, rita, accounts.RESET_PASSWORD)
    session.commit()
    frozen(start + dt.timedelta(hours=1, minutes=1))
    expired = client.post(f"/reset-password/{late}", data={"password": "expired link password",
                                                           "confirm": "expired link password"})
    assert expired.status_code != 302 or "/login" in expired.headers.get("Location", "")
    assert login(client, rita, "expired link password").status_code != 302
    assert login(client, rita, "a brand new password").status_code == 302


def _check_headers(response):
    csp = response.headers.get("Content-Security-Policy", "")
    directives = {d.strip().split(" ")[0]: d.strip() for d in csp.split(";") if d.strip()}
    assert "script-src" in directives or "default-src" in directives
    script = directives.get("script-src", directives.get("default-src"))
    assert "'unsafe-inline'" not in script and "'unsafe-eval'" not in script
    assert directives.get("frame-ancestors") == "frame-ancestors 'none'"
    assert response.headers.get("X-Content-Type-Options") == "nosniff"
    assert response.headers.get("Referrer-Policy") in ("same-origin", "no-referrer", "strict-origin",
                                                       "strict-origin-when-cross-origin")


def test_security_headers_on_every_kind_of_page(client, session, rita):
    call = f.make_call(session)
    session.commit()
    answers = [
        client.get("/"),  # public page
        client.get("/login"),  # form
        client.get("/no-such-page"),  # 404
        client.get("/my/"),  # redirect to login
        client.post("/login", data={"email": "x", "password": ""}),  # 422
        client.get("/static/js/editor.js"),  # static file
    ]
    login(client, rita)
    answers += [client.get("/my/"), client.get(f"/secretariat/calls/{call.id}/settings")]  # page, 403
    assert {a.status_code for a in answers} >= {200, 302, 403, 404, 422}
    for answer in answers:
        _check_headers(answer)


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\t/evil.example/",
                                    "/\\evil.example/", "\\\\evil.example/", "/%2F%2Fevil.example/",
                                    "/\n/evil.example/", " //evil.example/", "javascript:alert(1)"])
def test_login_never_redirects_off_site(client, rita, target):
    response = client.post("/login", data={"email": rita.email, "password": PASSWORD},
                           query_string={"next": target})
    assert response.status_code == 302
    location = re.sub(r"[\t\r\n]", "", response.headers["Location"]).replace("\\", "/")  # as a browser reads it
    resolved = urlsplit(urljoin("http://jointcall.test/login", location))
    assert resolved.scheme == "http" and resolved.netloc == "jointcall.test", response.headers["Location"]
