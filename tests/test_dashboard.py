"""/rq (rq-dashboard) renders every value escaped, never unpickles, masks secrets, and links back.

The browser half (markup planted through real paths never runs on any /rq page) is in
tests/test_browser.py; these tests check the layer itself and fail when rq-dashboard changes
the shape it relies on.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import redis
import rq_dashboard
from flask import Flask
from flask.testing import FlaskClient
from jinja2 import Environment
from rq.serializers import JSONSerializer, resolve_serializer

from app.dashboard_templates import _HAND_ESCAPED, ACTION_BUTTONS, EscapingLoader, escaped
from jobs.connection import redacted
from jobs.job import TaskJob
from tests.conftest import AUTH, TOKEN
from tests.test_auth import basic
from tests.test_pages import log_in
from tests.test_worker import enqueue

TEMPLATES = Path(rq_dashboard.__file__).parent / "templates"


def _sources() -> dict[str, str]:
    return {str(path.relative_to(TEMPLATES)): path.read_text() for path in TEMPLATES.rglob("*.html")}


def test_every_interpolation_in_rq_dashboards_templates_is_escaped():
    sources = _sources()
    raw = sum(source.count("<%=") for source in sources.values())
    assert raw > 30, "rq-dashboard's templates changed shape: check app/dashboard_templates.py"
    for name, source in sources.items():
        served = escaped(source)
        assert "<%=" not in served, name
        assert served.count("<%-") == source.count("<%=") + source.count("<%-"), name
    # The two values rq-dashboard escaped by hand are escaped once, not twice.
    assert len(_HAND_ESCAPED.findall(sources["rq_dashboard/jobs.html"])) == 2
    assert '<a class="navbar-brand">RQ-dashboard</a>' in sources["rq_dashboard/navbar.html"]
    # Offload's header goes above rq-dashboard's bar, its stylesheet beside rq-dashboard's, and the
    # instance selector shows the Redis URL redacted: each anchor must still be there to replace.
    assert '{% include "rq_dashboard/navbar.html" %}' in sources["rq_dashboard/base.html"]
    assert 'filename=\'css/main.css\') }}" rel="stylesheet">' in sources["rq_dashboard/base.html"]
    assert "{{ instance }}</option>" in sources["rq_dashboard/navbar.html"]
    assert "instance | redacted_url" in escaped(sources["rq_dashboard/navbar.html"])


def test_the_app_serves_rq_dashboards_templates_through_the_escaping_loader(app: Flask):
    loader = rq_dashboard.blueprint.jinja_loader
    assert isinstance(loader, EscapingLoader)
    source, _, _ = loader.get_source(Environment(), "rq_dashboard/jobs.html")
    assert "<%=" not in source and "<%- d.exc_info %>" in source


def test_the_action_buttons_appear_only_where_actions_are_allowed(redis_url: str, redis_conn: redis.Redis):
    from app import create_app
    from tests.conftest import close_app

    sources = _sources()
    found = {name: len(ACTION_BUTTONS.findall(source)) for name, source in sources.items()}
    assert found["rq_dashboard/jobs.html"] == 3 and found["rq_dashboard/job.html"] == 1, found  # the fence
    config = {"TESTING": True, "REDIS_URL": redis_url, "API_TOKENS": TOKEN, "SECRET_KEY": "test"}
    pages = {}
    for allowed in (False, True):
        app = create_app({**config, "DASHBOARD_ACTIONS": allowed})
        client = app.test_client()
        pages[allowed] = client.get("/rq/0/view/jobs/default/failed/8/asc/1", headers=basic(TOKEN)).get_data(
            as_text=True
        )
        close_app(app)
    assert 'id="requeue-all-btn"' not in pages[False] and 'data-role="delete-job-btn"' not in pages[False]
    assert 'id="read-only"' in pages[False]
    assert 'id="requeue-all-btn"' in pages[True] and 'data-role="delete-job-btn"' in pages[True]
    assert 'id="read-only"' not in pages[True]


def test_rq_dashboard_pages_wear_offloads_header_with_the_way_back(client: FlaskClient):
    assert log_in(client) == (303, "/")
    page = client.get("/rq/").get_data(as_text=True)
    assert '<header class="top">' in page and '<a class="brand" href="/">Offload</a>' in page
    assert 'id="status-line"' in page and "header.css" in page
    assert '<a href="/rq/" aria-current="page">Dashboard</a>' in page


def test_a_redis_password_is_never_shown():
    assert redacted("redis://:s3cret@cache.example:6379/0") == "redis://:***@cache.example:6379/0"
    assert redacted("redis://user:s3cret@cache.example:6379/0") == "redis://user:***@cache.example:6379/0"
    assert redacted("redis://cache.example:6379/0") == "redis://cache.example:6379/0"


def test_the_web_process_never_resolves_rqs_pickle_serializer(app: Flask):
    assert resolve_serializer(None) is JSONSerializer


def _poisoned_job(client: FlaskClient, redis_conn: redis.Redis, marker: Path) -> str:
    """A job whose meta is a pickle that would create ``marker`` when unpickled."""

    class Payload:
        def __reduce__(self) -> tuple:
            return (Path.touch, (marker,))

    job_id = enqueue(client, "tests.fixtures.add", a=1, b=2)
    redis_conn.hset(f"rq:job:{job_id}", "meta", pickle.dumps(Payload()))
    assert not marker.exists()
    return job_id


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/rq/0/view/job/{id}"),
        ("GET", "/rq/0/data/job/{id}.json"),
        ("POST", "/rq/job/{id}/requeue"),
        ("POST", "/rq/job/{id}/delete"),
    ],
)
def test_a_pickle_in_a_jobs_meta_is_never_unpickled_by_the_dashboard(
    app: Flask, client: FlaskClient, redis_conn: redis.Redis, tmp_path: Path, method: str, path: str
):
    app.config["DASHBOARD_ACTIONS"] = True
    marker = tmp_path / "unpickled"
    job_id = _poisoned_job(client, redis_conn, marker)
    headers = {**basic(TOKEN), "Sec-Fetch-Site": "same-origin"}
    response = client.open(path.format(id=job_id), method=method, headers=headers)
    assert not marker.exists(), f"{method} {path} unpickled the job's meta"
    assert response.status_code < 500, response.get_data(as_text=True)[:300]


def test_secret_arguments_are_masked_in_the_call_string_rq_dashboard_shows(
    client: FlaskClient, redis_conn: redis.Redis
):
    response = client.post(
        "/api/jobs",
        json={
            "task": "webhooks.deliver",
            "args": {"url": "http://127.0.0.1:9/hook", "payload": {"a": 1}, "secret": "hunter2-very-secret"},
        },
        headers=AUTH,
    )
    assert response.status_code == 202, response.get_data(as_text=True)
    job = TaskJob.fetch(response.get_json()["id"], connection=redis_conn, serializer=JSONSerializer)
    call = job.get_call_string() or ""
    assert "hunter2" not in call and "**********" in call
    assert "http://127.0.0.1:9/hook" in call


def test_a_job_that_is_gone_is_a_404_on_the_dashboard_not_a_500(client: FlaskClient):
    response = client.get("/rq/0/view/job/no-such-job", headers=basic(TOKEN))
    assert response.status_code == 404
    assert "No such job" in response.get_data(as_text=True)


def test_worker_and_cron_processes_never_resolve_rqs_pickle_serializer(redis_url: str):
    probe = (
        "import jobs.worker.rq_cli_config; from rq.serializers import resolve_serializer as r; print(r(None).__name__)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], env={**os.environ, "REDIS_URL": redis_url}, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "JSONSerializer"
