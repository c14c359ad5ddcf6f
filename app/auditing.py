"""Recording operators' actions in the audit log (``jobs.records.audit_log``) from a request or the CLI."""

from __future__ import annotations

import getpass
import hashlib
import socket
from typing import Any

from flask import current_app, has_request_context, request, session

from app.auth import bearer_token
from app.redis_client import get_redis
from jobs.records import audit_log


def actor() -> str:
    """Who acts, by a fingerprint of the credential (never the secret), or the CLI's user."""
    if not has_request_context():
        return f"cli {getpass.getuser()}"
    basic = request.authorization
    token = bearer_token() or (basic.password if basic is not None and basic.type == "basic" else None)
    if token:
        return f"token {hashlib.sha256(token.encode()).hexdigest()[:12]}"
    held = session.get("credential")
    return f"session {str(held)[:12]}" if held else "anonymous"


def via() -> str:
    if not has_request_context():
        return "cli"
    if request.blueprint and request.blueprint.startswith("rq_dashboard"):
        return "rq"
    return "api" if bearer_token() else "page"


def record(
    action: str, *, job: str | None = None, filters: dict[str, Any] | None = None, done: int = 0, skipped: int = 0
) -> None:
    source = (request.remote_addr or "") if has_request_context() else socket.gethostname()
    entry = audit_log.Entry(actor(), action, via(), source, job, filters or {}, done, skipped)
    audit_log.record(get_redis(), entry, current_app.config["AUDIT_RETENTION_DAYS"])
