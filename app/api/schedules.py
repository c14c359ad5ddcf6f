"""GET /api/cron (every entry, its last runs, a missed run flagged) and POST /api/cron/{name}/run."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from app import auditing
from app.documents import job_document
from app.fleet_documents import cron_document
from app.redis_client import get_redis
from jobs.cron import entries

bp = Blueprint("schedules", __name__)


@bp.get("/cron")
def list_entries() -> dict[str, Any]:
    return {"entries": [cron_document(entry) for entry in entries.entries(get_redis())]}


@bp.post("/cron/<name>/run")
def run_entry(name: str) -> tuple[dict[str, Any], int]:
    job = entries.run_now(get_redis(), name)
    auditing.record("run cron entry now", job=job.id, filters={"entry": name})
    return job_document(job), 202
