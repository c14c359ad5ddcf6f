"""Failed jobs grouped by cause: task, error type and the message with its numbers and ids blanked."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from redis import Redis

from jobs.connection import text
from jobs.job import TaskJob
from jobs.queues import queue_for
from jobs.records import job_search
from jobs.settings import get_settings

_IDS = re.compile(r"\b[0-9a-f]{8,}\b|\b[0-9a-f]{8}-[0-9a-f-]{27}\b", re.I)
_NUMBERS = re.compile(r"\d+(?:\.\d+)?")
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")


def normalised(message: str) -> str:
    """The message as a cause: ids, quoted values and numbers blanked (``gateway <n> timed out``)."""
    return _NUMBERS.sub("<n>", _QUOTED.sub("'…'", _IDS.sub("<id>", message))).strip()


def group_id(task: str, error_type: str, message: str) -> str:
    return hashlib.sha256(f"{task}\x1f{error_type}\x1f{message}".encode()).hexdigest()[:16]


@dataclass
class Group:
    id: str
    task: str
    error_type: str
    message: str  # normalised
    count: int = 0
    first_seen: float | None = None
    last_seen: float | None = None
    sample: dict[str, Any] = field(default_factory=dict)  # the latest job: id and its own message
    job_ids: list[str] = field(default_factory=list)


def failed_registry(redis: Redis) -> list[tuple[str, str]]:
    """Every job in the queues' failed registries, with its status: RQ keeps stopped jobs there too."""
    ids: list[str] = []
    for name in get_settings().QUEUES:
        members: list[bytes] = redis.zrange(queue_for(redis, name).failed_job_registry.key, 0, -1)  # type: ignore[assignment]
        ids += [text(member) for member in members]
    if not ids:
        return []
    with redis.pipeline(transaction=False) as pipe:
        for job_id in ids:
            pipe.hget(TaskJob.key_for(job_id), "status")
        statuses = pipe.execute()
    return [(job_id, text(status) if status else "") for job_id, status in zip(ids, statuses, strict=True)]


def failed_job_ids(redis: Redis) -> list[str]:
    """Every job in a failed registry whose status is failed."""
    return [job_id for job_id, status in failed_registry(redis) if status == "failed"]


def groups(redis: Redis) -> list[Group]:
    """Failed jobs by cause, the largest group first; each with its jobs, newest first."""
    ids = failed_job_ids(redis)
    if not ids:
        return []
    errors = job_search.errors_of(redis, ids)
    with redis.pipeline(transaction=False) as pipe:
        for job_id in ids:
            pipe.hmget(TaskJob.key_for(job_id), "description", "ended_at")
        details = pipe.execute()
    found: dict[str, Group] = {}
    for job_id, error, (task, ended) in zip(ids, errors, details, strict=True):
        error_type, message = error if error is not None else ("Error", "")
        task_name = text(task) if task else "?"
        cause = normalised(message)
        key = group_id(task_name, error_type, cause)
        group = found.setdefault(key, Group(key, task_name, error_type, cause))
        seen = _timestamp(ended)
        group.count += 1
        group.job_ids.append(job_id)
        if seen is not None:
            group.first_seen = seen if group.first_seen is None else min(group.first_seen, seen)
            if group.last_seen is None or seen >= group.last_seen:
                group.last_seen = seen
                group.sample = {"id": job_id, "message": message}
        elif not group.sample:
            group.sample = {"id": job_id, "message": message}
    for group in found.values():
        group.job_ids.sort(key=lambda job_id: job_id == group.sample.get("id"), reverse=True)
    return sorted(found.values(), key=lambda group: (-group.count, group.task, group.error_type))


def _timestamp(raw: bytes | None) -> float | None:
    if not raw:
        return None
    try:
        return datetime.fromisoformat(text(raw).replace("Z", "+00:00")).replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None
