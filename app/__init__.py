"""Offload's web application: the JSON API, the pages, health checks and the dashboard."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from flask import Flask
from flask.json.provider import DefaultJSONProvider
from werkzeug.middleware.proxy_fix import ProxyFix

from app import auth, dashboard, flask_settings, metrics, redis_client, request_ids
from app.api import api, events
from app.cli import register_commands
from app.domain_problems import register_domain_handlers
from app.health import bp as health_bp
from app.problems import register_error_handlers
from app.security_headers import register_security_headers
from app.web import web
from jobs import logging_config
from jobs.registry import registry


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app from the settings: ``test_config`` first, then the environment, then the defaults."""
    app = Flask(__name__)
    flask_settings.configure(app, test_config)
    trust_proxies(app)
    configure_sessions(app)
    if isinstance(app.json, DefaultJSONProvider):
        app.json.sort_keys = False  # documents keep the order they are built in
    logging_config.configure()

    registry.load()
    register_extensions(app)
    register_blueprints(app)
    register_error_handlers(app)
    register_domain_handlers(app)
    register_security_headers(app)
    register_commands(app)
    return app


def register_extensions(app: Flask) -> None:
    """Every extension, in one place; none depends on the blueprints being registered first."""
    redis_client.init_app(app)
    request_ids.init_app(app)
    metrics.init_app(app)
    auth.init_app(app)
    events.init_app(app)
    dashboard.init_app(app)


def register_blueprints(app: Flask) -> None:
    app.register_blueprint(health_bp)
    app.register_blueprint(metrics.bp)
    app.register_blueprint(api)
    app.register_blueprint(web)


def trust_proxies(app: Flask) -> None:
    """Behind TRUSTED_PROXIES proxies, read the client's address, scheme and host from the
    headers they set (werkzeug's ProxyFix), so that the login and submission limits see the
    real client and CSRF's HTTPS checks see HTTPS. Headers beyond that many hops are ignored."""
    hops = app.config["TRUSTED_PROXIES"]
    if hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops)  # type: ignore[method-assign]


def configure_sessions(app: Flask) -> None:
    """Signed, HttpOnly, SameSite session cookies for the pages (Secure in production)."""
    if not app.config["SECRET_KEY"]:
        # Only outside production (Settings.check_web refuses it there): logins last until a restart.
        app.config["SECRET_KEY"] = secrets.token_hex(32)
        logging.getLogger(__name__).warning("SECRET_KEY is not set: using a random one for this process")
    app.config.update(
        SESSION_COOKIE_NAME="offload_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=app.config["APP_ENV"] == "production",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=app.config["SESSION_HOURS"]),
    )
