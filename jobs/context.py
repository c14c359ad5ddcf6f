"""What a running task may report about itself, without touching RQ or Flask."""

from __future__ import annotations

import time

from redis import Redis
from rq import get_current_job

from jobs.records import job_events


def progress(done: float, total: float | None = None, message: str | None = None) -> None:
    """Record how far the current job has come; every reader of the job sees it.

    Outside a job (a task called directly, in a test or a shell) it does nothing.
    """
    job = get_current_job()
    if job is None:
        return
    update = {"done": done, "total": total, "message": message, "at": time.time()}
    job.meta["progress"] = update
    with job.connection.pipeline(transaction=False) as pipe:
        pipe.hset(job.key, "meta", job.serializer.dumps(job.meta))
        job_events.publish(pipe, job.id, "progress", update, job.failure_ttl)
        pipe.execute()


def current_job_id() -> str | None:
    """The running job's id (a natural delivery id for idempotent side effects), or None."""
    job = get_current_job()
    return job.id if job is not None else None


def connection() -> Redis:
    """The running job's Redis connection, for tasks that read inputs kept there (uploads)."""
    job = get_current_job()
    if job is None:
        raise RuntimeError("no job is running: pass data to the task directly when calling it outside a worker")
    return job.connection
