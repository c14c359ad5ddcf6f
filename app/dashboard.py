"""rq-dashboard mounted at /rq, on the app's Redis, reading jobs as JSON.

Two rough edges of rq-dashboard 0.9 are worked around here: it needs its own
``RQ_DASHBOARD_REDIS_URL`` key (a bare ``REDIS_URL`` makes it warn), and its workers
view lists workers without a serializer, so a worker busy with a JSON job made it
answer 500. Access is guarded by the app-wide credential check (see ``app.auth``).
"""

from __future__ import annotations

from typing import Any

import rq_dashboard
import rq_dashboard.web
from flask import Flask
from rq import Worker
from rq.serializers import JSONSerializer

from jobs.job import TaskJob


class JSONWorker(Worker):
    """``Worker`` whose ``all()`` reads workers and their current jobs as JSON."""

    @classmethod
    def all(cls, *args: Any, **kwargs: Any) -> list[Worker]:
        kwargs.setdefault("serializer", JSONSerializer)
        kwargs.setdefault("job_class", TaskJob)
        return super().all(*args, **kwargs)


def init_app(app: Flask) -> None:
    app.config.setdefault("RQ_DASHBOARD_REDIS_URL", app.config["REDIS_URL"])
    rq_dashboard.web.config.serializer = JSONSerializer
    rq_dashboard.web.Worker = JSONWorker
    rq_dashboard.web.setup_rq_connection(app)
    app.register_blueprint(rq_dashboard.blueprint, url_prefix="/rq")
