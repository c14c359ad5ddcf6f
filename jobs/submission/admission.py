"""What a submission must pass (rate windows, a cap per queue), checked in the step that writes it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from redis import Redis
from redis.commands.core import Script

from jobs.queues import queue_for
from jobs.submission.calls import Call


@dataclass(frozen=True)
class Window:
    """A fixed-window rate limit: at most ``amount`` submissions per ``seconds`` under ``key``."""

    key: str
    amount: int
    seconds: int
    text: str  # "50 per 1 second", for messages


@dataclass(frozen=True)
class Admission:
    """What a submission must pass, checked in the same atomic step that writes its jobs.

    Every window counts one submission (a request, whatever its size); ``adding`` says how
    many jobs go to each queue, which must stay within ``queue_cap`` (0: no cap).
    """

    windows: Sequence[Window] = ()
    queue_cap: int = 0
    adding: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, calls: Sequence[Call], windows: Sequence[Window] = (), queue_cap: int = 0) -> Admission:
        return cls(windows, queue_cap, Counter(call.queue or call.task.queue for call in calls))


class RefusedError(Exception):
    """The admission refused a submission; nothing of it was written."""

    def __init__(self, reason: str, detail: str, retry_after: int | None = None) -> None:
        super().__init__(detail)
        self.reason = reason  # "rate-limited", "queue-full" or "memory"
        self.detail = detail
        self.retry_after = retry_after


# The admission checks, then the writes, as one atomic step (a script runs alone, like
# MULTI/EXEC, and nothing is written when a check fails). The writes are the commands that
# RQ and Offload put in a pipeline, passed as data: RQ still decides what a job looks like.
# ARGV: windows (count; key, amount, seconds each), cap, queues (count; key, scheduled
# registry key, adding each),
# commands (count; argc, args... each). Returns {"ok"}, {"rate", window, ttl} or
# {"full", queue, length}.
_ADMIT_AND_WRITE = """
local i = 2
for w = 1, tonumber(ARGV[1]) do
  local key, amount, seconds = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2]
  i = i + 3
  local used = redis.call('INCR', key)
  if used == 1 then redis.call('EXPIRE', key, seconds) end
  if used > amount then return {'rate', w, redis.call('TTL', key)} end
end
local cap = tonumber(ARGV[i])
local queues = tonumber(ARGV[i + 1])
i = i + 2
for q = 1, queues do
  if cap > 0 then  -- jobs waiting in the queue and jobs scheduled for it count alike
    local length = redis.call('LLEN', ARGV[i]) + redis.call('ZCARD', ARGV[i + 1])
    if length + tonumber(ARGV[i + 2]) > cap then return {'full', q, length} end
  end
  i = i + 3
end
for c = 1, tonumber(ARGV[i]) do
  local argc = tonumber(ARGV[i + 1])
  redis.call(unpack(ARGV, i + 2, i + 1 + argc))
  i = i + 1 + argc
end
return {'ok'}
"""
# One Script for every client: EVALSHA by its digest, loaded on the first NOSCRIPT.
_ADMIT_AND_WRITE_SCRIPT = Script(None, _ADMIT_AND_WRITE.encode())  # type: ignore[arg-type]  # each call names its client


def admit_and_write(connection: Redis, admission: Admission, commands: list[tuple[Any, ...]]) -> None:
    argv: list[Any] = [len(admission.windows)]
    for window in admission.windows:
        argv += (window.key, window.amount, window.seconds)
    queues = sorted(admission.adding.items())
    argv += (admission.queue_cap, len(queues))
    for name, adding in queues:
        queue = queue_for(connection, name)
        argv += (queue.key, queue.scheduled_job_registry.key, adding)
    argv.append(len(commands))
    for command in commands:
        argv.append(len(command))
        argv += command
    reply = _ADMIT_AND_WRITE_SCRIPT(args=argv, client=connection)
    answer = [part.decode() if isinstance(part, bytes) else part for part in reply]
    if answer[0] == "rate":
        window = admission.windows[int(answer[1]) - 1]
        wait = max(1, int(answer[2]))
        raise RefusedError("rate-limited", f"this token may submit {window.text}", wait)
    if answer[0] == "full":
        name, length = queues[int(answer[1]) - 1][0], int(answer[2])
        raise RefusedError(
            "queue-full",
            f"queue {name!r} holds {length} jobs, waiting and scheduled (limit {admission.queue_cap}); "
            "try again when workers have caught up",
        )
