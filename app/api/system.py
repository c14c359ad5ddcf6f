"""GET /api/queues and /api/workers: what operators look at first."""

from __future__ import annotations

from typing import Any

from flask import Blueprint
from rq import Worker
from rq.serializers import JSONSerializer

from app.documents import iso
from app.redis_client import get_queue, get_redis
from jobs.registry import QUEUES

bp = Blueprint("system", __name__)
_REGISTRIES = ("started", "scheduled", "deferred", "finished", "failed", "canceled")


@bp.get("/queues")
def list_queues() -> dict[str, Any]:
    queues = [get_queue(name) for name in QUEUES]
    with get_redis().pipeline(transaction=False) as pipe:
        for queue in queues:
            pipe.llen(queue.key)
            for registry in _REGISTRIES:
                pipe.zcard(getattr(queue, f"{registry}_job_registry").key)
        counts = iter(pipe.execute())
    result = []
    for queue in queues:
        entry: dict[str, Any] = {"name": queue.name, "queued": next(counts)}
        entry.update({registry: next(counts) for registry in _REGISTRIES})
        result.append(entry)
    return {"queues": result}


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
                "birth_date": iso(worker.birth_date),
                "hostname": worker.hostname,
                "pid": worker.pid,
                "successful_jobs": worker.successful_job_count,
                "failed_jobs": worker.failed_job_count,
            }
            for worker in sorted(workers, key=lambda w: w.name)
        ]
    }
