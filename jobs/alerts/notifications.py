"""Telling someone: each notification is a job of Offload's own tasks, visible like any other.

A webhook (``ALERT_WEBHOOK_URL``) gets Slack-compatible JSON (``text``, which Slack and most chat
services show, plus the alert as ``alert``) through ``webhooks.deliver``, signed when
``ALERT_WEBHOOK_SECRET`` is set and retried as that task retries; ``ALERT_EMAIL_TO`` gets a mail
through ``mail.send``. Both go to the highest queue, so an alert does not wait behind the backlog
it may be about.
"""

from __future__ import annotations

from typing import Any

from redis import Redis

from jobs import submission
from jobs.job import TaskJob
from jobs.registry import highest_queue
from jobs.settings import get_settings

MARK = {"firing": "FIRING", "resolved": "RESOLVED", "test": "TEST"}


def channels() -> list[str]:
    """The channels configured, in words (for the alerts page)."""
    settings = get_settings()
    found = []
    if settings.ALERT_WEBHOOK_URL:
        found.append(f"webhook to {settings.ALERT_WEBHOOK_URL.split('?')[0]}")
    if settings.ALERT_EMAIL_TO:
        found.append(f"email to {', '.join(settings.ALERT_EMAIL_TO)}")
    return found


def notify(redis: Redis, alert: dict[str, Any], state: str) -> list[TaskJob]:
    """Enqueue one notification per configured channel; returns their jobs (none without a channel)."""
    settings = get_settings()
    text = f"[{MARK[state]}] {alert['alert']}: {alert['summary']}"
    body = {**alert, "state": state}
    jobs = []
    meta = {"alert": alert["alert"], "alert_state": state}
    if settings.ALERT_WEBHOOK_URL:
        args: dict[str, Any] = {"url": settings.ALERT_WEBHOOK_URL, "payload": {"text": text, "alert": body}}
        if settings.ALERT_WEBHOOK_SECRET:
            args["secret"] = settings.ALERT_WEBHOOK_SECRET
        jobs.append(submission.enqueue(redis, "webhooks.deliver", args, queue=highest_queue(), meta=meta))
    if settings.ALERT_EMAIL_TO:
        lines = [text, "", f"rule: {alert['described']}", f"state: {state}"]
        mail = {"to": list(settings.ALERT_EMAIL_TO), "subject": text[:200], "body": "\n".join(lines)}
        jobs.append(submission.enqueue(redis, "mail.send", mail, queue=highest_queue(), meta=meta))
    return jobs


def send_test(redis: Redis) -> list[TaskJob]:
    """A test notification through every channel (the alerts page's button)."""
    alert = {"alert": "test", "kind": "test", "summary": "a test notification from Offload", "described": "a test"}
    return notify(redis, alert, "test")
