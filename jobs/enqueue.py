"""Turning calls of registered tasks into RQ jobs: the one way jobs are created.

The web app, the CLI and the cron process all come through here, so every job is
JSON, carries its task name, is listed in the job index and has its first event.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

from redis import Redis
from redis.client import Pipeline
from rq import Queue, Retry
from rq.job import JobStatus
from rq.serializers import JSONSerializer

from jobs import events, logging_config, metrics
from jobs import index as job_index
from jobs.job import TaskJob
from jobs.registry import QUEUES, Task, registry, task_of

ACTIVE = frozenset({"queued", "scheduled", "deferred", "started", "created"})


def queue_for(connection: Redis, name: str) -> Queue:
    """An RQ queue that stores jobs as JSON and runs them as ``TaskJob`` (one per connection and name)."""
    key = (id(connection), name)
    queue = _queues.get(key)
    if queue is None or queue.connection is not connection:
        if len(_queues) >= 64:  # a process has one or two connections; tests make many
            _queues.clear()
        queue = _queues[key] = Queue(name, connection=connection, serializer=JSONSerializer, job_class=TaskJob)
    return queue


# Building a Queue resolves its serializer and job class each time: keep them.
_queues: dict[tuple[int, str], Queue] = {}


REGISTRY_STATES = ("started", "scheduled", "deferred", "finished", "failed", "canceled")


def queue_counts(connection: Redis) -> dict[str, dict[str, int]]:
    """Jobs per queue: waiting (``queued``) and in each of RQ's registries, in one round trip."""
    queues = [queue_for(connection, name) for name in QUEUES]
    with connection.pipeline(transaction=False) as pipe:
        for queue in queues:
            pipe.llen(queue.key)
            for state in REGISTRY_STATES:
                pipe.zcard(getattr(queue, f"{state}_job_registry").key)
        counts = iter(pipe.execute())
    return {queue.name: {state: next(counts) for state in ("queued", *REGISTRY_STATES)} for queue in queues}


def resolve_task(task: Task | str | Callable[..., Any]) -> Task:
    if isinstance(task, Task):
        return task
    if isinstance(task, str):
        return registry.lookup(task)
    return task_of(task)


@dataclass
class Call:
    """One validated call of a task, ready to be written."""

    task: Task
    args: dict[str, Any]
    queue: str | None = None
    timeout: int | None = None
    delay: float | None = None
    at: datetime | None = None
    depends_on: list[str] = field(default_factory=list)
    job_id: str = field(default_factory=lambda: uuid4().hex)
    meta: dict[str, Any] = field(default_factory=dict)


def prepare(
    task: Task | str | Callable[..., Any],
    args: dict[str, Any] | None = None,
    **options: Any,
) -> Call:
    """Validate ``args`` against the task's schema; raises ``UnknownTaskError`` or ``ValidationError``."""
    resolved = resolve_task(task)
    return Call(task=resolved, args=resolved.to_json_args(args or {}), **options)


def enqueue(
    connection: Redis, task: Task | str | Callable[..., Any], args: dict[str, Any] | None = None, **options: Any
) -> TaskJob:
    """Validate and enqueue one call; returns the job (an existing one for a unique task)."""
    return submit(connection, prepare(task, args, **options))


def submit(connection: Redis, call: Call) -> TaskJob:
    """Write one prepared call; a unique task's active twin is returned instead of a new job."""
    if call.task.unique_on:
        existing = claim_unique(connection, call)
        if existing is not None:
            return existing
    return write(connection, [call])[0]


def write(connection: Redis, calls: Sequence[Call]) -> list[TaskJob]:
    """Write prepared calls: jobs, queue entries, index entries and first events in one transaction.

    A call with ``depends_on`` goes through RQ's own transaction (it watches the parents);
    its index entry is written first, so a job never exists unlisted.
    """
    jobs = [_build(connection, call) for call in calls]
    plain = [(call, job) for call, job in zip(calls, jobs, strict=True) if not call.depends_on]
    if plain:
        with connection.pipeline() as pipe:
            pipe.multi()
            with metrics.tallied(metrics.Tally()) as tally:  # one increment per task, not per job
                for call, job in plain:
                    _write_one(connection, pipe, call, job)
            tally.write(pipe)
            pipe.execute()
    for call, job in zip(calls, jobs, strict=True):
        if call.depends_on:
            metrics.count(connection, "jobs_enqueued", {"task": call.task.name})
            job_index.add(connection, job.id, job.created_at)
            queue_for(connection, job.origin).enqueue_job(job)
            events.publish_status(connection, job.id, job.get_status(refresh=False).value)
    return jobs


def _build(connection: Redis, call: Call) -> TaskJob:
    task = call.task
    queue = queue_for(connection, call.queue or task.queue)
    job = queue.create_job(
        task.func_path,
        kwargs=call.args,
        timeout=call.timeout or task.timeout,
        result_ttl=task.result_ttl,
        failure_ttl=task.failure_ttl,
        job_id=call.job_id,
        meta={
            "task": task.name,
            "max_retries": task.retry.max_retries,
            **({"request_id": rid} if (rid := logging_config.request_id.get()) else {}),
            **call.meta,
        },
        retry=_rq_retry(task),
        description=task.name,
        depends_on=call.depends_on or None,
    )
    job.origin = queue.name
    job.created_at = datetime.now(UTC)
    return job


def _write_one(connection: Redis, pipe: Pipeline, call: Call, job: TaskJob) -> None:
    queue = queue_for(connection, job.origin)
    job_index.add(pipe, job.id, job.created_at)
    metrics.count(pipe, "jobs_enqueued", {"task": call.task.name})
    at = call.at
    if call.delay is not None:
        at = job.created_at + timedelta(seconds=call.delay)
    if at is not None:
        queue.schedule_job(job, at, pipeline=pipe)
        events.publish_status(pipe, job.id, "scheduled", scheduled_for=at.isoformat())
    else:
        queue.enqueue_job(job, pipeline=pipe)
        events.publish_status(pipe, job.id, JobStatus.QUEUED.value)


def _rq_retry(task: Task) -> Retry | None:
    if task.retry.max_retries <= 0:
        return None
    return Retry(max=task.retry.max_retries, interval=task.retry.delays())


def unique_key(call: Call) -> str:
    chosen = {name: call.args.get(name) for name in call.task.unique_on}
    digest = hashlib.sha256(json.dumps(chosen, sort_keys=True).encode()).hexdigest()[:32]
    return f"offload:unique:{call.task.name}:{digest}"


# Take over the key only if it still names the job we found ended (compare and set).
_REPLACE_IF_SAME = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  return 1
end
return 0
"""


def claim_unique(connection: Redis, call: Call) -> TaskJob | None:
    """The active job with the same unique arguments, or None once this call owns the key."""
    key, ttl = unique_key(call), max(call.task.timeout * 2, 3600)
    for _ in range(5):
        if connection.set(key, call.job_id, nx=True, ex=ttl):
            return None
        holder = connection.get(key)
        if holder is None:
            continue
        holder_id = holder.decode()
        try:
            job = TaskJob.fetch(holder_id, connection=connection, serializer=JSONSerializer)
            if job.get_status(refresh=False).value in ACTIVE:
                return job
        except Exception:  # noqa: BLE001 - a missing or unreadable holder means the key is free
            pass
        if connection.eval(_REPLACE_IF_SAME, 1, key, holder_id, call.job_id, ttl):
            return None
    raise RuntimeError(f"could not settle uniqueness of {call.task.name} under contention")
