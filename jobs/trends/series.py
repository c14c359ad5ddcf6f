"""Time series per task and per queue, kept in Redis: 1-minute buckets for 24 hours, 1-hour buckets for 30 days.

One hash per bucket (``offload:series:m:<minute>``, ``offload:series:h:<hour>``), its fields
``<t|q>|<task or queue>|<metric>``: ``enqueued``, ``finished``, ``failed``, ``stopped``, the
duration and queue-wait histograms (``dur:<bound>``, ``wait:<bound>``, over
``job_metrics.DURATION_BUCKETS``), the longest duration (``dur_max``), and, for queues, the
depth and oldest job's age the cron process samples (``depth``, ``age``). Only the fields a
bucket saw are stored, so memory follows what ran: ``make bench`` measures it per task per day.

Workers write into their metrics tally, which goes out with the batch they already send; the
web writes ``enqueued`` in the submission's own script. Percentiles are read from the histograms:
a p95 of 0.25 means "at most 0.25 s" (the bucket's upper bound).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from redis import Redis
from redis.client import Pipeline

from jobs.records import job_metrics

MINUTE, HOUR = 60, 3600
KEPT = {MINUTE: 25 * HOUR, HOUR: 31 * 24 * HOUR}
PREFIX = {MINUTE: "offload:series:m", HOUR: "offload:series:h"}
BUCKETS = job_metrics.DURATION_BUCKETS
BOUNDS = [*(repr(bound) for bound in BUCKETS), "+Inf"]
COUNTS = ("enqueued", "finished", "failed", "stopped")
Range = Literal["hour", "day", "month"]
# What each range shows: the bucket size read, how many, and the step they are added up to.
RANGES: dict[str, tuple[int, int, int]] = {
    "hour": (MINUTE, 60, MINUTE),
    "day": (MINUTE, 1440, 10 * MINUTE),
    "month": (HOUR, 720, 6 * HOUR),
}


def _keys(at: float) -> list[tuple[str, int]]:
    return [(f"{PREFIX[size]}:{int(at // size)}", KEPT[size]) for size in (MINUTE, HOUR)]


def _bound(value: float) -> str:
    for bound, text in zip(BUCKETS, BOUNDS, strict=False):
        if value <= bound:
            return text
    return "+Inf"


def _add(pipe: Pipeline | Redis | None, fields: Iterable[str], amount: int, at: float) -> None:
    tally = job_metrics.current_tally()
    for key, kept in _keys(at):
        for name in fields:
            if tally is not None:
                tally.increments[key, name] += amount
            elif pipe is not None:
                pipe.hincrby(key, name, amount)
            else:
                raise RuntimeError("series needs a pipeline outside metrics.tallied()")
        if tally is not None:
            tally.expiring[key] = kept
        elif pipe is not None:
            pipe.expire(key, kept)


def _raise(pipe: Pipeline | Redis | None, fields: Iterable[str], value: float, at: float) -> None:
    tally = job_metrics.current_tally()
    for key, _ in _keys(at):
        for name in fields:
            if tally is not None:
                tally.maxes[key, name] = max(value, tally.maxes.get((key, name), value))
            elif pipe is not None:
                job_metrics.raise_to(pipe, key, name, value)


def _scopes(task: str, queue: str) -> list[str]:
    return [f"t|{task}", f"q|{queue}"]


def record_enqueued(pipe: Pipeline | Redis, task: str, queue: str, amount: int = 1, at: float | None = None) -> None:
    _add(pipe, [f"{scope}|enqueued" for scope in _scopes(task, queue)], amount, at or time.time())


def record_end(
    pipe: Pipeline | Redis | None, task: str, queue: str, status: str, duration: float | None, at: float | None = None
) -> None:
    """One job ended (finished, failed or stopped), having run ``duration`` seconds."""
    at = at or time.time()
    scopes = _scopes(task, queue)
    _add(pipe, [f"{scope}|{status}" for scope in scopes], 1, at)
    if duration is not None:
        _add(pipe, [f"{scope}|dur:{_bound(duration)}" for scope in scopes], 1, at)
        _raise(pipe, [f"{scope}|dur_max" for scope in scopes], duration, at)


def record_wait(pipe: Pipeline | Redis | None, task: str, queue: str, wait: float, at: float | None = None) -> None:
    """One job started after waiting ``wait`` seconds in its queue."""
    _add(pipe, [f"{scope}|wait:{_bound(wait)}" for scope in _scopes(task, queue)], 1, at or time.time())


def record_queue_sample(pipe: Pipeline | Redis, queue: str, depth: int, age: float, at: float | None = None) -> None:
    """The queue's depth and its oldest job's age, as the cron process saw them (the hour keeps the highest)."""
    at = at or time.time()
    (minute, minute_kept), (hour, hour_kept) = _keys(at)
    pipe.hset(minute, mapping={f"q|{queue}|depth": depth, f"q|{queue}|age": round(age, 1)})
    pipe.expire(minute, minute_kept)
    job_metrics.raise_to(pipe, hour, f"q|{queue}|depth", depth)
    job_metrics.raise_to(pipe, hour, f"q|{queue}|age", round(age, 1))
    pipe.expire(hour, hour_kept)


@dataclass
class Point:
    at: float  # the step's start, Unix time
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTS, 0))
    durations: list[int] = field(default_factory=lambda: [0] * len(BOUNDS))
    waits: list[int] = field(default_factory=lambda: [0] * len(BOUNDS))
    duration_max: float | None = None
    depth: int | None = None
    age: float | None = None

    @property
    def failure_ratio(self) -> float | None:
        ended = self.counts["finished"] + self.counts["failed"] + self.counts["stopped"]
        return None if not ended else round(self.counts["failed"] / ended, 4)

    def as_dict(self) -> dict[str, object]:
        return {
            "at": self.at,
            **self.counts,
            "failure_ratio": self.failure_ratio,
            "duration_p50": percentile(self.durations, 0.5),
            "duration_p95": percentile(self.durations, 0.95),
            "duration_max": self.duration_max,
            "wait_p50": percentile(self.waits, 0.5),
            "wait_p95": percentile(self.waits, 0.95),
            "depth": self.depth,
            "oldest_age": self.age,
        }


def percentile(counts: list[int], q: float) -> float | None:
    """The upper bound of the bucket the ``q`` quantile falls in (None without observations; the
    last bucket has no bound and reads as the highest finite one)."""
    total = sum(counts)
    if not total:
        return None
    running = 0
    for index, count in enumerate(counts):
        running += count
        if running >= q * total:
            return BUCKETS[min(index, len(BUCKETS) - 1)]
    return BUCKETS[-1]


def scopes(task: str | None = None, queue: str | None = None, queues: Iterable[str] = ()) -> list[str]:
    """The field scopes a read adds up: one task, one queue, or every queue (all jobs)."""
    if task:
        return [f"t|{task}"]
    if queue:
        return [f"q|{queue}"]
    return [f"q|{name}" for name in queues]


def read(redis: Redis, range_name: str, scope_names: list[str], now: float | None = None) -> list[Point]:
    """The points of ``range_name`` (hour, day or month) for the scopes given, added up, oldest first."""
    size, count, step = RANGES[range_name]
    now = now or time.time()
    last = int(now // size)
    buckets = list(range(last - count + 1, last + 1))
    metrics = [*COUNTS, *(f"dur:{b}" for b in BOUNDS), *(f"wait:{b}" for b in BOUNDS), "dur_max", "depth", "age"]
    fields = [f"{scope}|{metric}" for scope in scope_names for metric in metrics]
    with redis.pipeline(transaction=False) as pipe:
        for bucket in buckets:
            pipe.hmget(f"{PREFIX[size]}:{bucket}", fields)
        answers = pipe.execute()
    points: dict[int, Point] = {}
    for bucket, values in zip(buckets, answers, strict=True):
        start = bucket * size // step * step
        point = points.setdefault(start, Point(float(start)))
        for name, value in zip(fields, values, strict=True):
            if value is not None:
                _fold(point, name.rsplit("|", 1)[1], float(value))
    return [points[start] for start in sorted(points)]


def _fold(point: Point, metric: str, value: float) -> None:
    if metric in point.counts:
        point.counts[metric] += int(value)
    elif metric.startswith("dur:"):
        point.durations[BOUNDS.index(metric[4:])] += int(value)
    elif metric.startswith("wait:"):
        point.waits[BOUNDS.index(metric[5:])] += int(value)
    elif metric == "dur_max":
        point.duration_max = max(value, point.duration_max or 0.0)
    elif metric == "depth":
        point.depth = max(int(value), point.depth or 0)
    elif metric == "age":
        point.age = max(value, point.age or 0.0)


def totals_by_scope(
    redis: Redis, scope_names: list[str], minutes: int, now: float | None = None
) -> dict[str, dict[str, int]]:
    """Per scope, jobs enqueued, finished, failed and stopped over the last ``minutes`` minutes
    (this one included), in one round trip."""
    now = now or time.time()
    last = int(now // MINUTE)
    fields = [(scope, metric) for scope in scope_names for metric in COUNTS]
    with redis.pipeline(transaction=False) as pipe:
        for minute in range(last - minutes + 1, last + 1):
            pipe.hmget(f"{PREFIX[MINUTE]}:{minute}", [f"{scope}|{metric}" for scope, metric in fields])
        answers = pipe.execute()
    found = {scope: dict.fromkeys(COUNTS, 0) for scope in scope_names}
    for values in answers:
        for (scope, metric), value in zip(fields, values, strict=True):
            if value is not None:
                found[scope][metric] += int(value)
    return found


def totals(redis: Redis, scope_names: list[str], minutes: int, now: float | None = None) -> dict[str, int]:
    """The scopes' ``totals_by_scope`` added up."""
    found = dict.fromkeys(COUNTS, 0)
    for counts in totals_by_scope(redis, scope_names, minutes, now).values():
        for metric, count in counts.items():
            found[metric] += count
    return found
