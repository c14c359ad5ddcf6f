"""Which environment this process runs in (``APP_ENV``), read the same way by the web, the
worker and cron: production turns on the SSRF guard, Secure cookies and HSTS, and turns off
the demo tasks unless asked for."""

from __future__ import annotations

import os

ENVIRONMENTS = ("development", "production")
_ON, _OFF = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


class EnvironmentSettingError(ValueError):
    """A setting of the environment cannot be read; the message says why in one line."""


def app_env(value: str | None = None) -> str:
    """``APP_ENV`` (default development); anything but the known names is refused, so that
    ``Production`` or ``prod`` never runs as development."""
    if value is None:
        value = os.environ.get("APP_ENV") or "development"
    if value not in ENVIRONMENTS:
        raise EnvironmentSettingError(f"APP_ENV must be one of {', '.join(ENVIRONMENTS)}, not {value!r}")
    return value


def demo_tasks_enabled() -> bool:
    """``OFFLOAD_DEMO_TASKS``: the demo tasks (sleep, burn CPU, fail, the soak's) are loaded
    where asked for; unset, in development only."""
    setting = os.environ.get("OFFLOAD_DEMO_TASKS", "").strip().lower()
    if setting in _ON:
        return True
    if setting in _OFF:
        return False
    if setting:
        raise EnvironmentSettingError(f"OFFLOAD_DEMO_TASKS must be on or off (1/0, true/false), not {setting!r}")
    return app_env() != "production"
