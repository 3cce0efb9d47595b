"""Settings: config/settings.toml, overridden by JOINTCALL_* environment variables, then by code (tests)."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
DEFAULTS_FILE = PROJECT_DIR / "config" / "settings.toml"
DEV_SECRET = "development-only-secret-not-for-production"


class ConfigurationError(RuntimeError):
    pass


def _coerce(value: str, like):
    if isinstance(like, bool):
        return value.strip().lower() in ("1", "true", "yes", "on")
    if isinstance(like, int):
        return int(value)
    return value


def load_settings(overrides: dict | None = None) -> dict:
    with DEFAULTS_FILE.open("rb") as fh:
        settings = tomllib.load(fh)
    for key, default in list(settings.items()):
        env = os.environ.get(f"JOINTCALL_{key.upper()}")
        if env is not None:
            settings[key] = _coerce(env, default)
    settings.update(overrides or {})
    url = settings["database_url"]
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////") and ":memory:" not in url:
        settings["database_url"] = "sqlite:///" + str(PROJECT_DIR / url[len("sqlite:///"):])
    storage = Path(settings["storage_dir"])
    settings["storage_dir"] = str(storage if storage.is_absolute() else PROJECT_DIR / storage)
    if not settings.get("secret_key"):
        if settings["env"] == "production":
            raise ConfigurationError(
                "JOINTCALL_SECRET_KEY is not set: production refuses to start without a secret key "
                "(generate one with: python -c 'import secrets; print(secrets.token_urlsafe(48))')"
            )
        settings["secret_key"] = DEV_SECRET
    elif settings["env"] == "production" and (settings["secret_key"] == DEV_SECRET or len(settings["secret_key"]) < 32):
        raise ConfigurationError("JOINTCALL_SECRET_KEY is a default or too short (< 32 characters) for production")
    return settings
