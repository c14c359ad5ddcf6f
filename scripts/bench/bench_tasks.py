"""Tasks of the benchmark only (loaded with OFFLOAD_TASK_MODULES=scripts.bench.bench_tasks)."""

from __future__ import annotations

import time
from typing import Annotated

from pydantic import Field

from jobs import task
from jobs.registry import highest_queue, lowest_queue

# Results kept two seconds: Redis memory per job is measured before and after they expire.
RESULT_TTL = 2


@task(name="bench.noop", queue=highest_queue(), timeout=30)
def noop() -> None:
    """Do nothing: the unit of the drain, pickup and HTTP rows."""


@task(name="bench.short_lived", queue="default", result_ttl=RESULT_TTL, failure_ttl=RESULT_TTL)
def short_lived() -> None:
    """A no-op whose records expire quickly."""


@task(name="bench.cpu_burn", queue=lowest_queue(), timeout=600)
def cpu_burn(seconds: Annotated[float, Field(ge=0, le=600)] = 1.0) -> dict:
    """Keep one core busy for a while: the load of the CPU-heavy rows."""
    deadline = time.monotonic() + seconds
    rounds = 0
    while time.monotonic() < deadline:
        sum(i * i for i in range(10_000))
        rounds += 1
    return {"rounds": rounds}


@task(name="bench.order", queue="default", timeout=30)
def order(customer: str, amount: int, note: str = "") -> None:
    """A job with arguments worth searching: the search rows fill the store with it."""
