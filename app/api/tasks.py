"""GET /api/tasks and /api/tasks/{name}: the registry as clients see it."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from app.documents import iso
from jobs.registry import Task, registry

bp = Blueprint("tasks", __name__)


def task_info(task: Task) -> dict[str, Any]:
    return {
        "name": task.name,
        "description": task.description,
        "queue": task.queue,
        "timeout": task.timeout,
        "retry": task.retry.as_dict(),
        "result_ttl": task.result_ttl,
        "failure_ttl": task.failure_ttl,
        "schedule": task.schedule,
        "next_run": iso(task.next_run()),
        "schema": task.schema(),
    }


@bp.get("/tasks")
def list_tasks() -> dict[str, Any]:
    return {"tasks": [task_info(task) for task in registry.all()]}


@bp.get("/tasks/<name>")
def show_task(name: str) -> dict[str, Any]:
    return task_info(registry.lookup(name))  # UnknownTaskError: a 404 (app.domain_problems)
