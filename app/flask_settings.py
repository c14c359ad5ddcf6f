"""The settings model (``jobs.settings``) as the Flask app holds it.

``create_app`` reads the settings once; each becomes a key of ``app.config`` (Flask's own
place for them, where extensions look).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask, current_app

from jobs.settings import Settings, get_settings, load, split_tokens


def configure(app: Flask, overrides: Mapping[str, Any] | None = None) -> None:
    """Read the settings (``overrides`` before the environment), refuse an unsafe web, fill
    ``app.config``. Overrides that are not settings (``TESTING``) go to Flask as they are."""
    overrides = dict(overrides or {})
    fields = {name: overrides.pop(name) for name in list(overrides) if name in Settings.model_fields}
    settings = load(**fields) if fields else get_settings()
    settings.check_web()
    app.config.from_mapping(settings.model_dump())
    app.config.from_mapping(overrides)


def api_tokens() -> list[str]:
    """The app's API tokens as its config holds them now."""
    return split_tokens(current_app.config["API_TOKENS"] or "")
