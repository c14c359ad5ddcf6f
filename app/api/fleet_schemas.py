"""The shapes of the fleet's answers: queues, workers, cron entries, the status line (for the OpenAPI document)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class QueueInfo(BaseModel):
    name: str
    paused: bool = Field(description="No job of a paused queue starts until it is resumed")
    queued: int
    started: int
    scheduled: int
    deferred: int
    finished: int
    failed: int
    canceled: int
    oldest_enqueued_at: str | None = Field(description="When the oldest queued job was enqueued")
    latency_seconds: float | None = Field(description="How long the oldest queued job has waited")
    throughput_per_minute: float = Field(description="Jobs ended per minute over the last throughput_minutes")
    throughput_minutes: int
    ended_recently: dict[str, int] = Field(description="Jobs ended over the last throughput_minutes, per status")
    workers: list[str] = Field(description="The live workers that listen to it")


class QueueList(BaseModel):
    queues: list[QueueInfo]


class QueueAction(BaseModel):
    queue: str
    paused: bool
    changed: bool = Field(description="False when the queue already was in that state")


class WorkerInfo(BaseModel):
    name: str
    state: str
    queues: list[str]
    current_job: str | None
    current_job_started_at: str | None
    current_job_seconds: float | None = Field(description="How long the current job has run")
    last_heartbeat: str | None
    heartbeat_age_seconds: float | None
    alive: bool = Field(description="Its last heartbeat is recent (OFFLOAD_WORKER_HEARTBEAT_MAX_AGE)")
    ghost: bool = Field(description="Registered, but its heartbeat is too old: it takes no job")
    birth_date: str | None
    hostname: str | None
    pid: int | None
    rss_bytes: int | None = Field(description="Resident memory at its last heartbeat")
    successful_jobs: int
    failed_jobs: int
    version: str = Field(description="The RQ version it runs")
    stopping: bool = Field(description="Asked to stop after its current job")


class WorkerList(BaseModel):
    workers: list[WorkerInfo]


class CronRun(BaseModel):
    job_id: str
    status: str
    enqueued_at: str | None
    duration_seconds: float | None
    manual: bool = Field(description="Started with Run now, not by the schedule")


class CronEntry(BaseModel):
    name: str
    queue: str
    schedule: str
    next_run: str | None
    last_run_at: str | None
    runs: list[CronRun] = Field(description="The last runs, newest first")
    missed: str | None = Field(description="Why the entry is late, when it did not run when it should have")


class CronList(BaseModel):
    entries: list[CronEntry]


class StatusLine(BaseModel):
    redis_ok: bool
    workers_per_queue: dict[str, int]
    unworked: list[str] = Field(description="Queues no live worker listens to")
    paused: list[str]
    failed_last_hour: int
    firing: list[str] = Field(description="The alerts firing now")
    alerts_evaluated: bool = Field(description="False when no cron process has evaluated the alerts lately")


class AlertInfo(BaseModel):
    alert: str = Field(description="<kind>:<target>")
    kind: str
    state: str = Field(description="ok, pending (holding, not yet for for_seconds) or firing")
    summary: str
    described: str = Field(description="The rule, in words")
    value: float | None
    pending_since: float | None
    firing_since: float | None
    last_notified: float | None
    notifications: list[str] = Field(description="The jobs that told its last transition")


class AlertList(BaseModel):
    alerts: list[AlertInfo]
    channels: list[str] = Field(description="Where notifications go")


class Notified(BaseModel):
    jobs: list[str] = Field(description="One notification job per channel")


class StatsPoint(BaseModel):
    at: float = Field(description="The step's start, Unix time")
    enqueued: int
    finished: int
    failed: int
    stopped: int
    failure_ratio: float | None
    duration_p50: float | None = Field(description="Upper bound of the bucket (seconds)")
    duration_p95: float | None
    duration_max: float | None
    wait_p50: float | None
    wait_p95: float | None
    depth: int | None = Field(description="Queued jobs, as sampled (queues only)")
    oldest_age: float | None


class Stats(BaseModel):
    range: str
    step_seconds: int
    task: str | None
    queue: str | None
    points: list[StatsPoint]
