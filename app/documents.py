"""The job document: how the API, the pages and the CLI show a job."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rq.exceptions import DeserializationError
from rq.job import JobStatus
from rq.results import Result

from jobs.job import TaskJob
from jobs.queues import queue_for
from jobs.registry import UnknownTaskError
from jobs.tracebacks import error_from_traceback
from jobs.vocabulary import RAN

# RQ states that the contract folds into "queued": all mean "waiting to be picked up".
_AS_QUEUED = {JobStatus.CREATED.value, JobStatus.RATE_LIMITED.value, JobStatus.READY_TO_ENQUEUE.value}


def status_of(job: TaskJob) -> str:
    raw = job.get_status(refresh=False)
    value = raw.value if isinstance(raw, JobStatus) else str(raw or "queued")
    return "queued" if value in _AS_QUEUED else value


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def task_name(job: TaskJob) -> str | None:
    return job.meta.get("task") or job.func_name


def arguments(job: TaskJob) -> dict[str, Any] | None:
    """The job's arguments as they may be shown: secret ones masked."""
    try:
        args = dict(job.kwargs)
    except (DeserializationError, TypeError, ValueError):
        return None
    try:
        return job.task.redact(args)
    except UnknownTaskError:
        return args


def progress_of(job: TaskJob, status: str) -> dict[str, Any]:
    reported = job.meta.get("progress") or {}
    done, total = reported.get("done"), reported.get("total")
    percent = None
    if isinstance(done, int | float) and isinstance(total, int | float) and total > 0:
        percent = round(min(100.0, max(0.0, done / total * 100)), 1)
    if status == "finished":
        percent = 100.0
    eta = None
    if status == "started" and percent and 0 < percent < 100 and job.started_at is not None:
        started = job.started_at if job.started_at.tzinfo else job.started_at.replace(tzinfo=UTC)
        elapsed = (datetime.now(UTC) - started).total_seconds()
        eta = round(elapsed * (100 - percent) / percent, 1)
    return {"done": done, "total": total, "percent": percent, "message": reported.get("message"), "eta_seconds": eta}


def scheduled_for(job: TaskJob) -> datetime | None:
    """When a scheduled job moves to its queue: its score in the queue's scheduled registry."""
    score = job.connection.zscore(queue_for(job.connection, job.origin).scheduled_job_registry.key, job.id)
    return None if score is None else datetime.fromtimestamp(float(score), UTC)


def attempts_of(job: TaskJob, status: str) -> int:
    """How many times the job started: automatic retries used, manual retries, runs cut off by a
    dead worker (recoveries), and the current run."""
    return job.attempt_number() - (0 if status in RAN else 1)


def attempt_history(job: TaskJob, status: str) -> list[dict[str, Any]]:
    """The job's last attempts (RQ keeps ten results), oldest first: number, outcome, end, error."""
    try:
        results = sorted(job.results(), key=lambda result: result.created_at)
    except Exception:  # noqa: BLE001 - unreadable results show no history rather than no page
        return []
    first = attempts_of(job, status) - len(results) + 1
    names = {Result.Type.SUCCESSFUL: "finished", Result.Type.FAILED: "failed", Result.Type.STOPPED: "stopped",
             Result.Type.RETRIED: "failed, retried"}  # fmt: skip
    return [
        {
            "attempt": first + index,
            "outcome": names.get(result.type, "ended"),
            "ended_at": iso(result.created_at),
            "error": error_from_traceback(result.exc_string) if result.type != Result.Type.SUCCESSFUL else None,
        }
        for index, result in enumerate(results)
    ]


def job_document(job: TaskJob) -> dict[str, Any]:
    """The job as the HTTP contract shows it."""
    status = status_of(job)
    result = error = latest = None
    if status in ("finished", "failed", "stopped"):
        latest = job.latest_result()
        if latest is not None and latest.type == Result.Type.SUCCESSFUL:
            result = latest.return_value
        elif latest is not None:
            error = error_from_traceback(latest.exc_string)
    base = f"/api/jobs/{job.id}"
    links = {"self": base, "events": f"{base}/events", "logs": f"{base}/logs"}
    if job.meta.get("artifact"):
        links["artifact"] = f"{base}/artifact"
    return {
        "id": job.id,
        "task": task_name(job),
        "args": arguments(job),
        "queue": job.origin,
        "status": status,
        "progress": progress_of(job, status),
        "result": result,
        "error": error,
        "created_at": iso(job.created_at),
        "enqueued_at": iso(job.enqueued_at),
        "scheduled_for": iso(scheduled_for(job)) if status == "scheduled" else None,
        "started_at": iso(job.started_at),
        # A stopped job's end is recorded only on its result.
        "ended_at": iso(job.ended_at or (latest.created_at if latest is not None else None)),
        "attempts": attempts_of(job, status),
        "retries_left": job.retries_left or 0,
        # How often the job was put back because its worker died (see jobs.worker.recovery).
        "recoveries": int(job.meta.get("recoveries", 0)),
        "worker": job.worker_name or None,
        "depends_on": list(job._dependency_ids),  # restored with the job: no extra round trip
        "links": links,
    }
