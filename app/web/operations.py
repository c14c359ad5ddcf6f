"""/failures (failed jobs by cause), /bulk/{action} (act on every job a filter or group finds, after a
confirmation that names the count) and /audit (who did what): the same services as the API's."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from pydantic import ValidationError

from app import auditing
from app.api.schemas import AuditQuery, BulkRequest
from app.redis_client import get_redis
from app.web.pages import with_utc
from jobs import bulk, failures, finding
from jobs.records import audit_log

bp = Blueprint("operations", __name__)
FILTER_FIELDS = ("q", "status", "task", "queue", "since", "until", "group")
VERBS = {"retry": "Retry", "cancel": "Cancel", "delete": "Delete"}


@bp.get("/failures")
def failure_groups() -> str:
    return render_template("failures.html", groups=failures.groups(get_redis()))


@bp.route("/bulk/<any(retry, cancel, delete):action>", methods=["GET", "POST"])
def act_on_many(action: str) -> ResponseReturnValue:
    source = request.form if request.method == "POST" else request.args
    given = {key: value.strip() for key, value in source.items() if key in FILTER_FIELDS and value.strip()}
    try:
        body = BulkRequest.model_validate(with_utc(given))
    except ValidationError as error:
        problems = [f"{'.'.join(map(str, e['loc'])) or 'filters'}: {e['msg']}" for e in error.errors(include_url=False)]
        return render_template("bulk.html", action=action, verb=VERBS[action], given=given, problems=problems), 422
    redis = get_redis()
    if request.method == "GET":
        count = _matching(redis, body)
        return render_template("bulk.html", action=action, verb=VERBS[action], given=given, count=count, problems=[])
    outcome = bulk.act(redis, action, None if body.group else body.search(), body.group)
    auditing.record(action, filters=body.described(), done=outcome.done, skipped=sum(outcome.skipped.values()))
    return render_template("bulk.html", action=action, verb=VERBS[action], given=given, outcome=outcome, problems=[])


@bp.get("/audit")
def audit() -> str:
    try:
        query = AuditQuery.model_validate(request.args.to_dict())
    except ValidationError:
        abort(400, "That page of the audit log does not exist.")
    entries, before = audit_log.read(get_redis(), query.limit, query.before)
    return render_template("audit.html", entries=entries, next_before=before)


@bp.get("/bulk")
def bulk_home() -> ResponseReturnValue:
    return redirect(url_for("web.pages.history"))


def _matching(redis: Any, body: BulkRequest) -> int:
    if body.group:
        chosen = next((group for group in failures.groups(redis) if group.id == body.group), None)
        return chosen.count if chosen else 0
    _, found = finding.find(redis, body.search(), 1)
    return found.matches
