"""GET /api/openapi.json: OpenAPI 3.1 of the API, built from the same models and registry."""

from __future__ import annotations

import copy
from typing import Any

from flask import Blueprint
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from app.api import fleet_schemas, schemas
from app.api.uploads import Base64Upload
from jobs.registry import registry
from jobs.settings import get_settings
from jobs.vocabulary import STATUSES

bp = Blueprint("openapi", __name__)
_REF = "#/components/schemas/{model}"
_PROBLEM = "application/problem+json"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF.format(model=name)}


def _json(name: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(name)}}}


def _problems(*codes: int) -> dict[str, Any]:
    standard = {401: "Missing or wrong bearer token", 503: "Redis unreachable"}
    texts = {
        409: "Conflicts with the job's state",
        429: "Queue full: try again after Retry-After",
        400: "Malformed JSON",
        404: "Not found",
        413: "Body too large",
        415: "Body is not JSON",
        422: "Validation failed",
        **standard,
    }
    return {
        str(code): {"description": texts[code], "content": {_PROBLEM: {"schema": _ref("Problem")}}}
        for code in sorted({*codes, *standard})
    }


def _enqueue_variants(components: dict[str, Any]) -> list[dict[str, Any]]:
    """One request shape per task: its name as a constant and its own argument schema."""
    variants = []
    base = components["EnqueueRequest"]
    for task in registry.all():
        args_schema = task.schema()
        name = args_schema.get("title", task.name)
        components[name] = _inline_refs(args_schema, components)
        variant = copy.deepcopy(base)
        variant["title"] = f"Enqueue {task.name}"
        variant["properties"]["task"] = {"const": task.name, "type": "string"}
        variant["properties"]["args"] = _ref(name)
        variants.append(variant)
    return variants


def _inline_refs(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    """Move a task schema's local ``$defs`` into the shared components."""
    schema = copy.deepcopy(schema)
    for def_name, definition in schema.pop("$defs", {}).items():
        components.setdefault(def_name, definition)
    return _rewrite_refs(schema)


def _rewrite_refs(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            key: (value.replace("#/$defs/", "#/components/schemas/") if key == "$ref" else _rewrite_refs(value))
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_rewrite_refs(item) for item in node]
    return node


def _fleet_paths() -> dict[str, Any]:
    def named(what: str, values: list[str] | None = None) -> list[dict[str, Any]]:
        schema: dict[str, Any] = {"enum": values} if values else {"type": "string"}
        return [{"name": "name", "in": "path", "required": True, "schema": schema, "description": what}]

    def post(summary: str, parameters: list[dict[str, Any]], code: str, model: str, *errors: int) -> dict[str, Any]:
        answers = {code: _json(model, summary), **_problems(404, *errors)}
        return {"post": {"summary": summary, "parameters": parameters, "responses": answers}}

    def get(summary: str, model: str) -> dict[str, Any]:
        return {"get": {"summary": summary, "responses": {"200": _json(model, summary)}}}

    queue = named("A queue the app declares (QUEUES)", list(get_settings().QUEUES))
    worker = named("A worker's name, as GET /api/workers lists it")
    entry = named("A scheduled task's name, as GET /api/cron lists it")
    return {
        "/api/queues": get("Queues: counts, latency, throughput, workers", "QueueList"),
        "/api/queues/{name}/pause": post("Pause a queue: no job of it starts", queue, "200", "QueueAction"),
        "/api/queues/{name}/resume": post("Resume a paused queue", queue, "200", "QueueAction"),
        "/api/queues/{name}/empty": post("Delete the jobs waiting in a queue", queue, "200", "BulkOutcome"),
        "/api/workers": get("Workers", "WorkerList"),
        "/api/workers/{name}/stop": post("Stop a worker after its current job", worker, "202", "WorkerInfo"),
        "/api/cron": get("Cron entries and their last runs", "CronList"),
        "/api/cron/{name}/run": post("Run a cron entry now", entry, "202", "JobDocument", 429, 503),
        "/api/status": get("The status line", "StatusLine"),
        "/api/stats": {
            "get": {
                "summary": "Jobs over time: counts, durations, waits, depth (the charts' numbers)",
                "parameters": [
                    {"name": "range", "in": "query", "schema": {"enum": ["hour", "day", "month"]}},
                    {"name": "task", "in": "query", "schema": {"type": "string"}},
                    {"name": "queue", "in": "query", "schema": {"enum": list(get_settings().QUEUES)}},
                ],
                "responses": {"200": _json("Stats", "Points, oldest first"), **_problems(404, 422)},
            }
        },
        "/api/alerts": get("Alerts and their state", "AlertList"),
        "/api/alerts/test": {
            "post": {"summary": "Send a test notification", "responses": {"202": _json("Notified", "The jobs")}}
        },
    }


def build_document() -> dict[str, Any]:
    models: list[type[BaseModel]] = [
        schemas.EnqueueRequest,
        schemas.JobDocument,
        schemas.JobList,
        schemas.TaskInfo,
        schemas.TaskList,
        fleet_schemas.QueueList,
        fleet_schemas.QueueAction,
        fleet_schemas.WorkerList,
        fleet_schemas.WorkerInfo,
        fleet_schemas.CronList,
        fleet_schemas.StatusLine,
        fleet_schemas.AlertList,
        fleet_schemas.Notified,
        fleet_schemas.Stats,
        schemas.Problem,
        schemas.BatchItem,
        schemas.JobLogs,
        schemas.BulkRequest,
        schemas.BulkOutcome,
        schemas.FailureGroups,
        schemas.AuditLog,
        Base64Upload,
    ]
    _, top = models_json_schema([(m, "serialization") for m in models], ref_template=_REF)
    components: dict[str, Any] = top["$defs"]
    enqueue_body = {"oneOf": _enqueue_variants(components)} if registry.all() else _ref("EnqueueRequest")
    job_id = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}}
    list_params = [
        {"name": "q", "in": "query", "schema": {"type": "string", "maxLength": 200}},
        {"name": "status", "in": "query", "schema": {"enum": list(STATUSES)}},
        {"name": "task", "in": "query", "schema": {"type": "string"}},
        {"name": "queue", "in": "query", "schema": {"enum": list(get_settings().QUEUES)}},
        {"name": "since", "in": "query", "schema": {"type": "string", "format": "date-time"}},
        {"name": "until", "in": "query", "schema": {"type": "string", "format": "date-time"}},
        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 200}},
        {"name": "cursor", "in": "query", "schema": {"type": "string"}},
    ]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Offload",
            "version": "1",
            "description": "Run registered Python tasks in the background on RQ workers.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": {
            "/api/tasks": {"get": {"summary": "List tasks", "responses": {"200": _json("TaskList", "The registry")}}},
            "/api/tasks/{name}": {
                "get": {
                    "summary": "One task",
                    "parameters": [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}],
                    "responses": {"200": _json("TaskInfo", "The task"), **_problems(404)},
                }
            },
            "/api/jobs": {
                "post": {
                    "summary": "Enqueue a task",
                    "parameters": [
                        {"name": "Idempotency-Key", "in": "header", "schema": {"type": "string", "maxLength": 255}}
                    ],
                    "requestBody": {"required": True, "content": {"application/json": {"schema": enqueue_body}}},
                    "responses": {
                        "202": {
                            **_json("JobDocument", "Accepted; the new job"),
                            "headers": {"Location": {"schema": {"type": "string"}}},
                        },
                        "200": {
                            **_json("JobDocument", "The job an earlier request with this Idempotency-Key created"),
                            "headers": {"Location": {"schema": {"type": "string"}}},
                        },
                        **_problems(400, 404, 409, 413, 415, 422, 429),
                    },
                },
                "get": {
                    "summary": "List jobs, newest first",
                    "parameters": list_params,
                    "responses": {"200": _json("JobList", "A page of jobs"), **_problems(422)},
                },
            },
            "/api/jobs/batch": {
                "post": {
                    "summary": "Enqueue many; each item is accepted or refused on its own",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"type": "array", "items": enqueue_body}}},
                    },
                    "responses": {
                        "202": {
                            "description": "One result per item, in order",
                            "content": {"application/json": {"schema": {"type": "array", "items": _ref("BatchItem")}}},
                        },
                        **_problems(400, 413, 415, 422, 429),
                    },
                }
            },
            "/api/jobs/{job_id}": {
                "get": {
                    "summary": "One job",
                    "parameters": [job_id],
                    "responses": {"200": _json("JobDocument", "The job"), **_problems(404)},
                },
                "delete": {
                    "summary": "Forget an ended job",
                    "parameters": [job_id],
                    "responses": {"204": {"description": "Deleted"}, **_problems(404, 409)},
                },
            },
            "/api/jobs/{job_id}/cancel": {
                "post": {
                    "summary": "Cancel a waiting job or stop a running one",
                    "parameters": [job_id],
                    "responses": {"202": _json("JobDocument", "The job"), **_problems(404, 409)},
                }
            },
            "/api/jobs/{job_id}/retry": {
                "post": {
                    "summary": "Run a failed, stopped or canceled job again",
                    "parameters": [job_id],
                    "responses": {"202": _json("JobDocument", "The job"), **_problems(404, 409)},
                }
            },
            "/api/jobs/{job_id}/events": {
                "get": {
                    "summary": "Server-Sent Events: status, progress, log lines, until the job ends",
                    "parameters": [
                        job_id,
                        {"name": "Last-Event-ID", "in": "header", "schema": {"type": "string"}},
                    ],
                    "responses": {
                        "200": {"description": "An event stream", "content": {"text/event-stream": {}}},
                        **_problems(404, 422),
                    },
                }
            },
            "/api/jobs/{job_id}/logs": {
                "get": {
                    "summary": "Captured log lines (the newest, within the cap)",
                    "parameters": [
                        job_id,
                        {"name": "tail", "in": "query", "schema": {"type": "integer", "minimum": 1}},
                    ],
                    "responses": {"200": _json("JobLogs", "Log lines"), **_problems(404, 422)},
                }
            },
            "/api/jobs/{job_id}/artifact": {
                "get": {
                    "summary": "The file the task produced",
                    "parameters": [job_id],
                    "responses": {
                        "200": {"description": "The file, with its content type", "content": {"*/*": {}}},
                        **_problems(404),
                    },
                }
            },
            "/api/uploads": {
                "post": {
                    "summary": "Send a file for a task (multipart field 'file', or JSON with base64 'data')",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "multipart/form-data": {
                                "schema": {
                                    "type": "object",
                                    "properties": {"file": {"type": "string", "format": "binary"}},
                                    "required": ["file"],
                                }
                            },
                            "application/json": {"schema": _ref("Base64Upload")},
                        },
                    },
                    "responses": {
                        "201": {"description": "Stored; pass its id to the task", "content": {"application/json": {}}},
                        **_problems(400, 413, 415, 422, 429, 503),
                    },
                }
            },
            "/api/uploads/{upload_id}": {
                "delete": {
                    "summary": "Delete one of your uploads before it expires (its bytes return to your quota)",
                    "parameters": [{"name": "upload_id", "in": "path", "required": True, "schema": {"type": "string"}}],
                    "responses": {"204": {"description": "Deleted"}, **_problems(404)},
                }
            },
            **{
                f"/api/jobs/{action}": {
                    "post": {
                        "summary": f"{action.capitalize()} every job a filter or a failure group finds",
                        "requestBody": {
                            "required": True,
                            "content": {"application/json": {"schema": _ref("BulkRequest")}},
                        },
                        "responses": {
                            "200": _json("BulkOutcome", "What was done and skipped"),
                            **_problems(400, 415, 422),
                        },
                    }
                }
                for action in ("retry", "cancel", "delete")
            },
            "/api/failures": {
                "get": {
                    "summary": "Failed jobs grouped by cause",
                    "responses": {"200": _json("FailureGroups", "Groups")},
                }
            },
            "/api/audit": {
                "get": {
                    "summary": "Operators' actions, newest first",
                    "parameters": [
                        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500}},
                        {
                            "name": "before",
                            "in": "query",
                            "schema": {"type": "string", "pattern": r"^\d{1,20}-\d{1,20}$"},
                        },
                    ],
                    "responses": {"200": _json("AuditLog", "Entries"), **_problems(422)},
                }
            },
            **_fleet_paths(),
            "/api/openapi.json": {
                "get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI 3.1"}}}
            },
        },
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


@bp.get("/openapi.json")
def openapi_document() -> dict[str, Any]:
    return build_document()
