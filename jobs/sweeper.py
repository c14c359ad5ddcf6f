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

from redis import Redis

from jobs import events
from jobs import index as job_index
from jobs.enqueue import queue_for

log = logging.getLogger(__name__)
SUSPECTS_KEY = "offload:sweeper:suspects"


def _queued_but_nowhere(connection: Redis, scan: int) -> set[str]:
    members = [m.decode() for m in connection.zrevrangebylex(job_index.INDEX_KEY, "+", "-", start=0, num=scan)]
    job_ids = [member.split(":", 1)[1] for member in members]
    with connection.pipeline(transaction=False) as pipe:
        for job_id in job_ids:
            pipe.hmget(f"rq:job:{job_id}", "status", "origin")
        states = pipe.execute()
    queued = [(job_id, origin.decode()) for job_id, (status, origin) in zip(job_ids, states, strict=True)
              if status == b"queued" and origin]  # fmt: skip
    with connection.pipeline(transaction=False) as pipe:
        for job_id, origin in queued:
            pipe.lpos(queue_for(connection, origin).key, job_id)
        positions = pipe.execute()
    return {
        f"{job_id}|{origin}" for (job_id, origin), position in zip(queued, positions, strict=True) if position is None
    }


def sweep(connection: Redis, confirm_after: float = 10.0, scan: int = 5000) -> list[str]:
    """Push back jobs seen lost twice, ``confirm_after`` seconds apart; returns their ids."""
    now = time.time()
    lost_now = _queued_but_nowhere(connection, scan)
    suspects = {member.decode(): score for member, score in connection.zrange(SUSPECTS_KEY, 0, -1, withscores=True)}
    requeued = []
    with connection.pipeline() as pipe:
        for entry in lost_now:
            first_seen = suspects.get(entry)
            if first_seen is None:
                pipe.zadd(SUSPECTS_KEY, {entry: now})
            elif now - first_seen >= confirm_after:
                job_id, origin = entry.split("|", 1)
                queue_for(connection, origin).push_job_id(job_id, pipeline=pipe, at_front=True)
                events.publish_status(pipe, job_id, "queued", reason="recovered: its worker died while taking it")
                pipe.zrem(SUSPECTS_KEY, entry)
                requeued.append(job_id)
        stale = [entry for entry in suspects if entry not in lost_now]
        if stale:
            pipe.zrem(SUSPECTS_KEY, *stale)
        pipe.execute()
    for job_id in requeued:
        log.warning("job %s was in no queue although queued (its worker died taking it): pushed back", job_id)
    return requeued
