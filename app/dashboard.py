"""rq-dashboard mounted at /rq, on the app's Redis, reading jobs as JSON.

Two rough edges of rq-dashboard 0.9 are worked around here: it needs its own
``RQ_DASHBOARD_REDIS_URL`` key (a bare ``REDIS_URL`` makes it warn), and its workers
view lists workers without a serializer, so a worker busy with a JSON job made it
answer 500. Access is guarded by the app-wide credential check (see ``app.auth``).

rq-dashboard's templates are served escaped (``app.dashboard_templates``), and in the web
process RQ's default serializer is JSON: rq-dashboard's job view, delete and requeue fetch
jobs without naming a serializer, and RQ's default would unpickle a job's meta.

Its actions carry no CSRF token and one of them changes state on GET, while a browser
resends HTTP Basic credentials on cross-site requests: state changes are accepted only
as same-origin POSTs, and only when DASHBOARD_ACTIONS is on (it is off by default:
operators act through the API, whose actions keep Offload's records straight).
"""

from __future__ import annotations

import json
from typing import Any

import rq_dashboard
import rq_dashboard.web
from flask import Flask, Response, current_app, request
from rq import Worker
from rq.exceptions import DeserializationError, InvalidJobOperation, NoSuchJobError
from rq.serializers import JSONSerializer
from rq_dashboard.version import VERSION as RQ_DASHBOARD_VERSION

from app import dashboard_templates
from app.auth import DASHBOARD_PREFIX
from app.config import ConfigError
from jobs.connection import redis_url
from jobs.job import TaskJob, never_unpickle


class JSONWorker(Worker):
    """``Worker`` whose ``all()`` reads workers and their current jobs as JSON."""

    @classmethod
    def all(cls, *args: Any, **kwargs: Any) -> list[Worker]:
        kwargs.setdefault("serializer", JSONSerializer)
        kwargs.setdefault("job_class", TaskJob)
        return super().all(*args, **kwargs)


def _refuse_cross_site_changes() -> Response | None:
    if request.blueprint != "rq_dashboard":
        return None
    if request.endpoint == "rq_dashboard.requeue_all" and request.method != "POST":
        return Response("Requeueing changes state: use POST.\n", 405, {"Allow": "POST"}, mimetype="text/plain")
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return None
    if not current_app.config["DASHBOARD_ACTIONS"]:
        return Response(
            "The dashboard is read-only here: set DASHBOARD_ACTIONS=true to allow requeue, delete and empty.\n",
            403,
            mimetype="text/plain",
        )
    site = request.headers.get("Sec-Fetch-Site")
    origin = request.headers.get("Origin")
    same_origin = site == "same-origin" if site else origin == request.host_url.rstrip("/")
    if not same_origin:
        return Response("Cross-site request refused.\n", 403, mimetype="text/plain")
    return None


# The rq-dashboard release whose templates and module names this module was built against.
RQ_DASHBOARD_BUILT_FOR = "0.9."


def _no_such_job(error: NoSuchJobError) -> Response:
    """rq-dashboard's view of a job that is gone answered 500."""
    if request.blueprint != "rq_dashboard":
        raise error  # not the dashboard's: the app's own error handling answers
    return Response("No such job: it was deleted, or its result expired.\n", 404, mimetype="text/plain")


def _refused_operation(error: InvalidJobOperation) -> Response:
    """rq-dashboard's requeue of a job that is not failed answered 500."""
    if request.blueprint != "rq_dashboard":
        raise error  # not the dashboard's: the app's own error handling answers
    return Response(f"Refused: {error or 'only a failed job can be requeued'}.\n", 409, mimetype="text/plain")


def _unreadable_job(error: Exception) -> Response:
    """A job whose data is not JSON (written by someone else, a pickle say) is refused, not read."""
    if request.blueprint != "rq_dashboard":
        raise error  # not the dashboard's: the app's own error handling answers
    return Response(
        "This job's data cannot be read: it is not JSON, and Offload reads nothing else.\n",
        422,
        mimetype="text/plain",
    )


def init_app(app: Flask) -> None:
    if not RQ_DASHBOARD_VERSION.startswith(RQ_DASHBOARD_BUILT_FOR):
        raise ConfigError(
            f"built for rq-dashboard {RQ_DASHBOARD_BUILT_FOR}x, found {RQ_DASHBOARD_VERSION}: "
            "check app/dashboard.py and app/dashboard_templates.py against it"
        )
    never_unpickle()
    dashboard_templates.install(rq_dashboard.blueprint)
    for unreadable in (DeserializationError, UnicodeDecodeError, json.JSONDecodeError):
        app.register_error_handler(unreadable, _unreadable_job)
    app.register_error_handler(InvalidJobOperation, _refused_operation)
    app.register_error_handler(NoSuchJobError, _no_such_job)
    app.config.setdefault("RQ_DASHBOARD_REDIS_URL", redis_url(app.config["REDIS_URL"]))
    rq_dashboard.web.config.serializer = JSONSerializer
    rq_dashboard.web.Worker = JSONWorker
    rq_dashboard.web.setup_rq_connection(app)
    app.register_blueprint(rq_dashboard.blueprint, url_prefix=DASHBOARD_PREFIX)
    app.before_request(_refuse_cross_site_changes)
