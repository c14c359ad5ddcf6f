"""The route a user writes without Offload: a Flask view that calls RQ's ``Queue.enqueue`` with the
JSON serializer. Served by the Procfile's gunicorn command (gevent, the same processes), it is the
baseline ``POST /api/jobs`` is measured against in ``make bench``."""

from __future__ import annotations

import os

from flask import Flask
from redis import Redis
from rq import Queue
from rq.serializers import JSONSerializer

from scripts.bench.bench_tasks import noop

PATH = "/jobs"


def create_plain_rq_app() -> Flask:
    app = Flask(__name__)
    queue = Queue("high", connection=Redis.from_url(os.environ["REDIS_URL"]), serializer=JSONSerializer)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post(PATH)
    def enqueue() -> tuple[dict[str, str], int]:
        job = queue.enqueue(noop)
        return {"id": job.id, "status": "queued"}, 202

    return app
