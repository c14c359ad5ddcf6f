"""The fleet from the API: queues (pause, resume, empty), workers (stop after the current job), the status line."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from app import auditing
from app.fleet_documents import queue_document, worker_document
from app.redis_client import get_redis
from jobs.fleet import queue_control, queue_overview, status_line, worker_overview

bp = Blueprint("fleet", __name__)


@bp.get("/queues")
def list_queues() -> dict[str, Any]:
    return {"queues": [queue_document(queue) for queue in queue_overview.overview(get_redis())]}


@bp.post("/queues/<name>/pause")
def pause_queue(name: str) -> dict[str, Any]:
    changed = queue_control.pause(get_redis(), name)
    auditing.record("pause queue", filters={"queue": name}, done=int(changed))
    return {"queue": name, "paused": True, "changed": changed}


@bp.post("/queues/<name>/resume")
def resume_queue(name: str) -> dict[str, Any]:
    changed = queue_control.resume(get_redis(), name)
    auditing.record("resume queue", filters={"queue": name}, done=int(changed))
    return {"queue": name, "paused": False, "changed": changed}


@bp.post("/queues/<name>/empty")
def empty_queue(name: str) -> dict[str, Any]:
    outcome = queue_control.empty(get_redis(), name)
    auditing.record("empty queue", filters={"queue": name}, done=outcome.done, skipped=sum(outcome.skipped.values()))
    return outcome.as_dict()


@bp.get("/workers")
def list_workers() -> dict[str, Any]:
    return {"workers": [worker_document(worker) for worker in worker_overview.workers(get_redis())]}


@bp.post("/workers/<name>/stop")
def stop_worker(name: str) -> tuple[dict[str, Any], int]:
    worker = worker_overview.stop_after_job(get_redis(), name)
    auditing.record("stop worker", filters={"worker": name})
    return {**worker_document(worker), "stopping": True}, 202


@bp.get("/status")
def status() -> dict[str, Any]:
    return status_line.status_line(get_redis()).as_dict()
