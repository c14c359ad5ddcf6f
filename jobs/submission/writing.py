"""Writing prepared calls as RQ jobs: job, queue entry, index entry, first event, in one step."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from redis import Redis
from redis.client import Pipeline
from rq import Retry
from rq.job import JobStatus

from jobs import logging_config
from jobs.connection import text
from jobs.job import TaskJob
from jobs.queues import queue_for
from jobs.records import job_events, job_index, job_metrics, job_search
from jobs.registry import Task
from jobs.submission.admission import Admission, admit_and_write
from jobs.submission.calls import Call, prepare
from jobs.trends import series
from jobs.vocabulary import ACTIVE


def enqueue(
    connection: Redis, task: Task | str | Callable[..., Any], args: dict[str, Any] | None = None, **options: Any
) -> TaskJob:
    """Validate and enqueue one call; returns the job (an existing one for a unique task)."""
    return submit(connection, prepare(task, args, connection=connection, **options))


def submit(connection: Redis, call: Call, admission: Admission | None = None) -> TaskJob:
    """Write one prepared call; a unique task's active twin is returned instead of a new job.

    A refused write leaves a unique task's claim naming a job that does not exist: the next
    call finds it so and takes the claim over.
    """
    if call.task.unique_on:
        existing = claim_unique(connection, call)
        if existing is not None:
            return existing
    return write(connection, [call], admission)[0]


def submit_many(connection: Redis, calls: Sequence[Call], admission: Admission | None = None) -> list[TaskJob]:
    """Write prepared calls in order, the admission counted once (by the write of the plain ones);
    a unique task's call may come back as its active twin."""
    plain = [call for call in calls if not call.task.unique_on]
    written = iter(write(connection, plain, admission)) if plain or admission is not None else iter(())
    return [submit(connection, call) if call.task.unique_on else next(written) for call in calls]


def write(connection: Redis, calls: Sequence[Call], admission: Admission | None = None) -> list[TaskJob]:
    """Write prepared calls: jobs, queue entries, index entries and first events in one atomic step.

    ``admission`` (rate limits, queue caps) is checked in that same step; ``RefusedError``
    means nothing was written. A call with ``depends_on`` goes through RQ's own transaction
    afterwards (it watches the parents); its index entry is written first, so a job never
    exists unlisted.
    """
    jobs = [_build(connection, call) for call in calls]
    plain = [(call, job) for call, job in zip(calls, jobs, strict=True) if not call.depends_on]
    if plain or admission is not None:
        # The pipeline only records the commands (in RQ's transaction mode); _ADMIT_AND_WRITE runs them.
        with connection.pipeline() as pipe:
            pipe.multi()
            with job_metrics.tallied(job_metrics.Tally()) as tally:  # one increment per task, not per job
                for call, job in plain:
                    _write_one(connection, pipe, call, job)
            tally.write(pipe)
            admit_and_write(connection, admission or Admission(), [args for args, _ in pipe.command_stack])
    for call, job in zip(calls, jobs, strict=True):
        if call.depends_on:
            job_metrics.count(connection, "jobs_enqueued", {"task": call.task.name})
            series.record_enqueued(connection, call.task.name, job.origin)
            job_index.add(connection, job.id, job.created_at)
            job_search.add(connection, job.id, job.created_at, call.task.name, job.origin, call.task.redact(call.args))
            queue_for(connection, job.origin).enqueue_job(job)
            job_events.publish_status(connection, job.id, job.get_status(refresh=False).value)
    return jobs


def _build(connection: Redis, call: Call) -> TaskJob:
    task = call.task
    queue = queue_for(connection, call.queue or task.queue)
    job = cast(
        TaskJob,
        queue.create_job(
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
            depends_on=list[Any](call.depends_on) or None,
        ),
    )  # queue_for's queues build TaskJob
    job.origin = queue.name
    job.created_at = datetime.now(UTC)
    return job


def _write_one(connection: Redis, pipe: Pipeline, call: Call, job: TaskJob) -> None:
    queue = queue_for(connection, job.origin)
    job_index.add(pipe, job.id, job.created_at)
    job_search.add(pipe, job.id, job.created_at, call.task.name, job.origin, call.task.redact(call.args))
    job_metrics.count(pipe, "jobs_enqueued", {"task": call.task.name})
    series.record_enqueued(pipe, call.task.name, job.origin)
    at = call.at
    if call.delay is not None:
        at = job.created_at + timedelta(seconds=call.delay)
    if at is not None:
        at = _whole_second_after(at)
        queue.schedule_job(job, at, pipeline=pipe)
        job_events.publish_status(pipe, job.id, "scheduled", scheduled_for=at.isoformat())
    else:
        queue.enqueue_job(job, pipeline=pipe)
        job_events.publish_status(pipe, job.id, JobStatus.QUEUED.value)


def _whole_second_after(at: datetime) -> datetime:
    """RQ keys scheduled jobs by whole seconds and moves a job once its second begins: a job due
    at 12:00:02.7 would start at 12:00:02. Rounding up keeps `delay` and `at` a "not before"."""
    return at if at.microsecond == 0 else at.replace(microsecond=0) + timedelta(seconds=1)


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
        holder_id = text(holder)
        try:
            job = TaskJob.load(connection, holder_id)
            if job.get_status(refresh=False).value in ACTIVE:
                return job
        except Exception:  # noqa: BLE001 - a missing or unreadable holder means the key is free
            pass
        if connection.eval(_REPLACE_IF_SAME, 1, key, holder_id, call.job_id, ttl):
            return None
    raise RuntimeError(f"could not settle uniqueness of {call.task.name} under contention")
