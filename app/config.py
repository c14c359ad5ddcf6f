"""Configuration: defaults in one place, read from the environment once, in the factory."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from jobs.environment import EnvironmentSettingError, app_env, demo_tasks_enabled


class ConfigError(RuntimeError):
    """The app cannot start with this configuration; the message says why in one line."""


DEFAULTS: dict[str, Any] = {
    "APP_ENV": "development",
    "SECRET_KEY": None,
    "API_TOKENS": "",
    # A password for the pages' login besides the API tokens (empty: tokens only).
    "ADMIN_PASSWORD": "",
    # How long a login lasts, and how many failed logins a client may make (limits' syntax).
    "SESSION_HOURS": 12,
    "LOGIN_RATE_LIMIT": "5/minute",
    "REDIS_URL": None,
    # The web's Redis client gives up fast so that an outage answers 503, not a hang.
    "REDIS_SOCKET_TIMEOUT": 1.0,
    "MAX_CONTENT_LENGTH": 1024 * 1024,
    "JSON_MAX_DEPTH": 32,
    "BATCH_MAX_ITEMS": 1000,
    "SSE_MAX_SECONDS": 3600,
    # Open event streams per web process; each holds a Redis connection while it waits.
    "SSE_MAX_STREAMS": 900,
    "REDIS_MAX_CONNECTIONS": 1000,
    "UPLOAD_MAX_BYTES": 20 * 1024 * 1024,
    # Bytes of uploads one credential may keep at a time (0: no quota).
    "UPLOAD_QUOTA_BYTES": 200 * 1024 * 1024,
    # Backpressure: jobs waiting per queue, and the share of Redis maxmemory, beyond which
    # new jobs are refused (0 turns a check off).
    "QUEUE_MAX_LENGTH": 100_000,
    "REDIS_MEMORY_MAX_RATIO": 0.9,
    "BACKPRESSURE_RETRY_AFTER": 5,
    # Per API token, on POST /api/jobs, /api/jobs/batch and /api/uploads (limits' syntax).
    "SUBMIT_RATE_LIMIT": "50/second;1000/minute",
    # Reverse proxies in front of the web that set X-Forwarded-For/-Proto/-Host (Heroku's router,
    # nginx): their number. 0 trusts none, so a client cannot spoof its address.
    "TRUSTED_PROXIES": 0,
    # rq-dashboard's requeue/delete/empty buttons; off unless turned on.
    "DASHBOARD_ACTIONS": False,
}

# Settings whose default is a number are read from the environment as that kind of number.
_NUMBERS = {
    key: type(value)
    for key, value in DEFAULTS.items()
    if isinstance(value, int | float) and not isinstance(value, bool)
}


def from_environment(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The settings found in the environment, converted to their types."""
    environ = os.environ if environ is None else environ
    found: dict[str, Any] = {}
    for key in DEFAULTS:
        if key in environ and environ[key] != "":
            raw = environ[key]
            try:
                if isinstance(DEFAULTS[key], bool):
                    found[key] = raw.strip().lower() in ("1", "true", "yes", "on")
                    continue
                found[key] = _NUMBERS[key](raw) if key in _NUMBERS else raw
            except ValueError:
                raise ConfigError(f"{key}={raw!r} is not a valid {_NUMBERS[key].__name__}") from None
    return found


def api_tokens(config: Mapping[str, Any]) -> list[str]:
    """The API tokens, from a comma-separated string or a list."""
    raw = config.get("API_TOKENS") or ""
    items = raw.split(",") if isinstance(raw, str) else list(raw)
    return [token.strip() for token in items if token.strip()]


# What production demands of its secrets, in characters.
MIN_SECRET_KEY = 32
MIN_ADMIN_PASSWORD = 12
MIN_API_TOKEN = 16


def check(config: Mapping[str, Any]) -> None:
    """Refuse configurations that would run insecurely or not at all, each in one line."""
    if not config.get("REDIS_URL"):
        raise ConfigError("REDIS_URL is not set: point Offload at a Redis server (make run starts one for you)")
    if config.get("TRUSTED_PROXIES", 0) < 0:
        raise ConfigError(
            f"TRUSTED_PROXIES must be 0 or more (the proxies in front of the web), not {config['TRUSTED_PROXIES']}"
        )
    try:  # "Production" or "prod" used to run as development: no Secure cookie, no HSTS, no SSRF guard
        environment = app_env(str(config.get("APP_ENV")))
        demo_tasks_enabled()
    except EnvironmentSettingError as error:
        raise ConfigError(str(error)) from None
    if environment != "production":
        return
    missing = [key for key in ("SECRET_KEY", "API_TOKENS") if not config.get(key)]
    if missing:
        raise ConfigError(f"refusing to start in production without {' and '.join(missing)}")
    if not api_tokens(config):
        raise ConfigError("refusing to start in production: API_TOKENS holds no token once spaces and commas go")
    if any(len(token) < MIN_API_TOKEN for token in api_tokens(config)):
        raise ConfigError(f"refusing to start in production with an API token shorter than {MIN_API_TOKEN} characters")
    if len(str(config["SECRET_KEY"])) < MIN_SECRET_KEY:
        raise ConfigError(f"refusing to start in production with a SECRET_KEY shorter than {MIN_SECRET_KEY} characters")
    password = config.get("ADMIN_PASSWORD") or ""
    if password and len(password) < MIN_ADMIN_PASSWORD:
        raise ConfigError(
            f"refusing to start in production with an ADMIN_PASSWORD shorter than {MIN_ADMIN_PASSWORD} characters"
        )
