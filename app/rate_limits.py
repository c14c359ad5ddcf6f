"""Rate limits, counted in Redis across all web processes, in fixed windows.

Job submissions (API, batch, the task form) are limited per credential by windows that
the submission script counts in the same atomic step that writes the jobs: one round trip,
where a separate limiter cost one more per window and about a fifth of a submission's CPU
(`make bench`). Uploads count against the same limit, through the same script with
nothing to write. Failed logins are counted per client address; a returning user never
waits. ``limits`` parses the settings (``50/second;1000/minute``, or ``off``). Keys hold a hash
of the credential or address, never the value.

Submissions are not limited by default: a service that enqueues through the API at its own pace
is a normal client, and the old default (50/second;1000/minute, ~17 jobs/s sustained) refused
one. The queue cap (``QUEUE_MAX_LENGTH``) is what protects Redis; a per-token limit is for
deployments that hand tokens to parties they do not trust.
"""

from __future__ import annotations

import functools
import hashlib

from flask import current_app, request, session
from limits import parse_many

from app.auth import bearer_token
from app.redis_client import get_redis
from jobs.submission import Admission, RefusedError, Window
from jobs.submission.admission import admit_and_write

SUBMIT_PREFIX = "offload:ratelimit:submit"
LOGIN_PREFIX = "offload:ratelimit:login"


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:24]


def _credential_key() -> str:
    """Who submits: the bearer token, or the credential a page's session was opened with."""
    return _digest(str(bearer_token() or session.get("credential") or "anonymous"))


def submission_windows() -> list[Window]:
    """The submission limit's windows for whoever submits this request (counted by the write)."""
    return _windows(SUBMIT_PREFIX, _credential_key(), current_app.config["SUBMIT_RATE_LIMIT"])


def count_upload() -> None:
    """Count an upload against its sender's submission limit; ``RefusedError`` beyond it."""
    admit_and_write(get_redis(), Admission(submission_windows()), [])


def check_login() -> None:
    """``RefusedError`` while this address has used up its failed logins; counts nothing."""
    windows = _login_windows()
    counts = get_redis().mget([window.key for window in windows])
    for window, used in zip(windows, counts, strict=True):
        if used is not None and int(used) >= window.amount:
            wait = max(1, int(get_redis().ttl(window.key)))
            raise RefusedError("rate-limited", f"too many failed logins from this address ({window.text})", wait)


def count_failed_login() -> None:
    with get_redis().pipeline(transaction=False) as pipe:
        for window in _login_windows():
            pipe.incr(window.key)
            pipe.expire(window.key, window.seconds, nx=True)
        pipe.execute()


def _login_windows() -> list[Window]:
    return _windows(LOGIN_PREFIX, _digest(request.remote_addr or "unknown"), current_app.config["LOGIN_RATE_LIMIT"])


def _windows(prefix: str, who: str, setting: str) -> list[Window]:
    return [
        Window(f"{prefix}:{who}:{suffix}", amount, seconds, text) for suffix, amount, seconds, text in _parse(setting)
    ]


@functools.lru_cache(maxsize=8)
def _parse(setting: str) -> list[tuple[str, int, int, str]]:
    """(key suffix, amount, seconds, text) per window of a setting like ``50/second;1000/minute``;
    none for ``off``."""
    if setting.strip().lower() == "off":
        return []
    return [
        (f"{item.amount}/{item.multiples}/{item.GRANULARITY.name}", item.amount, item.get_expiry(), str(item))
        for item in parse_many(setting)
    ]
