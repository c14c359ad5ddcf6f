"""Logging for every Offload process: plain text, or JSON lines with LOG_FORMAT=json.

Each record carries the request id that caused it, when there is one: the web sets it
per request, it travels into the job's meta at enqueue, and the worker sets it again
while the job runs, so one id finds a request's lines in the web and worker logs alike.
"""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar

from pythonjsonlogger.json import JsonFormatter
from rq import get_current_job

from jobs.settings import get_settings

request_id: ContextVar[str | None] = ContextVar("offload_request_id", default=None)

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
JSON_FIELDS = ["asctime", "levelname", "name", "message", "request_id", "job_id", "process"]


class ContextFilter(logging.Filter):
    """Adds ``request_id`` and ``job_id`` to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        job = get_current_job()
        record.job_id = job.id if job is not None else None
        return True


def formatter(fmt: str | None = None) -> logging.Formatter:
    if (fmt or get_settings().LOG_FORMAT).lower() == "json":
        return JsonFormatter(
            JSON_FIELDS,
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            timestamp=False,
        )
    return logging.Formatter(TEXT_FORMAT)


def configure(level: int = logging.INFO, fmt: str | None = None) -> None:
    """Send the root logger's records to stderr in the chosen format (idempotent)."""
    root = logging.getLogger()
    for handler in root.handlers:
        if getattr(handler, "offload", False):
            handler.setFormatter(formatter(fmt))
            return
    handler = logging.StreamHandler(sys.stderr)
    handler.offload = True  # type: ignore[attr-defined]
    handler.setFormatter(formatter(fmt))
    handler.addFilter(ContextFilter())
    root.addHandler(handler)
    root.setLevel(level)
