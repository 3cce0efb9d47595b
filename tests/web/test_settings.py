"""Settings: defaults, JOINTCALL_* overrides, and a production start that refuses weak secrets."""

from __future__ import annotations

import pytest

from webapp import create_app
from webapp.settings import DEV_SECRET, ConfigurationError, load_settings


def test_environment_overrides_defaults(monkeypatch, tmp_path):
    monkeypatch.setenv("JOINTCALL_DATABASE_URL", f"sqlite:///{tmp_path}/x.db")
    monkeypatch.setenv("JOINTCALL_SMTP_PORT", "2525")
    monkeypatch.setenv("JOINTCALL_MAIL_INLINE", "false")
    settings = load_settings()
    assert settings["database_url"] == f"sqlite:///{tmp_path}/x.db"
    assert settings["smtp_port"] == 2525
    assert settings["mail_inline"] is False


def test_relative_sqlite_path_is_under_the_project_instance_folder(monkeypatch):
    monkeypatch.delenv("JOINTCALL_DATABASE_URL", raising=False)
    settings = load_settings()
    assert settings["database_url"].endswith("/instance/jointcall.db")
    assert settings["database_url"].startswith("sqlite:////")


@pytest.mark.parametrize("secret", ["", DEV_SECRET, "short-secret"])
def test_production_refuses_to_start_without_a_real_secret(monkeypatch, secret):
    monkeypatch.setenv("JOINTCALL_ENV", "production")
    monkeypatch.setenv("JOINTCALL_SECRET_KEY", secret)
    with pytest.raises(ConfigurationError, match="JOINTCALL_SECRET_KEY"):
        create_app()


def test_production_with_a_real_secret_sets_secure_cookies(monkeypatch, tmp_path):
    monkeypatch.setenv("JOINTCALL_ENV", "production")
    monkeypatch.setenv("JOINTCALL_SECRET_KEY", "x" * 48)
    monkeypatch.setenv("JOINTCALL_DATABASE_URL", f"sqlite:///{tmp_path}/p.db")
    app = create_app()
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["SESSION_COOKIE_HTTPONLY"] is True
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"
