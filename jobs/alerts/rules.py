"""The alert rules one may declare (``ALERT_RULES``, JSON), each with its defaults.

A rule whose target is ``*`` (every queue, task or cron entry) becomes one alert per target,
named ``<kind>:<target>``; ``for_seconds`` is how long its condition must hold before it fires.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    for_seconds: float = Field(default=0, ge=0, le=86400, description="how long the condition holds before it fires")

    def describe(self) -> str:
        raise NotImplementedError


class NoWorker(_Rule):
    kind: Literal["no_worker"] = "no_worker"
    queue: str = "*"
    for_seconds: float = Field(default=60, ge=0, le=86400)

    def describe(self) -> str:
        return f"a queue with work and no live worker for {self.for_seconds:g} s"


class QueueLatency(_Rule):
    kind: Literal["queue_latency"] = "queue_latency"
    queue: str = "*"
    above_seconds: float = Field(default=300, gt=0)

    def describe(self) -> str:
        return f"the oldest queued job waiting longer than {self.above_seconds:g} s"


class FailureRatio(_Rule):
    kind: Literal["failure_ratio"] = "failure_ratio"
    task: str = "*"
    above: float = Field(default=0.5, ge=0, lt=1)
    over_minutes: int = Field(default=10, ge=1, le=1440)
    min_jobs: int = Field(default=5, ge=1, description="fewer ended jobs than this in the window never fire")

    def describe(self) -> str:
        return f"more than {self.above:.0%} of a task's jobs failing over {self.over_minutes} min"


class CronMissed(_Rule):
    kind: Literal["cron_missed"] = "cron_missed"
    entry: str = "*"

    def describe(self) -> str:
        return "a cron entry that did not run when due, or whose last run did not succeed"


class RedisMemory(_Rule):
    kind: Literal["redis_memory"] = "redis_memory"
    above_ratio: float = Field(default=0.9, gt=0, lt=1)

    def describe(self) -> str:
        return f"Redis using more than {self.above_ratio:.0%} of its maxmemory"


class QueuePaused(_Rule):
    kind: Literal["queue_paused"] = "queue_paused"
    queue: str = "*"
    longer_than_seconds: float = Field(default=3600, ge=0)

    def describe(self) -> str:
        return f"a queue paused for longer than {self.longer_than_seconds:g} s"


AlertRule = Annotated[
    NoWorker | QueueLatency | FailureRatio | CronMissed | RedisMemory | QueuePaused, Field(discriminator="kind")
]
DEFAULT_RULES: tuple[AlertRule, ...] = (
    NoWorker(),
    QueueLatency(),
    FailureRatio(),
    CronMissed(),
    RedisMemory(),
    QueuePaused(),
)
