"""Every setting of every process, in one model read from the environment.

The web, the worker, cron, the CLI and the benchmarks read their settings from here: a value
is parsed once, the same way everywhere (one notion of a boolean, of a list, of a number), and
a bad value stops the process at start with one line naming the variable. The table in
``docs/configuration.md`` is generated from this model (``python -m scripts.config_table``).

Names are the environment variables' own, so that ``Settings(REDIS_URL=...)`` in a test and
``REDIS_URL=...`` in a shell say the same thing.
"""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any, Literal

from limits import parse_many
from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from jobs.alerts.rules import DEFAULT_RULES, AlertRule
from jobs.vocabulary import DEFAULT_QUEUES, QUEUE_NAME

Environment = Literal["development", "production"]

# What production demands of its secrets, in characters.
MIN_SECRET_KEY = 32
MIN_ADMIN_PASSWORD = 12
MIN_API_TOKEN = 16
CommaList = Annotated[tuple[str, ...], NoDecode]


class SettingsError(ValueError):
    """A setting cannot be used; the message says which and why, in one line."""


class Settings(BaseSettings):
    """Offload's settings. Each field's description is its row in the configuration table."""

    model_config = SettingsConfigDict(case_sensitive=True, env_ignore_empty=True, extra="forbid", frozen=True)

    # Where and how
    APP_ENV: Environment = Field(
        "development",
        description="`development` or `production` (anything else is refused); production refuses weak secrets "
        "(`SECRET_KEY` ≥ 32, tokens ≥ 16, `ADMIN_PASSWORD` ≥ 12 characters), adds HSTS and drops the demo tasks",
    )
    REDIS_URL: str | None = Field(
        None,
        description="`redis://` or `rediss://` (TLS), password as usual; required (`make run` starts an embedded "
        "server and stores its address in `.env`)",
    )
    REDIS_TLS_VERIFY: bool = Field(True, description="`false` accepts a self-signed certificate on `rediss://`")
    LOG_FORMAT: Literal["text", "json"] = Field("text", description="`json` for JSON lines from every process")
    QUEUES: CommaList = Field(
        DEFAULT_QUEUES, description="the app's queues, highest priority first; a task's queue must be one of them"
    )

    # Credentials
    API_TOKENS: str = Field("", description="comma-separated bearer tokens (generated into `.env` by `make run`)")
    SECRET_KEY: str | None = Field(
        None, description="signs sessions; random per process when unset outside production (`.env` under `make run`)"
    )
    ADMIN_PASSWORD: str = Field("", description="a password that logs in to the pages besides the API tokens")
    SESSION_HOURS: float = Field(12, gt=0, description="how long a login lasts")
    LOGIN_RATE_LIMIT: str = Field("5/minute", description="failed logins per client address (429 beyond)")
    TRUSTED_PROXIES: int = Field(
        0, ge=0, description="reverse proxies in front of the web (Heroku's router: `1`) whose forwarded headers count"
    )

    # Requests and limits of the web
    MAX_CONTENT_LENGTH: int = Field(1024 * 1024, ge=1, description="largest request body in bytes (413 beyond)")
    JSON_MAX_DEPTH: int = Field(32, ge=1, description="deepest JSON nesting accepted")
    BATCH_MAX_ITEMS: int = Field(1000, ge=1, description="items per `POST /api/jobs/batch`")
    SUBMIT_RATE_LIMIT: str = Field(
        "off",
        description="per credential, on job and upload submissions (429 beyond), e.g. `50/second;1000/minute`; "
        "`off`: the queue cap (`QUEUE_MAX_LENGTH`) is the backpressure",
    )
    SSE_MAX_SECONDS: int = Field(3600, ge=1, description="an event stream ends after this long; clients reconnect")
    SSE_MAX_STREAMS: int = Field(900, ge=0, description="open event streams per web process (503 beyond)")
    REDIS_SOCKET_TIMEOUT: float = Field(1.0, gt=0, description="seconds the web waits on Redis before a 503")
    REDIS_MAX_CONNECTIONS: int = Field(1000, ge=1, description="the web's Redis connection pool, per process")
    UPLOAD_MAX_BYTES: int = Field(20 * 1024 * 1024, ge=1, description="largest file `POST /api/uploads` accepts")
    UPLOAD_QUOTA_BYTES: int = Field(
        200 * 1024 * 1024, ge=0, description="bytes of uploads one credential may keep (429 beyond; 0: no quota)"
    )
    QUEUE_MAX_LENGTH: int = Field(
        100_000, ge=0, description="jobs waiting in one queue beyond which submissions get 429 (0: no cap)"
    )
    REDIS_MEMORY_MAX_RATIO: float = Field(
        0.9, ge=0, le=1, description="share of Redis `maxmemory` beyond which new jobs get 503 (0: no check)"
    )
    BACKPRESSURE_RETRY_AFTER: int = Field(5, ge=1, description="the `Retry-After` of those answers, in seconds")
    DASHBOARD_ACTIONS: bool = Field(False, description="allow rq-dashboard's requeue, delete and empty buttons")
    AUDIT_RETENTION_DAYS: int = Field(90, ge=1, le=3650, description="how long the audit log keeps operators' actions")
    BULK_MAX_JOBS: int = Field(
        100_000, ge=1, description="jobs one bulk retry, cancel or delete acts on at most (repeat it for more)"
    )

    # The web process (app/gunicorn_conf.py)
    PORT: int = Field(5000, ge=1, le=65535, description="web port")
    WEB_HOST: str = Field("0.0.0.0", description="web bind address (`127.0.0.1` under `make run`)")
    WEB_CONCURRENCY: int = Field(2, ge=1, description="gunicorn processes")
    WEB_CONNECTIONS: int = Field(1000, ge=1, description="concurrent connections per gunicorn process")
    FORWARDED_ALLOW_IPS: str = Field("127.0.0.1", description="addresses gunicorn trusts for forwarded headers")

    # Tasks
    OFFLOAD_DEMO_TASKS: bool | None = Field(
        None, description="load the `demo.*` tasks (`on`/`off`); unset: on in development, off in production"
    )
    OFFLOAD_TASK_MODULES: CommaList = Field((), description="extra task modules to load, comma-separated")
    OUTBOUND_ALLOW_PRIVATE: bool | None = Field(
        None, description="may tasks call private and loopback addresses; unset: only outside production"
    )
    SMTP_URL: str | None = Field(None, description="the mail task's server: `smtp://user:pass@host:587` or `smtps://`")
    MAIL_FROM: str = Field("Offload <offload@localhost>", description="the mail task's sender")

    # Workers
    OFFLOAD_QUEUES: CommaList | None = Field(
        None, description="the queues one worker serves, in priority order (default: all of `QUEUES`)"
    )
    OFFLOAD_SHUTDOWN_GRACE: float = Field(
        20, ge=0, description="seconds a stopping worker lets its job finish before handing it back (`3` in `.env`)"
    )
    OFFLOAD_HEARTBEAT_GRACE: int = Field(
        15, ge=1, description="seconds past the last heartbeat of a job and its worker before the job runs again"
    )
    OFFLOAD_MAX_RECOVERIES: int = Field(
        3, ge=0, description="times a job may be put back after its worker died; then it fails (`WorkerLostError`)"
    )
    OFFLOAD_WORKER_HEARTBEAT_MAX_AGE: float = Field(
        45, gt=0, description="seconds after a worker's last heartbeat when `/readyz` counts it as not alive"
    )
    OFFLOAD_SWEEP_CONFIRM_AFTER: float = Field(
        10, ge=0, description="seconds a job must stay queued in no queue before the sweeper pushes it back"
    )
    OFFLOAD_WORKER_NICE: str = Field(
        "10", description="CPU niceness of workers, `0`-`19`, or `idle` for SCHED_IDLE; `0` keeps the normal priority"
    )
    OFFLOAD_WORKER_CPUS: Literal["all", "spare"] = Field(
        "all", description="`spare` keeps workers off the first CPU, left to the web (`make run` sets it)"
    )

    # Alerts (evaluated by the cron process; docs/alerts.md)
    ALERT_RULES: tuple[AlertRule, ...] = Field(
        DEFAULT_RULES,
        description="the alert rules, as a JSON list (docs/alerts.md); unset: one of each kind with its defaults",
    )
    ALERT_CHECK_SECONDS: float = Field(15, gt=0, le=3600, description="how often the cron process evaluates the rules")
    ALERT_REPEAT_SECONDS: float = Field(
        3600, gt=0, description="how often a firing alert is told again while it keeps firing"
    )
    ALERT_WEBHOOK_URL: str | None = Field(
        None, description="where alerts are POSTed (Slack-compatible JSON), through the `webhooks.deliver` task"
    )
    ALERT_WEBHOOK_SECRET: str | None = Field(None, description="signs the alert webhooks (`Offload-Signature`)")
    ALERT_EMAIL_TO: CommaList = Field((), description="who is mailed about alerts (comma-separated), via `mail.send`")

    @field_validator("QUEUES", "OFFLOAD_TASK_MODULES", "OFFLOAD_QUEUES", "ALERT_EMAIL_TO", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(item.strip() for item in value.split(",") if item.strip())
        return value

    @field_validator("QUEUES")
    @classmethod
    def _queue_names(cls, queues: tuple[str, ...]) -> tuple[str, ...]:
        if not queues:
            raise ValueError("name at least one queue")
        bad = [name for name in queues if not QUEUE_NAME.fullmatch(name)]
        if bad:
            raise ValueError(f"queue names are 1 to 64 letters, digits, '_' or '-', not {bad[0]!r}")
        if len(set(queues)) != len(queues):
            raise ValueError("a queue is named twice")
        return queues

    @field_validator("SUBMIT_RATE_LIMIT", "LOGIN_RATE_LIMIT")
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        value = value.strip()
        if value.lower() == "off":
            return "off"
        try:
            parse_many(value)
        except ValueError:
            raise ValueError("write windows like 50/second;1000/minute, or off") from None
        return value

    @field_validator("OFFLOAD_WORKER_NICE")
    @classmethod
    def _niceness(cls, value: str) -> str:
        value = value.strip().lower()
        if value != "idle" and not (value.isdigit() and 0 <= int(value) <= 19):
            raise ValueError("must be 0 to 19, or idle")
        return value

    # What the settings mean together
    @property
    def production(self) -> bool:
        return self.APP_ENV == "production"

    @property
    def demo_tasks(self) -> bool:
        return self.OFFLOAD_DEMO_TASKS if self.OFFLOAD_DEMO_TASKS is not None else not self.production

    @property
    def private_destinations_allowed(self) -> bool:
        return self.OUTBOUND_ALLOW_PRIVATE if self.OUTBOUND_ALLOW_PRIVATE is not None else not self.production

    @property
    def api_tokens(self) -> list[str]:
        return split_tokens(self.API_TOKENS)

    @property
    def worker_queues(self) -> tuple[str, ...]:
        """The queues this worker serves: ``OFFLOAD_QUEUES`` or all of them."""
        return self.OFFLOAD_QUEUES or self.QUEUES

    def check_web(self) -> None:
        """Refuse what would run the web insecurely or not at all, in one line."""
        if not self.REDIS_URL:
            raise SettingsError("REDIS_URL is not set: point Offload at a Redis server (make run starts one for you)")
        if not self.production:
            return
        missing = [name for name in ("SECRET_KEY", "API_TOKENS") if not getattr(self, name)]
        if missing:
            raise SettingsError(f"refusing to start in production without {' and '.join(missing)}")
        if not self.api_tokens:
            raise SettingsError("refusing to start in production: API_TOKENS holds no token once spaces and commas go")
        if any(len(token) < MIN_API_TOKEN for token in self.api_tokens):
            raise SettingsError(
                f"refusing to start in production with an API token shorter than {MIN_API_TOKEN} characters"
            )
        if len(self.SECRET_KEY or "") < MIN_SECRET_KEY:
            raise SettingsError(
                f"refusing to start in production with a SECRET_KEY shorter than {MIN_SECRET_KEY} characters"
            )
        if self.ADMIN_PASSWORD and len(self.ADMIN_PASSWORD) < MIN_ADMIN_PASSWORD:
            raise SettingsError(
                f"refusing to start in production with an ADMIN_PASSWORD shorter than {MIN_ADMIN_PASSWORD} characters"
            )


def split_tokens(raw: str) -> list[str]:
    """The tokens of a comma-separated ``API_TOKENS``."""
    return [token.strip() for token in raw.split(",") if token.strip()]


def load(**overrides: Any) -> Settings:
    """The settings from the environment, ``overrides`` first; a bad value is a ``SettingsError``."""
    try:
        return Settings(**overrides)
    except ValidationError as error:
        raise SettingsError(one_line(error)) from None


def one_line(error: ValidationError) -> str:
    """The first problem of ``error``, as ``NAME='value': why``."""
    first = error.errors(include_url=False)[0]
    name = ".".join(str(part) for part in first["loc"]) or "settings"
    if first["type"] == "extra_forbidden":
        return f"{name} is not a setting of Offload"
    message = first["msg"].removeprefix("Value error, ")
    return f"{name}={first.get('input')!r}: {message}"


@cache
def get_settings() -> Settings:
    """This process's settings, read from the environment once."""
    return load()


def reload() -> Settings:
    """Read the environment again (tests that change it, and nothing else)."""
    get_settings.cache_clear()
    return get_settings()
