"""Offload's web application: the JSON API, health checks and the dashboard."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

from app import auth, config, dashboard, metrics, rate_limits, redis_client, request_ids
from app.api import api, events
from app.cli import register_commands
from app.health import bp as health_bp
from app.problems import register_error_handlers
from app.security_headers import register_security_headers
from jobs import logging_config
from jobs.registry import registry


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app: defaults, then the environment, then ``test_config``."""
    app = Flask(__name__)
    app.config.from_mapping(config.DEFAULTS)
    app.config.from_mapping(config.from_environment())
    if test_config is not None:
        app.config.from_mapping(test_config)
    config.check(app.config)
    if app.config["APP_ENV"] == "production":
        app.config.update(SESSION_COOKIE_SECURE=True, SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax")
    app.json.sort_keys = False
    logging_config.configure()

    registry.load()
    register_extensions(app)
    register_blueprints(app)
    register_error_handlers(app)
    register_security_headers(app)
    register_commands(app)
    return app


def register_extensions(app: Flask) -> None:
    redis_client.init_app(app)
    request_ids.init_app(app)
    metrics.init_app(app)
    auth.init_app(app)
    events.init_app(app)


def register_blueprints(app: Flask) -> None:
    app.register_blueprint(health_bp)
    app.register_blueprint(metrics.bp)
    app.register_blueprint(api)
    rate_limits.init_app(app)
    dashboard.init_app(app)
