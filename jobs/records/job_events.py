"""What happens to a job, as a stream every reader can follow, and its captured log lines.

Each job has a Redis stream of events (status changes, progress, log lines) whose ids
serve as Server-Sent Event ids, so a reader that reconnects resumes exactly where it
stopped; and a capped list of log lines that keeps the tail and counts what it dropped.
Both expire with the job.
"""

from __future__ import annotations

import json
import time
from typing import Any

from redis import Redis
from redis.client import Pipeline

from jobs.connection import text

EVENTS_MAXLEN = 5000
LOG_MAX_LINES = 2000
LOG_MAX_LINE_BYTES = 4096
DEFAULT_TTL = 7 * 24 * 3600


def events_key(job_id: str) -> str:
    return f"offload:job:{job_id}:events"


def logs_key(job_id: str) -> str:
    return f"offload:job:{job_id}:logs"


def dropped_key(job_id: str) -> str:
    return f"offload:job:{job_id}:logs:dropped"


def artifact_key(job_id: str) -> str:
    return f"offload:job:{job_id}:artifact"


def keys_of(job_id: str) -> list[str]:
    """Every key Offload keeps beside RQ's own for one job."""
    return [events_key(job_id), logs_key(job_id), dropped_key(job_id), artifact_key(job_id)]


def publish(pipe: Pipeline | Redis, job_id: str, kind: str, data: dict[str, Any], ttl: int | None = None) -> None:
    """Append an event to the job's stream (inside the caller's pipeline when given one)."""
    key = events_key(job_id)
    pipe.xadd(key, {"type": kind, "data": json.dumps(data)}, maxlen=EVENTS_MAXLEN, approximate=True)
    pipe.expire(key, ttl or DEFAULT_TTL)


def publish_status(pipe: Pipeline | Redis, job_id: str, status: str, ttl: int | None = None, **extra: Any) -> None:
    publish(pipe, job_id, "status", {"status": status, "at": time.time(), **extra}, ttl)


def append_logs(pipe: Pipeline | Redis, job_id: str, lines: list[dict[str, Any]], ttl: int | None = None) -> None:
    """Store log lines (capped, keeping the tail) and announce each one on the stream."""
    if not lines:
        return
    key, ttl = logs_key(job_id), ttl or DEFAULT_TTL
    encoded = [json.dumps(line) for line in lines]
    pipe.rpush(key, *encoded)
    pipe.eval(_TRIM_COUNTING, 2, key, dropped_key(job_id), LOG_MAX_LINES)
    pipe.expire(key, ttl)
    pipe.expire(dropped_key(job_id), ttl)
    for line in lines:
        publish(pipe, job_id, "log", line, ttl)


# Trim the list to its newest N entries and add how many went to the dropped counter.
_TRIM_COUNTING = """
local excess = redis.call('LLEN', KEYS[1]) - tonumber(ARGV[1])
if excess > 0 then
  redis.call('LTRIM', KEYS[1], excess, -1)
  redis.call('INCRBY', KEYS[2], excess)
end
return excess
"""


def read_logs(redis: Redis, job_id: str, tail: int | None = None) -> tuple[list[dict[str, Any]], int]:
    start = -tail if tail else 0
    with redis.pipeline(transaction=False) as pipe:
        pipe.lrange(logs_key(job_id), start, -1)
        pipe.get(dropped_key(job_id))
        raw_lines, dropped = pipe.execute()
    return [json.loads(line) for line in raw_lines], int(dropped or 0)


def read_events(
    redis: Redis, job_id: str, after: str, block_ms: int | None = None, count: int = 200
) -> list[tuple[str, str, dict[str, Any]]]:
    """Events after the stream id ``after`` (``"0"`` for all): ``(id, type, data)`` tuples."""
    answer: Any = redis.xread({events_key(job_id): after}, count=count, block=block_ms)
    events = []
    for _key, entries in answer or []:
        for entry_id, fields in entries:
            events.append((text(entry_id), text(fields[b"type"]), json.loads(fields[b"data"])))
    return events


def publish_end(pipe: Pipeline | Redis, job_id: str, status: str, ttl: int) -> None:
    """The final status event, and everything beside the job set to expire with it: one command."""
    data = json.dumps({"status": status, "at": time.time()})
    pipe.eval(_END, len(keys_of(job_id)), *keys_of(job_id), data, ttl, EVENTS_MAXLEN)


# KEYS: the events stream first, then the other keys beside the job. ARGV: data, ttl, maxlen.
_END = """
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '*', 'type', 'status', 'data', ARGV[1])
local ttl = tonumber(ARGV[2])
for _, key in ipairs(KEYS) do
  if ttl > 0 then redis.call('EXPIRE', key, ttl) else redis.call('PERSIST', key) end
end
return 1
"""


def last_event_id(redis: Redis, job_id: str) -> str:
    """The id of the job's latest event, or ``"0"``: where a reader that saw everything so far resumes."""
    latest: Any = redis.xrevrange(events_key(job_id), count=1)
    return text(latest[0][0]) if latest else "0"
