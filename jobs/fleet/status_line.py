"""The line at the top of every page: is Redis there, who works each queue, what is paused, what failed,
which alerts fire.

Each part links to the page that explains it; ``GET /api/status`` answers the same.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from redis import Redis
from redis.exceptions import RedisError

from jobs.alerts import evaluation
from jobs.fleet import queue_control
from jobs.fleet.worker_overview import workers
from jobs.settings import get_settings
from jobs.trends import series


@dataclass
class StatusLine:
    redis_ok: bool
    workers_per_queue: dict[str, int] = field(default_factory=dict)  # live workers listening, per queue
    paused: list[str] = field(default_factory=list)
    failed_last_hour: int = 0
    firing: list[str] = field(default_factory=list)  # the alerts firing now
    alerts_evaluated: bool = True  # False when no cron process has evaluated the alerts lately

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
        names = get_settings().QUEUES
        failed = series.totals(redis, series.scopes(queues=names), 60)["failed"]
        firing = sorted(name for name, alert in evaluation.read_state(redis).items() if alert.state == "firing")
        evaluated = not evaluation.evaluation_is_stale(redis)
    except RedisError:
        return StatusLine(redis_ok=False)
    return StatusLine(
        redis_ok=True,
        workers_per_queue={name: sum(1 for worker in fleet if name in worker.queues) for name in names},
        paused=[name for name in names if name in paused],
        failed_last_hour=failed,
        firing=firing,
        alerts_evaluated=evaluated,
    )
