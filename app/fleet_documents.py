"""The fleet as JSON documents: what the API answers and the CLI prints with ``--json``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from app.documents import iso
from jobs.cron.entries import Entry
from jobs.fleet.queue_overview import QueueView
from jobs.fleet.worker_overview import Worker


def queue_document(queue: QueueView) -> dict[str, Any]:
    body = queue.as_dict()
    counts = body.pop("counts")
    body["oldest_enqueued_at"] = iso(queue.oldest_enqueued_at)
    return {"name": body.pop("name"), **counts, **body}


def worker_document(worker: Worker, now: datetime | None = None) -> dict[str, Any]:
    body = worker.as_dict()
    started = worker.current_job_started_at
    now = now or datetime.now(UTC)
    body["current_job_seconds"] = None if started is None else round((now - _aware(started)).total_seconds(), 1)
    for name in ("current_job_started_at", "last_heartbeat", "birth_date"):
        body[name] = iso(body[name])
    return body


def cron_document(entry: Entry) -> dict[str, Any]:
    return {
        "name": entry.name,
        "queue": entry.queue,
        "schedule": entry.schedule,
        "next_run": iso(entry.next_run),
        "last_run_at": iso(entry.last_run_at),
        "runs": [
            {
                "job_id": run.job_id,
                "status": run.status,
                "enqueued_at": iso(run.enqueued_at),
                "duration_seconds": run.duration_seconds,
                "manual": run.manual,
            }
            for run in entry.runs
        ],
        "missed": entry.missed,
    }


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
