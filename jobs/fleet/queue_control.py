"""Steer one queue: pause it, resume it, empty it.

A paused queue's jobs stay queued and no worker starts them.

The paused queues are a Redis hash (name → when it was paused), so a pause outlives every
process that reads it (web, workers, cron) and is seen by all of them at once. Every Offload
worker checks it at each claim: the in-process worker inside ``record_and_take.lua``
(atomically with taking the job), the forking worker before and after RQ's dequeue. A paused
queue still accepts jobs.
"""

from __future__ import annotations

import time

from redis import Redis

from jobs import lifecycle
from jobs.bulk import Outcome
from jobs.connection import text
from jobs.job import TaskJob
from jobs.queues import queue_for
from jobs.settings import get_settings

PAUSED_KEY = "offload:queues:paused"
# While a queue is paused, an idle worker looks again this often, so that a resume takes effect.
PAUSE_CHECK_EVERY = 1


class UnknownQueueError(LookupError):
    """The app declares no queue of that name (``QUEUES``)."""

    def __init__(self, name: str) -> None:
        queues = ", ".join(get_settings().QUEUES)
        super().__init__(f"no queue named {name!r}; the queues are {queues}")
        self.name = name


def declared(name: str) -> str:
    """``name`` if the app declares that queue, else ``UnknownQueueError``."""
    if name not in get_settings().QUEUES:
        raise UnknownQueueError(name)
    return name


def pause(redis: Redis, name: str) -> bool:
    """Pause the queue; False if it was paused already (it keeps the time it was first paused)."""
    return bool(redis.hsetnx(PAUSED_KEY, declared(name), repr(time.time())))


def resume(redis: Redis, name: str) -> bool:
    """Resume the queue; False if it was not paused."""
    return bool(redis.hdel(PAUSED_KEY, declared(name)))


def paused(redis: Redis) -> set[str]:
    """The names of the paused queues (any name, declared or not: a worker may listen to others)."""
    return {text(name) for name in redis.hkeys(PAUSED_KEY)}


def paused_since(redis: Redis) -> dict[str, float]:
    """The paused queues, each with the Unix time it was paused."""
    return {text(name): float(at) for name, at in redis.hgetall(PAUSED_KEY).items()}


def waiting(redis: Redis, name: str) -> int:
    """Jobs waiting in the queue (``UnknownQueueError`` for a queue the app lacks)."""
    return queue_for(redis, declared(name)).count


def empty(redis: Redis, name: str) -> Outcome:
    """Delete the jobs waiting in the queue, at most ``BULK_MAX_JOBS`` a call (``more`` says if
    some are left). A job that started meanwhile is skipped, with the reason."""
    queue = queue_for(redis, declared(name))
    outcome = Outcome("empty", matched=queue.count)
    limit = get_settings().BULK_MAX_JOBS
    job_ids = queue.get_job_ids(0, limit)
    for job_id, job in zip(job_ids, TaskJob.load_many(redis, job_ids), strict=True):
        if job is None:  # its hash expired or was deleted: only the id was left in the queue
            redis.lrem(queue.key, 0, job_id)
            outcome.done += 1
            continue
        try:
            lifecycle.cancel(redis, job, reason="its queue was emptied")
            lifecycle.forget(redis, job)
        except lifecycle.JobStateError as refused:
            outcome.skipped[str(refused)] += 1
        else:
            outcome.done += 1
    outcome.more = outcome.matched > len(job_ids)
    return outcome
