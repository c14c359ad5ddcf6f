"""What the charts and ``GET /api/stats`` show: one range of the series, for all jobs, a task or a queue."""

from __future__ import annotations

from typing import Any

from redis import Redis

from jobs.registry import registry
from jobs.settings import get_settings
from jobs.submission.calls import check_queue
from jobs.trends import series


def stats(redis: Redis, range_name: str = "hour", task: str | None = None, queue: str | None = None) -> dict[str, Any]:
    """Raises ``UnknownTaskError`` for a task the registry lacks, ``InvalidCall`` for a queue the app lacks."""
    if task:
        registry.lookup(task)
    check_queue(queue, ("query", "queue"))
    scope = series.scopes(task=task, queue=queue, queues=get_settings().QUEUES)
    points = series.read(redis, range_name, scope)
    return {
        "range": range_name,
        "step_seconds": series.RANGES[range_name][2],
        "task": task or None,
        "queue": queue or None,
        "points": [point.as_dict() for point in points],
    }
