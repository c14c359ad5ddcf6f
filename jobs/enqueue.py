"""Turning calls of registered tasks into RQ jobs: the one way jobs are created.

The web app, the CLI and the cron process all come through here, so every job is
JSON, carries its task name, is listed in the job index and has its first event.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

from redis import Redis
from redis.client import Pipeline
from redis.commands.core import Script
from rq import Queue, Retry
from rq.job import JobStatus
from rq.serializers import JSONSerializer

from jobs import events, logging_config, metrics
from jobs import index as job_index
from jobs.job import TaskJob
from jobs.registry import Task, registry, task_of
from jobs.settings import get_settings
from jobs.vocabulary import ACTIVE, REGISTRY_STATES


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


def queue_counts(connection: Redis) -> dict[str, dict[str, int]]:
    """Jobs per queue: waiting (``queued``) and in each of RQ's registries, in one round trip."""
    queues = [queue_for(connection, name) for name in get_settings().QUEUES]
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


@dataclass(frozen=True)
class Window:
    """A fixed-window rate limit: at most ``amount`` submissions per ``seconds`` under ``key``."""

    key: str
    amount: int
    seconds: int
    text: str  # "50 per 1 second", for messages


@dataclass(frozen=True)
class Admission:
    """What a submission must pass, checked in the same atomic step that writes its jobs.

    Every window counts one submission (a request, whatever its size); ``adding`` says how
    many jobs go to each queue, which must stay within ``queue_cap`` (0: no cap).
    """

    windows: Sequence[Window] = ()
    queue_cap: int = 0
    adding: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, calls: Sequence[Call], windows: Sequence[Window] = (), queue_cap: int = 0) -> Admission:
        return cls(windows, queue_cap, Counter(call.queue or call.task.queue for call in calls))


class RefusedError(Exception):
    """The admission refused a submission; nothing of it was written."""

    def __init__(self, reason: str, detail: str, retry_after: int | None = None) -> None:
        super().__init__(detail)
        self.reason = reason  # "rate-limited" or "queue-full"
        self.detail = detail
        self.retry_after = retry_after


# The admission checks, then the writes, as one atomic step (a script runs alone, like
# MULTI/EXEC, and nothing is written when a check fails). The writes are the commands that
# RQ and Offload put in a pipeline, passed as data: RQ still decides what a job looks like.
# ARGV: windows (count; key, amount, seconds each), cap, queues (count; key, scheduled
# registry key, adding each),
# commands (count; argc, args... each). Returns {"ok"}, {"rate", window, ttl} or
# {"full", queue, length}.
_ADMIT_AND_WRITE = """
local i = 2
for w = 1, tonumber(ARGV[1]) do
  local key, amount, seconds = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2]
  i = i + 3
  local used = redis.call('INCR', key)
  if used == 1 then redis.call('EXPIRE', key, seconds) end
  if used > amount then return {'rate', w, redis.call('TTL', key)} end
end
local cap = tonumber(ARGV[i])
local queues = tonumber(ARGV[i + 1])
i = i + 2
for q = 1, queues do
  if cap > 0 then  -- jobs waiting in the queue and jobs scheduled for it count alike
    local length = redis.call('LLEN', ARGV[i]) + redis.call('ZCARD', ARGV[i + 1])
    if length + tonumber(ARGV[i + 2]) > cap then return {'full', q, length} end
  end
  i = i + 3
end
for c = 1, tonumber(ARGV[i]) do
  local argc = tonumber(ARGV[i + 1])
  redis.call(unpack(ARGV, i + 2, i + 1 + argc))
  i = i + 1 + argc
end
return {'ok'}
"""
# One Script for every client: EVALSHA by its digest, loaded on the first NOSCRIPT.
_ADMIT_AND_WRITE_SCRIPT = Script(None, _ADMIT_AND_WRITE.encode())


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
            with metrics.tallied(metrics.Tally()) as tally:  # one increment per task, not per job
                for call, job in plain:
                    _write_one(connection, pipe, call, job)
            tally.write(pipe)
            _admit_and_write(connection, admission or Admission(), [args for args, _ in pipe.command_stack])
    for call, job in zip(calls, jobs, strict=True):
        if call.depends_on:
            metrics.count(connection, "jobs_enqueued", {"task": call.task.name})
            job_index.add(connection, job.id, job.created_at)
            queue_for(connection, job.origin).enqueue_job(job)
            events.publish_status(connection, job.id, job.get_status(refresh=False).value)
    return jobs


def _admit_and_write(connection: Redis, admission: Admission, commands: list[tuple[Any, ...]]) -> None:
    argv: list[Any] = [len(admission.windows)]
    for window in admission.windows:
        argv += (window.key, window.amount, window.seconds)
    queues = sorted(admission.adding.items())
    argv += (admission.queue_cap, len(queues))
    for name, adding in queues:
        queue = queue_for(connection, name)
        argv += (queue.key, queue.scheduled_job_registry.key, adding)
    argv.append(len(commands))
    for command in commands:
        argv.append(len(command))
        argv += command
    reply = _ADMIT_AND_WRITE_SCRIPT(args=argv, client=connection)
    answer = [part.decode() if isinstance(part, bytes) else part for part in reply]
    if answer[0] == "rate":
        window = admission.windows[int(answer[1]) - 1]
        wait = max(1, int(answer[2]))
        raise RefusedError("rate-limited", f"this token may submit {window.text}", wait)
    if answer[0] == "full":
        name, length = queues[int(answer[1]) - 1][0], int(answer[2])
        raise RefusedError(
            "queue-full",
            f"queue {name!r} holds {length} jobs, waiting and scheduled (limit {admission.queue_cap}); "
            "try again when workers have caught up",
        )


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
        at = _whole_second_after(at)
        queue.schedule_job(job, at, pipeline=pipe)
        events.publish_status(pipe, job.id, "scheduled", scheduled_for=at.isoformat())
    else:
        queue.enqueue_job(job, pipeline=pipe)
        events.publish_status(pipe, job.id, JobStatus.QUEUED.value)


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
