"""Job and HTTP metrics, recorded into Redis so that every process counts into one place.

Web and worker processes may be many and on many machines; a Prometheus scrape of any
web process must see the totals. Counters and histograms are therefore Redis hashes
(one field per label set and bucket), updated in the same pipeline as the change they
count, and turned into Prometheus metrics when /metrics is read.
"""

from __future__ import annotations

import contextlib
import functools
import json
from bisect import bisect_left
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from contextvars import ContextVar

from redis import Redis
from redis.client import Pipeline

from jobs.connection import text

PREFIX = "offload:metrics"
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
# Raises each field given to the value given, if it is higher (a running maximum).
_RAISE_TO = """
for n = 1, #ARGV, 2 do
  local current = tonumber(redis.call('HGET', KEYS[1], ARGV[n]) or '-inf')
  if tonumber(ARGV[n + 1]) > current then redis.call('HSET', KEYS[1], ARGV[n], ARGV[n + 1]) end
end
"""


class Tally:
    """Metric updates added up in memory, written as one increment per field."""

    def __init__(self) -> None:
        self.increments: Counter[tuple[str, str]] = Counter()
        self.sums: defaultdict[tuple[str, str], float] = defaultdict(float)
        self.maxes: dict[tuple[str, str], float] = {}
        self.expiring: dict[str, int] = {}  # key → seconds to keep it

    def write(self, pipe: Pipeline | Redis) -> None:
        for (key, field), amount in self.increments.items():
            pipe.hincrby(key, field, amount)
        for (key, field), total in self.sums.items():
            pipe.hincrbyfloat(key, field, total)
        by_key: defaultdict[str, list[str]] = defaultdict(list)
        for (key, field), value in self.maxes.items():
            by_key[key] += (field, repr(value))
        for key, pairs in by_key.items():
            pipe.eval(_RAISE_TO, 1, key, *pairs)
        for key, seconds in self.expiring.items():
            pipe.expire(key, seconds)
        self.increments.clear()
        self.sums.clear()
        self.maxes.clear()
        self.expiring.clear()


def current_tally() -> Tally | None:
    """The tally updates add up in, inside ``tallied()``."""
    return _tally.get()


def raise_to(pipe: Pipeline | Redis, key: str, field: str, value: float) -> None:
    """Set ``field`` of ``key`` to ``value`` if that is higher than what it holds."""
    pipe.eval(_RAISE_TO, 1, key, field, repr(value))


_tally: ContextVar[Tally | None] = ContextVar("offload_metrics_tally", default=None)


@contextlib.contextmanager
def tallied(tally: Tally) -> Iterator[Tally]:
    """Within this block, updates add up in ``tally`` (a worker writes them with its next batch)."""
    token = _tally.set(tally)
    try:
        yield tally
    finally:
        _tally.reset(token)


def _labels(labels: dict[str, str]) -> str:
    return _encoded(tuple(sorted(labels.items())))


@functools.lru_cache(maxsize=4096)
def _encoded(items: tuple[tuple[str, str], ...]) -> str:
    return json.dumps(dict(items), separators=(",", ":"))


def count(pipe: Pipeline | Redis | None, name: str, labels: dict[str, str], amount: int = 1) -> None:
    key, field = f"{PREFIX}:counter:{name}", _labels(labels)
    tally = _tally.get()
    if tally is not None:
        tally.increments[key, field] += amount
    elif pipe is not None:
        pipe.hincrby(key, field, amount)
    else:
        raise RuntimeError("metrics.count needs a pipeline outside metrics.tallied()")


def observe(
    pipe: Pipeline | Redis | None, name: str, labels: dict[str, str], value: float, buckets: tuple[float, ...]
) -> None:
    """Add one observation to a histogram: its bucket (made cumulative when read), sum and count."""
    key, label = f"{PREFIX}:histogram:{name}", _labels(labels)
    index = bisect_left(buckets, value)
    bound = "+Inf" if index == len(buckets) else repr(buckets[index])
    tally = _tally.get()
    if tally is not None:
        tally.increments[key, f"{label}|{bound}"] += 1
        tally.increments[key, f"{label}|count"] += 1
        tally.sums[key, f"{label}|sum"] += value
        return
    if pipe is None:
        raise RuntimeError("metrics.observe needs a pipeline outside metrics.tallied()")
    pipe.hincrby(key, f"{label}|{bound}", 1)
    pipe.hincrbyfloat(key, f"{label}|sum", value)
    pipe.hincrby(key, f"{label}|count", 1)


def read_counters(redis: Redis, name: str) -> Iterable[tuple[dict[str, str], int]]:
    for label, value in redis.hgetall(f"{PREFIX}:counter:{name}").items():
        yield json.loads(label), int(value)


def read_histograms(
    redis: Redis, name: str, buckets: tuple[float, ...]
) -> Iterable[tuple[dict[str, str], list[tuple[str, int]], float]]:
    """Per label set: cumulative ``(upper bound, count)`` pairs ending with ``+Inf``, and the sum."""
    fields: dict[str, dict[str, float]] = {}
    for field, value in redis.hgetall(f"{PREFIX}:histogram:{name}").items():
        label, _, part = text(field).rpartition("|")
        fields.setdefault(label, {})[part] = float(value)
    for label, parts in fields.items():
        cumulative, running = [], 0
        for bound in [*(repr(b) for b in buckets), "+Inf"]:
            running += int(parts.get(bound, 0))
            cumulative.append((bound, running))
        yield json.loads(label), cumulative, parts.get("sum", 0.0)
