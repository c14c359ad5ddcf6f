"""Request and response shapes of the JSON API, as pydantic models.

Requests are validated with them; responses are built as plain dicts and the models
document them in the OpenAPI document.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from jobs.records.job_index import CURSOR_PATTERN
from jobs.records.job_search import Query
from jobs.submission.calls import SCHEDULE_HORIZON_SECONDS
from jobs.vocabulary import ID_PATTERN, Status

QueueName = Annotated[str, Field(pattern=ID_PATTERN, description="One of the app's queues (QUEUES)")]
JobId = Field(pattern=ID_PATTERN)


# How many jobs one may wait for (how far ahead one may be scheduled: jobs.submission.calls).
MAX_PARENTS = 20


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class EnqueueRequest(Strict):
    """A call of a registered task to run in the background."""

    task: str = Field(min_length=1, max_length=200, description="Registered task name, e.g. demo.sleep")
    args: dict[str, Any] = Field(default_factory=dict, description="Keyword arguments, checked against the schema")
    queue: QueueName | None = Field(default=None, description="Override the task's queue")
    delay: float | None = Field(
        default=None, ge=0, le=SCHEDULE_HORIZON_SECONDS, description="Run after this many seconds (at most a year)"
    )
    at: AwareDatetime | None = Field(
        default=None, description="Run at this time (ISO 8601 with offset), at most a year ahead"
    )
    depends_on: list[str] | None = Field(
        default=None, max_length=MAX_PARENTS, description=f"Run after these jobs finish (at most {MAX_PARENTS})"
    )
    timeout: int | None = Field(default=None, ge=1, le=7 * 24 * 3600, description="Override the task's timeout")


class BatchItem(BaseModel):
    index: int
    status: int
    job: JobDocument | None = None
    problem: Problem | None = None


class LogLine(BaseModel):
    at: float
    level: str
    logger: str | None
    message: str
    attempt: int | None = Field(default=None, description="The run of the job that wrote the line (1, 2, ...)")


class JobLogs(BaseModel):
    job_id: str
    lines: list[LogLine]
    dropped: int = Field(description="Older lines dropped to keep the log within its cap")


class ListJobsQuery(Strict):
    q: str | None = Field(default=None, max_length=200, description="Text in the id, task, arguments or error")
    status: Status | None = None
    task: str | None = Field(default=None, max_length=200)
    queue: QueueName | None = None
    since: AwareDatetime | None = Field(default=None, description="Created at or after (ISO 8601 with offset)")
    until: AwareDatetime | None = Field(default=None, description="Created at or before (ISO 8601 with offset)")
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = Field(default=None, pattern=CURSOR_PATTERN.pattern)

    def search(self) -> Query:
        return Query(self.q or "", self.status or "", self.task or "", self.queue or "", self.since, self.until)


class BulkRequest(Strict):
    """The jobs to act on: the list's filters (at least one), or one failure group."""

    q: str | None = Field(default=None, min_length=1, max_length=200)
    status: Status | None = None
    task: str | None = Field(default=None, min_length=1, max_length=200)
    queue: QueueName | None = None
    since: AwareDatetime | None = None
    until: AwareDatetime | None = None
    group: str | None = Field(default=None, pattern=r"^[0-9a-f]{16}$", description="A group of GET /api/failures")

    @model_validator(mode="after")
    def _one_choice(self) -> BulkRequest:
        filters = [self.q, self.status, self.task, self.queue, self.since, self.until]
        if self.group is None and all(value is None for value in filters):
            raise ValueError("give at least one filter (q, status, task, queue, since, until) or a group")
        if self.group is not None and any(value is not None for value in filters):
            raise ValueError("give either a group or filters, not both")
        return self

    def search(self) -> Query:
        return Query(self.q or "", self.status or "", self.task or "", self.queue or "", self.since, self.until)

    def described(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


class AuditQuery(Strict):
    limit: int = Field(default=50, ge=1, le=500)
    before: str | None = Field(default=None, pattern=r"^\d{1,20}-\d{1,20}$")

    @field_validator("before")
    @classmethod
    def _an_entry_id(cls, value: str | None) -> str | None:
        if value is not None and any(int(part) >= 2**64 for part in value.split("-")):
            raise ValueError("not an entry id of the audit log")
        return value


class BulkOutcome(BaseModel):
    action: str
    matched: int = Field(description="Jobs the filter or group found")
    done: int
    skipped: int
    skipped_because: dict[str, int] = Field(description="Jobs skipped, per reason (their state did not allow it)")
    more: bool = Field(description="BULK_MAX_JOBS was reached: repeat the request for the rest")


class FailureGroup(BaseModel):
    id: str
    task: str
    error_type: str
    message: str = Field(description="The message with numbers, ids and quoted values blanked")
    count: int
    first_seen: str | None
    last_seen: str | None
    sample: dict[str, Any]
    job_ids: list[str] = Field(description="Up to 20 of the group's jobs, the latest first")
    links: dict[str, str]


class FailureGroups(BaseModel):
    groups: list[FailureGroup]


class AuditEntry(BaseModel):
    id: str
    at: str | None
    actor: str = Field(description="A fingerprint of the credential used, or the CLI's user; never the secret")
    action: str
    via: str = Field(description="api, page, cli or rq")
    source: str
    job: str | None
    filters: dict[str, Any]
    done: int
    skipped: int


class AuditLog(BaseModel):
    entries: list[AuditEntry]
    next_before: str | None


class Progress(BaseModel):
    done: float | None
    total: float | None
    percent: float | None
    message: str | None
    eta_seconds: float | None = Field(description="Estimated seconds left, from the rate so far")


class JobError(BaseModel):
    type: str
    message: str
    traceback: str | None


class JobLinks(BaseModel):
    self: str
    events: str
    logs: str
    artifact: str | None = None


class JobDocument(BaseModel):
    id: str
    task: str | None
    args: dict[str, Any] | None
    queue: str | None
    status: Status
    progress: Progress
    result: Any
    error: JobError | None
    created_at: str | None
    enqueued_at: str | None
    scheduled_for: str | None = Field(description="When a scheduled job will be queued (null unless scheduled)")
    started_at: str | None
    ended_at: str | None
    attempts: int
    retries_left: int
    recoveries: int = Field(description="How often the job was put back because its worker died")
    worker: str | None
    depends_on: list[str]
    links: JobLinks


class JobList(BaseModel):
    jobs: list[JobDocument]
    next_cursor: str | None
    matches: int = Field(description="How many jobs the filters find in all (the page holds up to limit)")
    counts: dict[str, int] = Field(description="Matches per status, with every filter but status applied")


class RetryInfo(BaseModel):
    max_retries: int
    backoff: float
    intervals: list[int]
    jitter: float


class TaskInfo(BaseModel):
    name: str
    description: str
    queue: QueueName
    timeout: int
    retry: RetryInfo
    result_ttl: int
    failure_ttl: int
    schedule: str | None = Field(description="Cron expression (UTC) or 'every N seconds'")
    next_run: str | None = Field(description="When the cron process next enqueues it")
    schema_: dict[str, Any] = Field(alias="schema")


class TaskList(BaseModel):
    tasks: list[TaskInfo]


class FieldError(BaseModel):
    loc: list[str | int]
    msg: str
    type: str | None = None


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str | None = None
    errors: list[FieldError] | None = None
