"""Rate limits, counted in Redis across all web processes.

Job submissions (API, batch, the task form) are limited per API token by fixed windows
that the enqueue script counts in the same atomic step that writes the jobs: one round
trip, where a separate limiter cost one more per window and about a fifth of a
submission's CPU (`make bench`). ``limits`` (Flask-Limiter's own core) parses the
setting. Uploads and failed logins go through Flask-Limiter with its Redis storage; its
client gives up as fast as the app's own, and errors are swallowed, so a Redis outage
still answers the app's 503 within two seconds. Keys hold a hash of the token, never the
token.
"""

from __future__ import annotations

import functools
import hashlib
import math
import time

from flask import Flask, Response, current_app, render_template, request, session
from flask_limiter import Limiter, RateLimitExceeded
from flask_limiter.util import get_remote_address
from limits import parse_many
from redis.backoff import NoBackoff
from redis.retry import Retry

from app.auth import bearer_token
from app.problems import ApiProblem, problem_response
from jobs.connection import redis_url
from jobs.enqueue import Window

EXTENSION = "offload.limiter"
LIMITED_ENDPOINTS = ("api.uploads.create_upload",)
LOGIN_ENDPOINT = "web.login.login"
SUBMIT_PREFIX = "offload:ratelimit:submit"


def _token_key() -> str:
    """Who submits: the bearer token, or the credential a page's session was opened with."""
    credential = bearer_token() or session.get("credential") or "anonymous"
    return hashlib.sha256(str(credential).encode()).hexdigest()[:24]


def submission_limit() -> str:
    return current_app.config["SUBMIT_RATE_LIMIT"]


def submission_windows() -> list[Window]:
    """The submission limit's windows for whoever submits this request (counted by the write)."""
    who = _token_key()
    return [
        Window(f"{SUBMIT_PREFIX}:{who}:{suffix}", amount, seconds, text)
        for suffix, amount, seconds, text in _windows_of(submission_limit())
    ]


@functools.lru_cache(maxsize=8)
def _windows_of(setting: str) -> list[tuple[str, int, int, str]]:
    """(key suffix, amount, seconds, text) per window of a setting like ``50/second;1000/minute``."""
    return [
        (f"{item.amount}/{item.multiples}/{item.GRANULARITY.name}", item.amount, item.get_expiry(), str(item))
        for item in parse_many(setting)
    ]


def login_limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


def _login_failed(response: Response) -> bool:
    return response.status_code == 401


def init_app(app: Flask) -> Limiter:
    """Limit the submission endpoints (call after the blueprints are registered)."""
    app.config.setdefault("RATELIMIT_STORAGE_URI", redis_url(app.config["REDIS_URL"]))
    app.config.setdefault(
        "RATELIMIT_STORAGE_OPTIONS",
        {"socket_timeout": 0.5, "socket_connect_timeout": 0.5, "retry": Retry(NoBackoff(), 0)},
    )
    app.config.setdefault("RATELIMIT_SWALLOW_ERRORS", True)
    app.config.setdefault("RATELIMIT_HEADERS_ENABLED", False)  # it would overwrite other answers' Retry-After
    app.config.setdefault("RATELIMIT_KEY_PREFIX", "offload:ratelimit")
    limiter = Limiter(_token_key, app=app, default_limits=[])
    for endpoint in LIMITED_ENDPOINTS:
        app.view_functions[endpoint] = limiter.limit(submission_limit)(app.view_functions[endpoint])
    # Failed logins only, per client address: guessing is slow, a returning user never waits.
    app.view_functions[LOGIN_ENDPOINT] = limiter.limit(
        login_limit, key_func=get_remote_address, methods=["POST"], deduct_when=_login_failed
    )(app.view_functions[LOGIN_ENDPOINT])
    app.extensions[EXTENSION] = limiter

    @app.errorhandler(RateLimitExceeded)
    def too_many(error: RateLimitExceeded) -> Response:
        current = limiter.current_limit
        wait = max(1, math.ceil(current.reset_at - time.time())) if current is not None else 1
        if request.endpoint == LOGIN_ENDPOINT:
            message = f"Too many failed logins from this address; try again in {wait} s."
            page = render_template("login.html", next=request.values.get("next", "/"), error=message)
            return Response(page, 429, {"Retry-After": str(wait)})
        return problem_response(too_many_submissions(f"this token may submit {error.description}", wait))

    return limiter


def too_many_submissions(detail: str, wait: int) -> ApiProblem:
    return ApiProblem(
        429,
        "Too many submissions",
        f"{detail}; try again in {wait} s",
        type="urn:offload:problem:rate-limited",
        headers={"Retry-After": str(wait)},
    )
