"""Credentials: a bearer token for the API, a signed session for the pages and the dashboard.

Every route needs one except those marked public (health checks, the login page,
static files). Tokens are compared in constant time, each against every configured
token. A session holds only a keyed fingerprint of the secret it was opened with, so
removing a token (or changing ADMIN_PASSWORD) ends the sessions it opened.

The API also accepts a session, for the pages' own calls; those that change state must
then carry the CSRF token (``X-CSRFToken``), as form posts do.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, current_app, g, redirect, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFProtect

from app.flask_settings import api_tokens
from app.problems import ApiProblem
from app.redis_client import get_redis

DASHBOARD_PREFIX = "/rq"
CSRF = "offload.csrf"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def public(view: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a view as reachable without a credential."""
    view.offload_public = True  # type: ignore[attr-defined]
    return view


def _matches_any(candidate: str, secrets: list[str]) -> bool:
    given = candidate.encode()
    matched = False
    for secret in secrets:
        matched |= hmac.compare_digest(given, secret.encode())
    return matched


def token_is_valid(candidate: str | None) -> bool:
    return candidate is not None and candidate != "" and _matches_any(candidate, api_tokens())


def _login_secrets() -> list[str]:
    admin = current_app.config.get("ADMIN_PASSWORD") or ""
    return [*api_tokens(), *([admin] if admin else [])]


def _fingerprint(secret: str) -> str:
    key = str(current_app.config["SECRET_KEY"]).encode()
    return hmac.new(key, secret.encode(), hashlib.sha256).hexdigest()


def log_in(secret: str) -> bool:
    """Open a session for an API token or the admin password; False when it is neither."""
    if not secret or not _matches_any(secret, _login_secrets()):
        return False
    session.clear()
    session.permanent = True
    session["credential"] = _fingerprint(secret)
    session["sid"] = sid = secrets.token_urlsafe(24)
    lifetime = int(current_app.permanent_session_lifetime.total_seconds())
    get_redis().set(_session_key(sid), "1", ex=lifetime)
    g.pop("offload_session_valid", None)
    return True


def log_out() -> None:
    """End the session here and in Redis: a copy of its cookie replayed later opens nothing."""
    sid = session.get("sid")
    if isinstance(sid, str):
        get_redis().delete(_session_key(sid))
    session.clear()
    g.pop("offload_session_valid", None)


def _session_key(sid: str) -> str:
    return f"offload:session:{hashlib.sha256(sid.encode()).hexdigest()}"


def session_is_valid() -> bool:
    """Whether the session was opened with a secret that is still configured, and has not been
    logged out (once per request)."""
    if "offload_session_valid" not in g:
        held, sid = session.get("credential"), session.get("sid")
        g.offload_session_valid = (
            isinstance(held, str)
            and isinstance(sid, str)
            and _matches_any(held, [_fingerprint(secret) for secret in _login_secrets()])
            and bool(get_redis().exists(_session_key(sid)))
        )
    return g.offload_session_valid


def credential_scope() -> str:
    """Who is calling, for what is kept per caller (idempotency keys): the bearer token, or the
    fingerprint of the secret the session was opened with."""
    token = bearer_token()
    if token is not None:
        return f"token:{token}"
    held = session.get("credential")
    return f"session:{held}" if isinstance(held, str) else ""


def bearer_token() -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None


def _basic_password() -> str | None:
    auth = request.authorization
    return auth.password if auth is not None and auth.type == "basic" else None


def _is_public() -> bool:
    view = current_app.view_functions.get(request.endpoint or "")
    return bool(getattr(view, "offload_public", False))


def safe_next(target: str | None) -> str:
    """A local path to return to after logging in; anything else goes home."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return url_for("web.pages.tasks")
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else url_for("web.pages.tasks")


def _to_login() -> ResponseReturnValue:
    full = request.full_path if request.query_string else request.path
    return redirect(url_for("web.login.login", next=full))


def _require_credential() -> ResponseReturnValue | None:
    api = request.path.startswith("/api/") or request.path in ("/api", "/metrics")
    dashboard = request.path == DASHBOARD_PREFIX or request.path.startswith(f"{DASHBOARD_PREFIX}/")
    if api:
        if not _is_public():
            _require_api_credential()
        return None
    if not _is_public() and not session_is_valid():
        if not (dashboard and (token_is_valid(_basic_password()) or token_is_valid(bearer_token()))):
            return _to_login()  # scripts may still read the dashboard's JSON with a token
    if not dashboard and request.method not in _SAFE_METHODS:
        current_app.extensions[CSRF].protect()  # every form post, the login form's included
    return None


def _require_api_credential() -> None:
    token = bearer_token()
    if token is not None:
        if token_is_valid(token):
            return
        # A wrong token is refused even beside a valid session: it must never fall back to the
        # session (and got a fresh rate-limit bucket with every random value).
        raise ApiProblem(
            401,
            "Unauthorized",
            "the bearer token is not one of API_TOKENS",
            type="urn:offload:problem:unauthorized",
            headers={"WWW-Authenticate": 'Bearer realm="offload", error="invalid_token"'},
        )
    if session_is_valid():
        if request.method not in _SAFE_METHODS:
            current_app.extensions[CSRF].protect()  # the pages' own calls send X-CSRFToken
        return
    raise ApiProblem(
        401,
        "Unauthorized",
        "send Authorization: Bearer <token> with a token from API_TOKENS",
        type="urn:offload:problem:unauthorized",
        headers={"WWW-Authenticate": 'Bearer realm="offload"'},
    )


def init_app(app: Flask) -> None:
    # Checked in _require_credential instead: bearer-token API calls need no CSRF token, and
    # the dashboard's posts go through its own same-origin check (see app.dashboard).
    app.config.setdefault("WTF_CSRF_CHECK_DEFAULT", False)
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)  # valid as long as the session is
    csrf = CSRFProtect()
    csrf.init_app(app)
    app.extensions[CSRF] = csrf
    app.before_request(_require_credential)
    public(app.view_functions["static"])
