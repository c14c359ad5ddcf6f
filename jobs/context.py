"""What a running task may report about itself, without touching RQ or Flask."""

from __future__ import annotations

import time

from rq import get_current_job

from jobs import events


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
        events.publish(pipe, job.id, "progress", update, job.failure_ttl)
        pipe.execute()
