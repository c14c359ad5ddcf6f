"""Webhook delivery: POST a JSON payload, signed, retried until the receiver takes it."""

from __future__ import annotations

import email.utils
import hashlib
import hmac
import json
import logging
import random
import time
from typing import Annotated, Any
from uuid import uuid4

import requests
from pydantic import Field, HttpUrl, SecretStr

from jobs import progress, task
from jobs.context import current_job_id
from jobs.outbound import request

log = logging.getLogger(__name__)
SIGNATURE_HEADER = "Offload-Signature"
DELIVERY_HEADER = "Offload-Delivery"
RETRY_STATUSES = frozenset({408, 429})
MAX_RETRY_AFTER = 300


class WebhookRejectedError(RuntimeError):
    """The receiver answered with a 4xx that retrying will not change."""


class WebhookFailedError(RuntimeError):
    """Every attempt failed."""


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """``t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">``: receivers recompute and compare,
    and reject old timestamps to stop replays."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    parsed = email.utils.parsedate_to_datetime(value)
    return min(max(0.0, parsed.timestamp() - time.time()), MAX_RETRY_AFTER) if parsed else None


@task(timeout=900)
def deliver(
    url: HttpUrl,
    payload: Any,
    headers: dict[str, str] | None = None,
    secret: SecretStr | None = None,
    max_attempts: Annotated[int, Field(ge=1, le=20, description="tries in all, the first included")] = 6,
    backoff: Annotated[float, Field(ge=0, le=300, description="seconds before the first retry; doubles")] = 2.0,
    timeout: Annotated[float, Field(gt=0, le=60, description="seconds to wait for an answer")] = 10.0,
) -> dict:
    """POST a JSON payload to a URL, signed with HMAC-SHA256 when a secret is given.

    2xx is success; 5xx, 408, 429, timeouts and connection errors are retried with
    exponential backoff and jitter (honouring Retry-After); any other 4xx gives up at
    once. Every attempt is logged with its status and latency. The Offload-Delivery
    header carries the same id on every attempt, so receivers can drop duplicates.
    """
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    delivery_id = current_job_id() or uuid4().hex
    last_error = "no attempt made"
    with requests.Session() as session:
        for attempt in range(1, max_attempts + 1):
            sent_headers = {"Content-Type": "application/json", DELIVERY_HEADER: delivery_id, **(headers or {})}
            if secret is not None:
                sent_headers[SIGNATURE_HEADER] = signature(secret.get_secret_value(), int(time.time()), body)
            started = time.monotonic()
            wait: float | None = None
            try:
                response = request(session, "POST", str(url), data=body, headers=sent_headers, timeout=timeout)
            except (requests.ConnectionError, requests.Timeout) as error:
                last_error = f"{type(error).__name__}: {error}"
                log.warning("attempt %d: %s after %.0f ms", attempt, last_error, (time.monotonic() - started) * 1000)
            else:
                latency = (time.monotonic() - started) * 1000
                log.info("attempt %d: HTTP %d in %.0f ms", attempt, response.status_code, latency)
                if 200 <= response.status_code < 300:
                    progress(1, 1, f"delivered with HTTP {response.status_code}")
                    return {"status": response.status_code, "attempts": attempt, "delivery_id": delivery_id}
                last_error = f"HTTP {response.status_code}"
                if response.status_code < 500 and response.status_code not in RETRY_STATUSES:
                    raise WebhookRejectedError(f"{url} answered HTTP {response.status_code}; not retrying")
                wait = _retry_after(response)
            progress(attempt, max_attempts, f"attempt {attempt} failed: {last_error}")
            if attempt < max_attempts:
                delay = wait if wait is not None else backoff * 2 ** (attempt - 1) * random.uniform(0.5, 1.5)
                time.sleep(delay)
    raise WebhookFailedError(f"gave up on {url} after {max_attempts} attempts; last: {last_error}")
