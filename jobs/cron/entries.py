"""The cron entries as operators see them: schedule, next run, last runs, and a missed run flagged.

One entry per scheduled task (``@task(cron=...)`` or ``@task(every=...)``), named by the task.
Every run, the cron process's and "run now" alike, is enqueued by ``enqueue_entry`` and listed
in RQ's history of the entry (``rq:cron_job:<name>:jobs``), so the last runs and their outcome
come from the jobs themselves. An entry is *missed* when its next run was due more than half a
period (at most a minute) ago: after its last run, or after the oldest live cron process
started when it never ran.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import rq.cron
from croniter import croniter
from redis import Redis
from rq.cron import CronScheduler, get_cron_job_history_key

from jobs import submission
from jobs.job import TaskJob
from jobs.registry import Task, UnknownTaskError, registry

LAST_RUNS = 5
MAX_GRACE = 60.0


class NotScheduledError(UnknownTaskError):
    """The task exists but has no cron entry (the API answers 404 for it too)."""


@dataclass
class Run:
    job_id: str
    status: str
    enqueued_at: datetime | None
    duration_seconds: float | None
    manual: bool


@dataclass
class Entry:
    name: str
    queue: str
    schedule: str
    next_run: datetime | None
    last_run_at: datetime | None
    runs: list[Run] = field(default_factory=list)
    missed: str | None = None  # why the entry is late, in words


def enqueue_entry(connection: Redis, task: Task, kwargs: dict[str, Any], *, manual: bool = False) -> TaskJob:
    """Enqueue one run of the entry and list it in the entry's history, as RQ's CronJob does."""
    meta: dict[str, Any] = {"cron": task.name, **({"cron_run_now": True} if manual else {})}
    job = submission.enqueue(connection, task, kwargs, meta=meta)
    history = get_cron_job_history_key(task.name)
    with connection.pipeline() as pipe:
        pipe.zadd(history, {job.id: job.created_at.timestamp()})
        pipe.zremrangebyrank(history, 0, -(rq.cron.DEFAULT_CRON_JOB_HISTORY_LIMIT + 1))
        pipe.expire(history, rq.cron.DEFAULT_CRON_JOB_HISTORY_TTL)
        rq.cron.cron_job_registry.add(task.name, pipe, enqueue_timestamp=job.created_at.timestamp())
        pipe.execute()
    return job


def run_now(connection: Redis, name: str) -> TaskJob:
    """Run the entry once, now, besides its schedule."""
    task = scheduled_task(name)
    return enqueue_entry(connection, task, {}, manual=True)


def scheduled_task(name: str) -> Task:
    task = registry.lookup(name)
    if not task.schedule:
        raise NotScheduledError(f"task {name!r} has no cron entry (it runs on demand)")
    return task


def entries(connection: Redis, now: datetime | None = None) -> list[Entry]:
    now = now or datetime.now(UTC)
    tasks = [task for task in registry.all() if task.schedule]
    schedulers = CronScheduler.all(connection)
    started = min((scheduler.created_at for scheduler in schedulers), default=None)
    planned = {job.name: job.next_enqueue_time for scheduler in schedulers for job in scheduler.get_jobs()}
    with connection.pipeline(transaction=False) as pipe:
        for task in tasks:
            pipe.zrange(get_cron_job_history_key(task.name), 0, LAST_RUNS - 1, desc=True, withscores=True)
        histories = pipe.execute()
    found = []
    for task, history in zip(tasks, histories, strict=True):
        ids = [job_id.decode() for job_id, _ in history]
        last = datetime.fromtimestamp(history[0][1], UTC) if history else None
        entry = Entry(
            task.name, task.queue, task.schedule or "", planned.get(task.name) or _next(task, last or now), last
        )
        entry.runs = [_run(job_id, job) for job_id, job in zip(ids, TaskJob.load_many(connection, ids), strict=True)]
        entry.missed = _missed(task, last, started and _utc(started), now, bool(schedulers))
        found.append(entry)
    return found


def _run(job_id: str, job: TaskJob | None) -> Run:
    if job is None:
        return Run(job_id, "expired", None, None, False)
    duration = None
    if job.started_at is not None and job.ended_at is not None:
        duration = round((job.ended_at - job.started_at).total_seconds(), 3)
    manual = bool(isinstance(job.meta, dict) and job.meta.get("cron_run_now"))
    return Run(job_id, job.get_status(refresh=False).value, job.enqueued_at, duration, manual)


def _next(task: Task, after: datetime) -> datetime | None:
    if task.cron:
        return _utc(croniter(task.cron, after).get_next(datetime))
    return after + timedelta(seconds=task.every or 0)


def _period(task: Task, around: datetime) -> float:
    if task.every:
        return float(task.every)
    first = croniter(task.cron, around).get_next(datetime)
    return (croniter(task.cron, first).get_next(datetime) - first).total_seconds()


def _missed(task: Task, last: datetime | None, started: datetime | None, now: datetime, running: bool) -> str | None:
    since = last or started
    if since is None:
        return None  # never ran, and no cron process has run: nothing was due yet
    due = _next(task, since)
    if due is None:
        return None
    grace = min(MAX_GRACE, max(1.0, _period(task, due) / 2))
    late = (now - due).total_seconds()
    if late <= grace:
        return None
    cause = "" if running else "; no cron process is running"
    return f"should have run at {due:%Y-%m-%d %H:%M:%S} UTC ({late:.0f} s ago){cause}"


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
