"""Every queue the app declares, in priority order: counts, latency, throughput, workers, pause.

What the queues page, ``GET /api/queues``, ``flask offload queues`` and ``/metrics`` show: the
counts come from RQ's queues and registries (``jobs.queues.queue_counts``), the latency from the
oldest queued job's ``enqueued_at``, the throughput from the per-minute series the workers write
(``jobs.trends.series``).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from redis import Redis
from rq.job import Job

from jobs.fleet import queue_control
from jobs.fleet.worker_overview import Worker, workers
from jobs.queues import queue_counts, queue_for
from jobs.trends import series

THROUGHPUT_MINUTES = 5
ENDED = ("finished", "failed", "stopped")


@dataclass
class QueueView:
    name: str
    paused_since: float | None  # Unix time; None while the queue runs
    counts: dict[str, int]
    oldest_enqueued_at: datetime | None
    latency_seconds: float | None  # how long the oldest queued job has waited
    ended_recently: dict[str, int]  # per status, over the last THROUGHPUT_MINUTES minutes
    workers: list[str] = field(default_factory=list)  # the live workers that listen to it

    @property
    def paused(self) -> bool:
        return self.paused_since is not None

    @property
    def per_minute(self) -> float:
        return round(sum(self.ended_recently.values()) / THROUGHPUT_MINUTES, 1)

    def as_dict(self) -> dict[str, Any]:
        body = asdict(self)
        del body["paused_since"]
        body["paused"] = self.paused
        body["throughput_per_minute"] = self.per_minute
        body["throughput_minutes"] = THROUGHPUT_MINUTES
        return body


def overview(redis: Redis, fleet: list[Worker] | None = None) -> list[QueueView]:
    counts = queue_counts(redis)
    paused = queue_control.paused_since(redis)
    ended = series.totals_by_scope(redis, [f"q|{name}" for name in counts], THROUGHPUT_MINUTES)
    oldest = _oldest_enqueued(redis, list(counts))
    fleet = workers(redis) if fleet is None else fleet
    now = time.time()
    views = []
    for name, per_state in counts.items():
        enqueued = oldest.get(name)
        views.append(
            QueueView(
                name=name,
                paused_since=paused.get(name),
                counts=per_state,
                oldest_enqueued_at=enqueued,
                latency_seconds=None if enqueued is None else round(max(0.0, now - enqueued.timestamp()), 1),
                ended_recently={status: ended[f"q|{name}"][status] for status in ENDED},
                workers=[worker.name for worker in fleet if worker.alive and name in worker.queues],
            )
        )
    return views


def _oldest_enqueued(redis: Redis, names: list[str]) -> dict[str, datetime]:
    """Per queue, when its first queued job was enqueued (two pipelined round trips)."""
    queues = [queue_for(redis, name) for name in names]
    with redis.pipeline(transaction=False) as pipe:
        for queue in queues:
            pipe.lindex(queue.key, 0)
        heads = pipe.execute()
    waiting = [(queue.name, head.decode()) for queue, head in zip(queues, heads, strict=True) if head]
    if not waiting:
        return {}
    with redis.pipeline(transaction=False) as pipe:
        for _, job_id in waiting:
            pipe.hget(Job.key_for(job_id), "enqueued_at")
        stamps = pipe.execute()
    found = {}
    for (name, _), stamp in zip(waiting, stamps, strict=True):
        if stamp:
            moment = datetime.fromisoformat(stamp.decode())
            found[name] = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return found
