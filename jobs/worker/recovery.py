"""A job whose worker died runs again, instead of failing for a reason that is not the task's.

RQ's own cleanup fails a job whose worker died (``AbandonedJobError``) unless the task has
retries left. Offload's promise is stronger, as Sidekiq Pro's super_fetch and BullMQ's stalled
jobs keep it: a job cut off by a crash runs again, whatever its retry policy, up to
OFFLOAD_MAX_RECOVERIES times (counted in the job's meta as ``recoveries``); after that it
fails with ``WorkerLostError``, so a job that kills its worker every time (a poison pill)
does not take down the fleet forever.

A worker counts as dead when its record is gone, says it died, or its last heartbeat is older
than its heartbeat interval plus OFFLOAD_HEARTBEAT_GRACE. A running job is recovered only
when both its execution's heartbeat and its worker's are that stale, so a live job is never
run twice. RQ's registry entries keep RQ's own 60 s margin past each heartbeat, so RQ's
cleanup (run by any reader of the started registry) only sees a dead job long after this
module has put it back. Runs from every worker's maintenance pass, under a lock.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from uuid import uuid4

from redis import Redis
from rq.exceptions import NoSuchJobError
from rq.executions import Execution
from rq.job import JobStatus
from rq.job_lifecycle import record_job_failure
from rq.queue import Queue
from rq.rate_limit import release_slot
from rq.registry import StartedJobRegistry
from rq.serializers import JSONSerializer
from rq.utils import utcparse
from rq.worker import Worker as RQWorker

from jobs.connection import text
from jobs.job import TaskJob
from jobs.lifecycle import cancel_dependents
from jobs.records import job_events
from jobs.settings import get_settings

log = logging.getLogger(__name__)
LOCK_KEY = "offload:recovery:lock"


class WorkerLostError(Exception):
    """The worker running this job died more often than OFFLOAD_MAX_RECOVERIES allows."""


@dataclass
class Recovered:
    """What one pass did: jobs re-queued, jobs failed for good."""

    requeued: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def worker_is_dead(connection: Redis, worker_name: str, stale_after: float, now: float | None = None) -> bool:
    """True when the worker's record is gone, says it died, or its heartbeat is older than ``stale_after``."""
    death, beat = connection.hmget(RQWorker.redis_worker_namespace_prefix + worker_name, "death", "last_heartbeat")
    if death is not None or beat is None:
        return True
    return (now or time.time()) - _timestamp(text(beat)) > stale_after


def _timestamp(utc: str) -> float:
    return utcparse(utc).timestamp()


def recover(
    connection: Redis,
    queues: list[str],
    *,
    worker_stale_after: float,
    job_stale_after: float,
    max_recoveries: int | None = None,
) -> Recovered:
    """One recovery pass over ``queues``; does nothing while another process holds the lock."""
    allowed = get_settings().OFFLOAD_MAX_RECOVERIES if max_recoveries is None else max_recoveries
    token = uuid4().hex
    if not connection.set(LOCK_KEY, token, nx=True, px=60_000):
        return Recovered()
    try:
        done = Recovered()
        now = time.time()
        for name in queues:
            _recover_running(connection, name, worker_stale_after, job_stale_after, allowed, now, done)
        return done
    finally:
        if connection.get(LOCK_KEY) == token.encode():
            connection.delete(LOCK_KEY)


def _recover_running(
    connection: Redis,
    queue_name: str,
    worker_stale_after: float,
    job_stale_after: float,
    max_recoveries: int,
    now: float,
    done: Recovered,
) -> None:
    registry = StartedJobRegistry(queue_name, connection=connection, job_class=TaskJob, serializer=JSONSerializer)
    members: list[bytes] = connection.zrange(registry.key, 0, -1)  # type: ignore[assignment]  # no scores asked
    for member in members:
        job_id, _, execution_id = text(member).partition(":")
        if not execution_id:
            continue
        execution = Execution(execution_id, job_id, connection)
        worker_name, beat = connection.hmget(execution.key, "worker_name", "last_heartbeat")
        if beat is not None and now - float(beat) <= job_stale_after:
            continue
        if worker_name is not None and not worker_is_dead(connection, text(worker_name), worker_stale_after, now):
            continue
        execution.worker_name = text(worker_name) if worker_name else ""
        try:
            job = TaskJob.load(connection, job_id)
        except NoSuchJobError:
            connection.zrem(registry.key, member)
            continue
        if job.get_status(refresh=False) != JobStatus.STARTED:
            continue  # an entry left behind by an ended job: RQ's cleanup removes it
        _requeue_or_fail(connection, job, execution, max_recoveries, done)


def _requeue_or_fail(
    connection: Redis, job: TaskJob, execution: Execution, max_recoveries: int, done: Recovered
) -> None:
    recoveries = int(job.meta.get("recoveries", 0))
    with connection.pipeline() as pipe:
        execution.delete(job, pipe)
        if recoveries < max_recoveries:
            job.meta["recoveries"] = recoveries + 1
            pipe.hset(job.key, "meta", job.serializer.dumps(job.meta))
            job.set_status(JobStatus.QUEUED, pipeline=pipe)
            pipe.lpush(Queue.redis_queue_namespace_prefix + job.origin, job.id)  # the front, as a hand-back
            reason = "recovered: its worker died"
            job_events.publish_status(pipe, job.id, "queued", reason=reason, recoveries=recoveries + 1)
            pipe.execute()
            done.requeued.append(job.id)
            log.warning("job %s re-queued: its worker died (recovery %d of %d)", job.id, recoveries + 1, max_recoveries)
            return
        message = (
            f"the worker running this job died {recoveries + 1} times "
            f"(recovered {recoveries} times; OFFLOAD_MAX_RECOVERIES={max_recoveries})"
        )
        record_job_failure(job, f"{WorkerLostError.__module__}.{WorkerLostError.__name__}: {message}", pipe)
        job_events.publish_end(pipe, job.id, "failed", job.failure_ttl or job_events.DEFAULT_TTL)
        job.record_end("failed", pipe)
        pipe.execute()
    done.failed.append(job.id)
    log.error("job %s failed: %s", job.id, message)
    cancel_dependents(connection, job, f"parent {job.id} failed")
    release_slot(job)
