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
from rq.worker.base import BaseWorker
from rq_dashboard.version import VERSION as RQ_DASHBOARD_VERSION

from app import auditing, dashboard_templates
from app.auth import DASHBOARD_PREFIX
from jobs.connection import redacted, redis_url
from jobs.job import TaskJob, never_unpickle


class JSONWorker(Worker):
    """``Worker`` whose ``all()`` reads workers and their current jobs as JSON."""

    @classmethod
    def all(cls, *args: Any, **kwargs: Any) -> list[BaseWorker]:
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


def _audit_actions(response: Response) -> Response:
    """A change made through the dashboard goes into the audit log like any other operator action."""
    if request.blueprint == "rq_dashboard" and request.method == "POST" and response.status_code < 400:
        endpoint = (request.endpoint or "").removeprefix("rq_dashboard.")
        auditing.record(f"rq {endpoint}", filters={"path": request.path})
    return response


# The rq-dashboard release whose templates and module names this module was built against.
RQ_DASHBOARD_BUILT_FOR = "0.9."


# rq-dashboard answered these with a 500: on its pages they get a status and a reason.
# A job whose data is not JSON (written by someone else, a pickle say) is refused, not read.
_UNREADABLE = (422, "This job's data cannot be read: it is not JSON, and Offload reads nothing else.")
_DASHBOARD_ANSWERS: dict[type[Exception], tuple[int, str]] = {
    DeserializationError: _UNREADABLE,
    UnicodeDecodeError: _UNREADABLE,
    json.JSONDecodeError: _UNREADABLE,
    NoSuchJobError: (404, "No such job: it was deleted, or its result expired."),
    InvalidJobOperation: (409, "Refused: only a failed job can be requeued."),
}


def _dashboard_answer(error: Exception) -> Response:
    if request.blueprint != "rq_dashboard":
        raise error  # not the dashboard's: the app's own error handling answers
    status, text = next(answer for kind, answer in _DASHBOARD_ANSWERS.items() if isinstance(error, kind))
    return Response(f"{text}\n", status, mimetype="text/plain")


def init_app(app: Flask) -> None:
    if not RQ_DASHBOARD_VERSION.startswith(RQ_DASHBOARD_BUILT_FOR):
        raise RuntimeError(
            f"built for rq-dashboard {RQ_DASHBOARD_BUILT_FOR}x, found {RQ_DASHBOARD_VERSION}: "
            "check app/dashboard.py and app/dashboard_templates.py against it"
        )
    never_unpickle()
    dashboard_templates.install(rq_dashboard.blueprint)
    app.add_template_filter(redacted, "redacted_url")
    for kind in _DASHBOARD_ANSWERS:
        app.register_error_handler(kind, _dashboard_answer)
    app.config.setdefault("RQ_DASHBOARD_REDIS_URL", redis_url(app.config["REDIS_URL"]))
    # Its Delete and Empty buttons go with its own switch; the others with app.dashboard_templates.
    app.config.setdefault("RQ_DASHBOARD_DISABLE_DELETE", not app.config["DASHBOARD_ACTIONS"])
    rq_dashboard.web.config.serializer = JSONSerializer
    rq_dashboard.web.Worker = JSONWorker
    rq_dashboard.web.setup_rq_connection(app)
    app.register_blueprint(rq_dashboard.blueprint, url_prefix=DASHBOARD_PREFIX)
    app.before_request(_refuse_cross_site_changes)
    app.after_request(_audit_actions)
