"""The line at the top of every page: is Redis there, who works each queue, what is paused, what failed.

Each part links to the page that explains it; ``GET /api/status`` answers the same.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from redis import Redis
from redis.exceptions import RedisError

from jobs.fleet import queue_control
from jobs.fleet.worker_overview import workers
from jobs.records import job_metrics
from jobs.settings import get_settings


@dataclass
class StatusLine:
    redis_ok: bool
    workers_per_queue: dict[str, int] = field(default_factory=dict)  # live workers listening, per queue
    paused: list[str] = field(default_factory=list)
    failed_last_hour: int = 0

    @property
    def unworked(self) -> list[str]:
        """Queues no live worker listens to."""
        return [name for name, count in self.workers_per_queue.items() if not count]

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "unworked": self.unworked}


def status_line(redis: Redis) -> StatusLine:
    try:
        fleet = [worker for worker in workers(redis) if worker.alive]
        paused = queue_control.paused(redis)
        recent = job_metrics.read_recent(redis, 60)
    except RedisError:
        return StatusLine(redis_ok=False)
    names = get_settings().QUEUES
    return StatusLine(
        redis_ok=True,
        workers_per_queue={name: sum(1 for worker in fleet if name in worker.queues) for name in names},
        paused=[name for name in names if name in paused],
        failed_last_hour=sum(count for (_, status), count in recent.items() if status == "failed"),
    )
