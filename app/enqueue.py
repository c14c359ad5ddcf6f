"""Enqueue a registered task from any Flask route, on the app's Redis."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.redis_client import get_redis
from jobs import submission
from jobs.job import TaskJob
from jobs.registry import Task


def enqueue_task(task: Task | str | Callable[..., Any], args: dict[str, Any] | None = None, **options: Any) -> TaskJob:
    """Validate ``args`` against the task's schema and enqueue one job; returns it.

    ``enqueue_task(demo.sleep, {"seconds": 3})`` or ``enqueue_task("demo.sleep", ...)``.
    Options: ``queue``, ``timeout``, ``delay`` (seconds), ``at`` (datetime), ``depends_on``
    (job ids). Raises ``UnknownTaskError`` or pydantic's ``ValidationError`` before
    anything is written.
    """
    return submission.enqueue(get_redis(), task, args, **options)
