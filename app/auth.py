"""Credentials: a bearer token for the API, HTTP Basic with a token for the dashboard.

Every route needs one except those marked public (health checks). Tokens are
compared in constant time, each against every configured token.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, current_app, request

from app.config import api_tokens
from app.problems import ApiProblem

DASHBOARD_PREFIX = "/rq"


def public(view: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a view as reachable without a credential."""
    view.offload_public = True  # type: ignore[attr-defined]
    return view


def token_is_valid(candidate: str | None) -> bool:
    if not candidate:
        return False
    given = candidate.encode()
    matched = False
    for token in api_tokens(current_app.config):
        matched |= hmac.compare_digest(given, token.encode())
    return matched


def bearer_token() -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None


def _basic_password() -> str | None:
    auth = request.authorization
    return auth.password if auth is not None and auth.type == "basic" else None


def _is_public() -> bool:
    view = current_app.view_functions.get(request.endpoint or "")
    return bool(getattr(view, "offload_public", False))


def _require_credential() -> Response | None:
    if _is_public():
        return None
    if request.path == DASHBOARD_PREFIX or request.path.startswith(f"{DASHBOARD_PREFIX}/"):
        if token_is_valid(_basic_password()) or token_is_valid(bearer_token()):
            return None
        return Response(
            "Log in with any user name and an API token as the password.\n",
            401,
            {"WWW-Authenticate": 'Basic realm="Offload dashboard", charset="UTF-8"'},
            mimetype="text/plain",
        )
    if token_is_valid(bearer_token()):
        return None
    raise ApiProblem(
        401,
        "Unauthorized",
        "send Authorization: Bearer <token> with a token from API_TOKENS",
        type="urn:offload:problem:unauthorized",
        headers={"WWW-Authenticate": 'Bearer realm="offload"'},
    )


def init_app(app: Flask) -> None:
    app.before_request(_require_credential)
