"""Operators' actions on many jobs at once, failures grouped by cause, and the audit log.

POST /api/jobs/retry|cancel|delete act on every job a filter (the list's) or a failure group
finds; GET /api/failures groups failed jobs by cause; GET /api/audit reads who did what.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, request
from pydantic import ValidationError

from app import auditing
from app.api.schemas import AuditQuery, BulkRequest
from app.documents import iso
from app.json_body import json_body
from app.problems import invalid_arguments
from app.redis_client import get_redis
from jobs import bulk, failures
from jobs.records import audit_log

bp = Blueprint("operations", __name__)


@bp.post("/jobs/<any(retry, cancel, delete):action>")
def act_on_many(action: str) -> dict[str, Any]:
    try:
        body = BulkRequest.model_validate(json_body())
    except ValidationError as error:
        raise invalid_arguments(error) from None
    outcome = bulk.act(get_redis(), action, None if body.group else body.search(), body.group)
    auditing.record(action, filters=body.described(), done=outcome.done, skipped=sum(outcome.skipped.values()))
    return outcome.as_dict()


@bp.get("/failures")
def list_failures() -> dict[str, Any]:
    return {"groups": [group_document(group) for group in failures.groups(get_redis())]}


def group_document(group: failures.Group) -> dict[str, Any]:
    return {
        "id": group.id,
        "task": group.task,
        "error_type": group.error_type,
        "message": group.message,
        "count": group.count,
        "first_seen": iso_of(group.first_seen),
        "last_seen": iso_of(group.last_seen),
        "sample": group.sample,
        "job_ids": group.job_ids[:20],
        "links": {
            "jobs": f"/api/jobs?status=failed&task={group.task}&q={group.error_type}",
            "retry": "/api/jobs/retry",
        },
    }


@bp.get("/audit")
def list_audit() -> dict[str, Any]:
    try:
        query = AuditQuery.model_validate(request.args.to_dict())
    except ValidationError as error:
        raise invalid_arguments(error, prefix=("query",)) from None
    entries, before = audit_log.read(get_redis(), query.limit, query.before)
    return {"entries": [entry_document(entry) for entry in entries], "next_before": before}


def entry_document(entry: audit_log.Entry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "at": iso_of(entry.at),
        "actor": entry.actor,
        "action": entry.action,
        "via": entry.via,
        "source": entry.source,
        "job": entry.job,
        "filters": entry.filters,
        "done": entry.done,
        "skipped": entry.skipped,
    }


def iso_of(moment: float | None) -> str | None:
    return None if moment is None else iso(datetime.fromtimestamp(moment, UTC))
