"""Every registered worker as an operator sees it: where it runs, what it does, how it fares.

RQ's worker hash gives most fields; Offload's workers add their memory (``offload_rss``, written
with each heartbeat) and whether a "stop after the current job" is under way. A worker whose
heartbeat is older than ``OFFLOAD_WORKER_HEARTBEAT_MAX_AGE`` is a ghost: its key outlives it
(RQ keeps it ``worker_ttl + 60`` s), but it takes no job.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from redis import Redis
from rq import Worker as RQWorker
from rq.command import send_command
from rq.serializers import JSONSerializer

from jobs.job import TaskJob
from jobs.worker.liveness import heartbeat_age, is_alive

RSS_FIELD = "offload_rss"  # written by jobs.worker.forking's heartbeat: resident memory in bytes
STOPPING_FIELD = "offload_stopping"  # written by jobs.worker.shutdown when asked to stop after its job
STOP_AFTER_JOB = "offload-stop-after-job"  # the command, sent over RQ's worker channel


class UnknownWorkerError(LookupError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no worker named {name!r} is registered")
        self.name = name


@dataclass
class Worker:
    name: str
    hostname: str | None
    pid: int | None
    queues: list[str]
    state: str
    current_job: str | None
    current_job_started_at: datetime | None
    last_heartbeat: datetime | None
    heartbeat_age_seconds: float | None
    alive: bool
    rss_bytes: int | None
    successful_jobs: int
    failed_jobs: int
    birth_date: datetime | None
    version: str
    stopping: bool

    @property
    def ghost(self) -> bool:
        return not self.alive

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ghost": self.ghost}


def workers(redis: Redis) -> list[Worker]:
    """Every registered worker, by name."""
    found = sorted(RQWorker.all(connection=redis, serializer=JSONSerializer), key=lambda worker: worker.name)
    with redis.pipeline(transaction=False) as pipe:
        for worker in found:
            pipe.hmget(worker.key, RSS_FIELD, STOPPING_FIELD)
        extras = pipe.execute()
    current_ids = [worker.get_current_job_id() for worker in found]
    busy = [job_id for job_id in current_ids if job_id]
    jobs = dict(zip(busy, TaskJob.load_many(redis, busy), strict=True))
    views = []
    for worker, (rss, stopping), job_id in zip(found, extras, current_ids, strict=True):
        job = jobs.get(job_id) if job_id else None
        age = heartbeat_age(worker)
        views.append(
            Worker(
                name=worker.name,
                hostname=worker.hostname,
                pid=worker.pid,
                queues=worker.queue_names(),
                state=str(worker.get_state()),
                current_job=job_id,
                current_job_started_at=job.started_at if job is not None else None,
                last_heartbeat=worker.last_heartbeat,
                heartbeat_age_seconds=None if age is None else round(age, 1),
                alive=is_alive(worker),
                rss_bytes=int(rss) if rss else None,
                successful_jobs=worker.successful_job_count,
                failed_jobs=worker.failed_job_count,
                birth_date=worker.birth_date,
                version=worker.version,
                stopping=bool(stopping),
            )
        )
    return views


def find(redis: Redis, name: str) -> Worker:
    for worker in workers(redis):
        if worker.name == name:
            return worker
    raise UnknownWorkerError(name)


def stop_after_job(redis: Redis, name: str) -> Worker:
    """Ask the worker to take no new job and exit once its current one (if any) has finished."""
    worker = find(redis, name)
    send_command(redis, worker.name, STOP_AFTER_JOB)
    return worker
