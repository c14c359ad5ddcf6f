"""Is a worker alive? Judged by the age of its last heartbeat, not by its key still existing.

RQ keeps a worker's key for ``worker_ttl + 60`` seconds after its last heartbeat, so a frozen or
cut-off worker looked alive for a minute and a half. An Offload worker beats at least every
``worker_ttl - 15`` seconds while idle (15 s with the Procfile's ``--worker-ttl 30``) and every
job-monitoring interval while busy; three missed idle beats mean it is gone.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from jobs.settings import get_settings


def heartbeat_age(worker: Any, now: datetime | None = None) -> float | None:
    """Seconds since the worker's last heartbeat (None if it never sent one)."""
    beat = worker.last_heartbeat
    if beat is None:
        return None
    if beat.tzinfo is None:
        beat = beat.replace(tzinfo=UTC)
    return max(0.0, ((now or datetime.now(UTC)) - beat).total_seconds())


def is_alive(worker: Any, max_age: float | None = None, now: datetime | None = None) -> bool:
    age = heartbeat_age(worker, now)
    return age is not None and age <= (get_settings().OFFLOAD_WORKER_HEARTBEAT_MAX_AGE if max_age is None else max_age)
