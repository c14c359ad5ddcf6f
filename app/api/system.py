"""GET /api/queues and /api/workers: what operators look at first."""

from __future__ import annotations

from typing import Any

from flask import Blueprint
from rq import Worker
from rq.serializers import JSONSerializer

from app.documents import iso
from app.redis_client import get_redis
from jobs.queues import queue_counts
from jobs.worker.liveness import heartbeat_age, is_alive

bp = Blueprint("system", __name__)


@bp.get("/queues")
def list_queues() -> dict[str, Any]:
    return {"queues": [{"name": name, **counts} for name, counts in queue_counts(get_redis()).items()]}


@bp.get("/workers")
def list_workers() -> dict[str, Any]:
    workers = Worker.all(connection=get_redis(), serializer=JSONSerializer)
    return {
        "workers": [
            {
                "name": worker.name,
                "state": str(worker.get_state()),
                "queues": worker.queue_names(),
                "current_job": worker.get_current_job_id(),
                "last_heartbeat": iso(worker.last_heartbeat),
                "heartbeat_age_seconds": _rounded(heartbeat_age(worker)),
                "alive": is_alive(worker),
                "birth_date": iso(worker.birth_date),
                "hostname": worker.hostname,
                "pid": worker.pid,
                "successful_jobs": worker.successful_job_count,
                "failed_jobs": worker.failed_job_count,
            }
            for worker in sorted(workers, key=lambda w: w.name)
        ]
    }


def _rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 1)
