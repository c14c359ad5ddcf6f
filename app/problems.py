"""Errors as values with a shape: RFC 9457 problem details, raised anywhere, rendered once."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify, request
from pydantic import ValidationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError as RedisOutOfMemoryError
from redis.exceptions import TimeoutError as RedisTimeoutError
from werkzeug.exceptions import HTTPException

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger(__name__)


class ApiProblem(Exception):
    """An error the API answers with ``application/problem+json``."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        *,
        type: str = "about:blank",
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.type = type
        self.errors = errors
        self.headers = headers or {}

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"type": self.type, "title": self.title, "status": self.status}
        if self.detail:
            body["detail"] = self.detail
        if self.errors is not None:
            body["errors"] = self.errors
        return body


def invalid_arguments(error: ValidationError, prefix: tuple[str | int, ...] = ()) -> ApiProblem:
    """A 422 naming each bad field with pydantic's location and message."""
    errors = [
        {"loc": [*prefix, *item["loc"]], "msg": item["msg"], "type": item["type"]}
        for item in error.errors(include_url=False)
    ]
    return validation_problem(f"{len(errors)} field(s) failed validation", errors)


def validation_problem(
    detail: str, errors: list[dict[str, Any]] | None = None, title: str = "Invalid arguments"
) -> ApiProblem:
    """A 422 with per-field errors (``loc``, ``msg``, ``type``), as pydantic's are shown."""
    return ApiProblem(422, title, detail, type="urn:offload:problem:validation", errors=errors or [])


def field_problem(loc: list[Any], msg: str, detail: str | None = None, title: str = "Invalid arguments") -> ApiProblem:
    """A 422 naming one bad field."""
    return validation_problem(detail or msg, [{"loc": loc, "msg": msg, "type": "value_error"}], title)


def problem_response(problem: ApiProblem) -> Response:
    response = jsonify(problem.to_dict())
    response.status_code = problem.status
    response.mimetype = PROBLEM_JSON
    response.headers.update(problem.headers)
    return response


def _wants_problem() -> bool:
    return request.path == "/api" or request.path.startswith("/api/")


def _unavailable(title: str, detail: str, kind: str, text: str) -> Response | tuple[str, int, dict[str, str]]:
    """A 503 with Retry-After: problem+json for the API, one line of text for the rest."""
    problem = ApiProblem(503, title, detail, type=f"urn:offload:problem:{kind}", headers={"Retry-After": "5"})
    if _wants_problem():
        return problem_response(problem)
    return f"Service unavailable: {text}.\n", 503, {"Retry-After": "5"}


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiProblem)
    def handle_problem(problem: ApiProblem) -> Response:
        return problem_response(problem)

    @app.errorhandler(RedisOutOfMemoryError)
    def handle_redis_full(error: RedisOutOfMemoryError) -> Response | tuple[str, int, dict[str, str]]:
        log.warning("redis refused a write at its memory limit while serving %s %s", request.method, request.path)
        detail = "Redis is at its memory limit and refuses new data; try again when jobs have expired"
        return _unavailable("Job store full", detail, "memory", "Redis is full")

    @app.errorhandler(RedisConnectionError)
    @app.errorhandler(RedisTimeoutError)
    def handle_redis_down(error: Exception) -> Response | tuple[str, int, dict[str, str]]:
        log.warning("redis unreachable while serving %s %s: %s", request.method, request.path, error)
        detail = "the job store is not answering; try again shortly"
        return _unavailable("Redis unreachable", detail, "redis-unavailable", "Redis is not answering")

    @app.errorhandler(HTTPException)
    def handle_http(error: HTTPException) -> Response | HTTPException:
        if not _wants_problem():
            return error
        problem = ApiProblem(error.code or 500, error.name, error.description)
        response = problem_response(problem)
        if error.code == 405 and error.valid_methods:  # type: ignore[attr-defined]
            response.headers["Allow"] = ", ".join(error.valid_methods)  # type: ignore[attr-defined]
        return response

    @app.errorhandler(Exception)
    def handle_unexpected(error: Exception) -> Response | tuple[str, int]:
        log.exception("unhandled error serving %s %s", request.method, request.path)
        if _wants_problem():
            return problem_response(ApiProblem(500, "Internal Server Error", "an unexpected error occurred"))
        return "Internal Server Error\n", 500
