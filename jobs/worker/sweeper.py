"""Find jobs lost between a worker's pop and its bookkeeping, and put them back.

A worker listening to several queues takes a job with BLPOP; if it dies before it
marks the job started, the job is in no queue and no registry, and its status still
says ``queued``: nobody would ever run it. The sweeper, run from every worker's
maintenance pass, looks at recent jobs for exactly that state. A job must be seen
lost on two passes at least ``confirm_after`` seconds apart before it is pushed back,
so a job that a live worker is just starting is never duplicated.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from redis import Redis

from jobs.connection import text
from jobs.queues import queue_for
from jobs.records import job_events, job_index

log = logging.getLogger(__name__)
SUSPECTS_KEY = "offload:sweeper:suspects"


def _queued_but_nowhere(connection: Redis, scan: int) -> set[str]:
    members = [text(m) for m in connection.zrevrangebylex(job_index.INDEX_KEY, "+", "-", start=0, num=scan)]
    job_ids = [member.split(":", 1)[1] for member in members]
    with connection.pipeline(transaction=False) as pipe:
        for job_id in job_ids:
            pipe.hmget(f"rq:job:{job_id}", "status", "origin")
        states = pipe.execute()
    by_queue: dict[str, list[str]] = {}
    for job_id, (status, origin) in zip(job_ids, states, strict=True):
        if status == b"queued" and origin:
            by_queue.setdefault(text(origin), []).append(job_id)
    missing = set()
    for origin, candidates in by_queue.items():
        absent = connection.eval(_ABSENT, 1, queue_for(connection, origin).key, *candidates)
        missing |= {f"{text(job_id)}|{origin}" for job_id in absent}
    return missing


# KEYS[1]: a queue; ARGV: job ids. Returns those not in the queue: one pass over the queue,
# however long it is (a position lookup per job would be quadratic in a backlog).
_ABSENT = """
local present = {}
for _, id in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do present[id] = true end
local absent = {}
for _, id in ipairs(ARGV) do
  if not present[id] then table.insert(absent, id) end
end
return absent
"""


def sweep(connection: Redis, confirm_after: float = 10.0, scan: int = 5000) -> list[str]:
    """Push back jobs seen lost twice, ``confirm_after`` seconds apart; returns their ids."""
    now = time.time()
    lost_now = _queued_but_nowhere(connection, scan)
    scored: Any = connection.zrange(SUSPECTS_KEY, 0, -1, withscores=True)
    suspects: dict[str, float] = {text(member): float(score) for member, score in scored}
    requeued = []
    with connection.pipeline() as pipe:
        for entry in lost_now:
            first_seen = suspects.get(entry)
            if first_seen is None:
                pipe.zadd(SUSPECTS_KEY, {entry: now})
            elif now - first_seen >= confirm_after:
                job_id, origin = entry.split("|", 1)
                queue_for(connection, origin).push_job_id(job_id, pipeline=pipe, at_front=True)
                job_events.publish_status(pipe, job_id, "queued", reason="recovered: its worker died while taking it")
                pipe.zrem(SUSPECTS_KEY, entry)
                requeued.append(job_id)
        stale = [entry for entry in suspects if entry not in lost_now]
        if stale:
            pipe.zrem(SUSPECTS_KEY, *stale)
        pipe.execute()
    for job_id in requeued:
        log.warning("job %s was in no queue although queued (its worker died taking it): pushed back", job_id)
    return requeued
