"""Security on by default: every route but the health checks needs a credential."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from jobs.settings import SettingsError
from tests.conftest import AUTH, TOKEN

PUBLIC = {"/healthz", "/readyz", "/login", "/logout", "/static/x"}


def concrete_paths(app: Flask) -> list[tuple[str, str]]:
    """Every rule of the URL map, with sample values for its variables, and one method."""
    samples = {"instance_number": "0", "per_page": "8", "page": "1", "order": "asc", "registry_name": "queued"}
    found = []
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", lambda m: samples.get(m.group(1), "x"), rule.rule)
        methods = sorted(rule.methods - {"HEAD", "OPTIONS"})
        found.append((path, methods[0]))
    return found


def basic(password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"user:{password}".encode()).decode()}


def test_the_auth_matrix_covers_every_route(app: Flask, client: FlaskClient):
    """API routes answer 401 problem+json; pages and the dashboard send people to the login page."""
    app.config["DASHBOARD_ACTIONS"] = True
    routes = concrete_paths(app)
    assert len(routes) > 20
    for path, method in routes:
        if path in PUBLIC:
            assert client.open(path, method=method).status_code not in (401, 403, 500), path
            continue
        api = path.startswith("/api") or path == "/metrics"
        anonymous = client.open(path, method=method)
        wrong = client.open(path, method=method, headers=basic("wrong") if not api else {"Authorization": "Bearer no"})
        anonymous.close()
        wrong.close()
        for response in (anonymous, wrong):
            if api:
                assert response.status_code == 401, (path, method)
                assert "WWW-Authenticate" in response.headers
                assert response.mimetype == "application/problem+json"
            else:
                assert response.status_code == 302, (path, method)
                assert response.location.startswith("/login?next="), (path, method)
        good = basic(TOKEN) if path.startswith("/rq") else AUTH
        if not api and not path.startswith("/rq"):
            continue  # pages take a session only: see tests/test_pages.py
        origin = {"Origin": "http://localhost"}
        allowed = client.open(path, method=method, headers={**good, **origin}, json={} if method == "POST" else None)
        allowed.close()
        assert allowed.status_code not in (401, 403), (path, method, allowed.status_code)


def test_a_token_is_a_bearer_credential_only(client: FlaskClient):
    assert client.get("/api/tasks", headers={"Authorization": TOKEN}).status_code == 401
    assert client.get("/api/tasks", headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401
    assert client.get("/api/tasks", headers={"Authorization": f"bearer {TOKEN}"}).status_code == 200


def test_several_tokens_may_be_configured(redis_url: str):
    app = create_app({"REDIS_URL": redis_url, "API_TOKENS": " first , second "})
    client = app.test_client()
    assert client.get("/api/tasks", headers={"Authorization": "Bearer second"}).status_code == 200
    assert client.get("/api/tasks", headers={"Authorization": "Bearer first"}).status_code == 200
    assert client.get("/api/tasks", headers={"Authorization": "Bearer third"}).status_code == 401


def test_no_tokens_configured_means_nobody_gets_in(redis_url: str):
    client = create_app({"REDIS_URL": redis_url, "API_TOKENS": ""}).test_client()
    assert client.get("/api/tasks", headers={"Authorization": "Bearer "}).status_code == 401


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"API_TOKENS": "a-long-enough-token-123"}, "refusing to start in production without SECRET_KEY"),
        ({"SECRET_KEY": "s"}, "refusing to start in production without API_TOKENS"),
        ({}, "without SECRET_KEY and API_TOKENS"),
        ({"SECRET_KEY": "s" * 32, "API_TOKENS": "short"}, "an API token shorter than 16 characters"),
        ({"SECRET_KEY": "s" * 32, "API_TOKENS": " , "}, "API_TOKENS holds no token"),
        ({"SECRET_KEY": "x", "API_TOKENS": "a-long-enough-token-123"}, "SECRET_KEY shorter than 32 characters"),
        (
            {"SECRET_KEY": "s" * 32, "API_TOKENS": "a-long-enough-token-123", "ADMIN_PASSWORD": "1"},
            "ADMIN_PASSWORD shorter than 12 characters",
        ),
    ],
)
def test_production_refuses_to_start_without_secrets(redis_url: str, settings: dict, message: str):
    with pytest.raises(SettingsError, match=message) as caught:
        create_app({"REDIS_URL": redis_url, "APP_ENV": "production", "API_TOKENS": "", **settings})
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("environment", ["Production", "prod", "staging", ""])
def test_an_unknown_app_env_is_refused_not_run_as_development(redis_url: str, environment: str):
    with pytest.raises(
        SettingsError, match=f"^APP_ENV={environment!r}: Input should be 'development' or 'production'$"
    ):
        create_app({"REDIS_URL": redis_url, "APP_ENV": environment})


PRODUCTION = {"APP_ENV": "production", "SECRET_KEY": "k" * 32, "API_TOKENS": "a-production-token-123"}


def test_strong_production_settings_start(redis_url: str):
    settings = {**PRODUCTION, "API_TOKENS": " a-production-token-123 , ", "ADMIN_PASSWORD": "a-long-password"}
    app = create_app({"REDIS_URL": redis_url, **settings})
    assert app.test_client().get("/healthz").status_code == 200


def test_no_redis_url_is_a_clear_start_up_error():
    with pytest.raises(SettingsError, match="REDIS_URL is not set"):
        create_app({"REDIS_URL": None})


def test_security_headers_are_set(client: FlaskClient):
    response = client.get("/api/tasks", headers=AUTH)
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["Referrer-Policy"] == "same-origin"


def test_dashboard_actions_are_off_unless_configured(client: FlaskClient):
    same_origin = {**basic(TOKEN), "Origin": "http://localhost"}
    refused = client.post("/rq/job/abc/delete", headers=same_origin)
    assert refused.status_code == 403
    assert "DASHBOARD_ACTIONS=true" in refused.get_data(as_text=True)


def test_dashboard_refuses_state_changes_by_get_or_from_other_sites(app: Flask, client: FlaskClient):
    app.config["DASHBOARD_ACTIONS"] = True
    assert client.get("/rq/requeue/default", headers=basic(TOKEN)).status_code == 405
    cross = client.post("/rq/job/abc/delete", headers={**basic(TOKEN), "Origin": "https://evil.example"})
    assert cross.status_code == 403
    no_origin = client.post("/rq/job/abc/delete", headers=basic(TOKEN))
    assert no_origin.status_code == 403
    fetch_site = client.post("/rq/job/abc/delete", headers={**basic(TOKEN), "Sec-Fetch-Site": "cross-site"})
    assert fetch_site.status_code == 403


def test_production_sends_hsts_and_secure_cookies(redis_url: str):
    app = create_app({"REDIS_URL": redis_url, **PRODUCTION})
    assert (app.config["SESSION_COOKIE_SECURE"], app.config["SESSION_COOKIE_HTTPONLY"]) == (True, True)
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"
    response = app.test_client().get("/healthz")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=31536000")


def _tasks_in(env: dict[str, str]) -> set[str]:
    """The task names a fresh process registers under ``env``."""
    probe = "import json; from jobs.registry import registry; print(json.dumps([t.name for t in registry.all()]))"
    environ = {key: value for key, value in os.environ.items() if key not in ("APP_ENV", "OFFLOAD_DEMO_TASKS")}
    done = subprocess.run(
        [sys.executable, "-c", probe], env={**environ, **env}, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout))


@pytest.mark.parametrize(
    ("env", "demo"),
    [
        ({}, True),
        ({"APP_ENV": "production"}, False),
        ({"APP_ENV": "production", "OFFLOAD_DEMO_TASKS": "on"}, True),
        ({"OFFLOAD_DEMO_TASKS": "0"}, False),
    ],
)
def test_demo_tasks_load_only_where_asked_for(env: dict[str, str], demo: bool):
    tasks = _tasks_in(env)
    assert {"mail.send", "webhooks.deliver", "images.thumbnail"} <= tasks  # the real tasks always load
    demos = {name for name in tasks if name.startswith("demo.")}
    assert demos == ({"demo.sleep", "demo.fail", "demo.flaky", "demo.noop"} if demo else set())


def test_the_worker_refuses_an_unknown_app_env_in_one_line(redis_url: str):
    environ = {**os.environ, "REDIS_URL": redis_url, "APP_ENV": "prod"}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "rq"), "worker", "--config", "jobs.worker.rq_cli_config", "--burst"],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == "APP_ENV='prod': Input should be 'development' or 'production'"
