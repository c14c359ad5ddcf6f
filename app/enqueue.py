"""Turning a call of a registered task into an RQ job: the one way jobs are created."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

from rq import Retry

from app import job_index
from app.redis_client import get_queue, get_redis
from jobs.job import TaskJob
from jobs.registry import Task, registry, task_of


def resolve_task(task: Task | str | Callable[..., Any]) -> Task:
    if isinstance(task, Task):
        return task
    if isinstance(task, str):
        return registry.lookup(task)
    return task_of(task)


def enqueue_task(
    task: Task | str | Callable[..., Any],
    args: dict[str, Any] | None = None,
    *,
    queue: str | None = None,
    timeout: int | None = None,
    delay: float | None = None,
    at: datetime | None = None,
    depends_on: list[str] | None = None,
) -> TaskJob:
    """Validate ``args`` against the task's schema and enqueue one job; returns it.

    From any Flask route: ``enqueue_task(demo.sleep, {"seconds": 3})``. Raises
    ``UnknownTaskError`` or pydantic's ``ValidationError`` before anything is written.
    The job, its queue entry and its index entry are written in one transaction.
    """
    task = resolve_task(task)
    json_args = task.to_json_args(args or {})
    created_at = datetime.now(UTC)
    if delay is not None:
        at = created_at + timedelta(seconds=delay)
    rq_queue = get_queue(queue or task.queue)
    job = rq_queue.create_job(
        task.func_path,
        kwargs=json_args,
        timeout=timeout or task.timeout,
        result_ttl=task.result_ttl,
        failure_ttl=task.failure_ttl,
        job_id=uuid4().hex,
        meta={"task": task.name},
        retry=_rq_retry(task),
        description=task.name,
        depends_on=depends_on or None,
    )
    job.created_at = created_at
    redis = get_redis()
    if depends_on:
        # RQ watches the parents inside its own transaction; index first so a job never
        # exists unlisted (an index entry without its job is pruned when met).
        job_index.add(redis, job.id, created_at)
        return rq_queue.enqueue_job(job)
    with redis.pipeline() as pipe:
        pipe.multi()
        job_index.add(pipe, job.id, created_at)
        if at is not None:
            rq_queue.schedule_job(job, at, pipeline=pipe)
        else:
            rq_queue.enqueue_job(job, pipeline=pipe)
        pipe.execute()
    return job


def _rq_retry(task: Task) -> Retry | None:
    if task.retry.max_retries <= 0:
        return None
    return Retry(max=task.retry.max_retries, interval=task.retry.delays())
