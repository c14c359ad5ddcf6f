"""An index of every job Offload enqueued, newest first, for listing and paging.

RQ keeps jobs per queue and per registry but has no list across them. The index is
one sorted set whose members sort by creation time (``<microseconds>:<job id>``, all
scores 0, read in lexicographic order), so a page cursor is simply the last member
seen: stable under concurrent inserts, no offsets. Members whose job hash has
expired are dropped as they are met.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING

from redis import Redis
from redis.client import Pipeline

if TYPE_CHECKING:
    from jobs.job import TaskJob

from jobs.connection import text

INDEX_KEY = "offload:jobs"
CURSOR_PATTERN = re.compile(r"^\d{20}:[A-Za-z0-9_-]{1,64}$")
_BATCH = 200


def member(job_id: str, created_at: datetime) -> str:
    micros = int(created_at.timestamp() * 1_000_000)
    return f"{micros:020d}:{job_id}"


def add(pipe: Pipeline | Redis, job_id: str, created_at: datetime) -> None:
    pipe.zadd(INDEX_KEY, {member(job_id, created_at): 0})


def remove(pipe: Pipeline | Redis, job_id: str, created_at: datetime) -> None:
    pipe.zrem(INDEX_KEY, member(job_id, created_at))


def _members(redis: Redis, cursor: str | None) -> Iterator[list[str]]:
    upper = f"({cursor}" if cursor else "+"
    while True:
        batch = [text(m) for m in redis.zrevrangebylex(INDEX_KEY, upper, "-", start=0, num=_BATCH)]
        if not batch:
            return
        yield batch
        upper = f"({batch[-1]}"


def page(
    redis: Redis,
    matches: Callable[[TaskJob], bool],
    limit: int,
    cursor: str | None = None,
    max_scan: int = 10_000,
) -> tuple[list[TaskJob], str | None]:
    """Up to ``limit`` jobs that ``matches`` accepts, newest first, and the next cursor.

    Scans at most ``max_scan`` index entries per call, so a rare filter cannot make one
    request slow; the returned cursor then resumes where the scan stopped.
    """
    from jobs.job import TaskJob  # the job class reads these records: imported when a page is read
    from jobs.records import job_search

    found: list[TaskJob] = []
    scanned = 0
    for batch in _members(redis, cursor):
        jobs = TaskJob.load_many(redis, [m.split(":", 1)[1] for m in batch])
        expired = [m for m, job in zip(batch, jobs, strict=True) if job is None]
        if expired:
            with redis.pipeline(transaction=False) as pipe:
                pipe.zrem(INDEX_KEY, *expired)
                job_search.forget(pipe, *(entry.split(":", 1)[1] for entry in expired))
                pipe.execute()
        for entry, job in zip(batch, jobs, strict=True):
            scanned += 1
            if job is not None and matches(job):
                found.append(job)
                if len(found) == limit:
                    return found, entry
            if scanned >= max_scan:
                return found, entry
    return found, None


PRUNE_CURSOR_KEY = "offload:jobs:prune_cursor"


def prune(redis: Redis, batch: int = 2000) -> int:
    """Drop the next ``batch`` index entries whose job has expired, and their search records.

    A listing drops the expired entries it meets; this walks the whole index a batch at a time
    (oldest first, resuming where the last pass stopped, wrapping at the end), so entries no
    listing reaches go too. The workers run it with their maintenance. Returns how many went.
    """
    from jobs.records import job_search

    start = redis.get(PRUNE_CURSOR_KEY)
    lower = f"({text(start)}" if start else "-"
    members = [text(m) for m in redis.zrangebylex(INDEX_KEY, lower, "+", start=0, num=batch)]
    if not members:
        redis.delete(PRUNE_CURSOR_KEY)
        return 0
    with redis.pipeline(transaction=False) as pipe:
        for entry in members:
            pipe.exists(f"rq:job:{entry.split(':', 1)[1]}")
        alive = pipe.execute()
    gone = [entry for entry, exists in zip(members, alive, strict=True) if not exists]
    with redis.pipeline(transaction=False) as pipe:
        if gone:
            pipe.zrem(INDEX_KEY, *gone)
            job_search.forget(pipe, *(entry.split(":", 1)[1] for entry in gone))
        if len(members) < batch:
            pipe.delete(PRUNE_CURSOR_KEY)
        else:
            pipe.set(PRUNE_CURSOR_KEY, members[-1])
        pipe.execute()
    return len(gone)
