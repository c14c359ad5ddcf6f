"""Evaluating the alert rules: what holds now, what fires, what resolves, and who is told.

The cron process calls ``tick`` every ``ALERT_CHECK_SECONDS`` (a lock makes one evaluation a
period, however many cron processes run). Each alert moves ``ok`` → ``pending`` (its condition
holds, not yet for ``for_seconds``) → ``firing`` → back to ``ok``; a notification goes out when it
fires, again every ``ALERT_REPEAT_SECONDS`` while it keeps firing, and once when it resolves,
never twice for one transition. The state lives in Redis (``offload:alerts``), so every web
process shows the same alerts and a restarted cron process carries on where the last one was.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from rq.exceptions import StopRequested

from jobs.alerts import notifications
from jobs.alerts.rules import AlertRule, CronMissed, FailureRatio, NoWorker, QueueLatency, QueuePaused, RedisMemory
from jobs.connection import text
from jobs.cron import entries
from jobs.fleet import queue_overview
from jobs.registry import registry
from jobs.settings import get_settings
from jobs.trends import series

STATE_KEY = "offload:alerts"
LOCK_KEY = "offload:alerts:lock"
EVALUATED_KEY = "offload:alerts:evaluated"  # when the rules were last evaluated (Unix time)
STALE_AFTER_CHECKS = 5  # evaluations missed before the pages say nobody evaluates
log = logging.getLogger(__name__)


@dataclass
class Check:
    """One alert's condition, as it is now."""

    alert: str  # <kind>:<target>
    rule: AlertRule
    active: bool
    summary: str
    value: float | None = None


@dataclass
class Alert:
    """One alert's state, as kept in Redis."""

    alert: str
    kind: str
    state: str  # ok, pending, firing
    summary: str
    described: str
    value: float | None = None
    pending_since: float | None = None
    firing_since: float | None = None
    last_notified: float | None = None
    notifications: list[str] = field(default_factory=list)  # the jobs that told the last transition

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _targets(pattern: str, names: list[str]) -> list[str]:
    return names if pattern == "*" else [pattern]


def checks(redis: Redis, rules: tuple[AlertRule, ...], now: float) -> Iterator[Check]:
    """Every alert the rules make, with whether its condition holds now."""
    queues = {view.name: view for view in queue_overview.overview(redis)}
    cron = {entry.name: entry for entry in entries.entries(redis, datetime.fromtimestamp(now, UTC))}
    for rule in rules:
        if isinstance(rule, NoWorker):
            for name in _targets(rule.queue, list(queues)):
                view = queues.get(name)
                waiting = view.counts["queued"] if view else 0
                active = bool(view and waiting and not view.workers and not view.paused)
                yield Check(f"no_worker:{name}", rule, active, f"queue {name} has {waiting} job(s) and no live worker")
        elif isinstance(rule, QueueLatency):
            for name in _targets(rule.queue, list(queues)):
                age = queues[name].latency_seconds if name in queues else None
                active = age is not None and age > rule.above_seconds
                summary = f"queue {name}'s oldest job has waited {age or 0:.0f} s (limit {rule.above_seconds:g} s)"
                yield Check(f"queue_latency:{name}", rule, active, summary, age)
        elif isinstance(rule, QueuePaused):
            for name in _targets(rule.queue, list(queues)):
                since = queues[name].paused_since if name in queues else None
                held = now - since if since is not None else 0.0
                active = since is not None and held > rule.longer_than_seconds
                yield Check(
                    f"queue_paused:{name}", rule, active, f"queue {name} has been paused for {held:.0f} s", held
                )
        elif isinstance(rule, FailureRatio):
            yield from _failure_ratios(redis, rule, now)
        elif isinstance(rule, CronMissed):
            for name in _targets(rule.entry, list(cron)):
                entry = cron.get(name)
                ended = [run for run in entry.runs if run.status in ("finished", "failed", "stopped")] if entry else []
                failed = bool(ended) and ended[0].status != "finished"
                why = entry.missed if entry and entry.missed else f"its last run {ended[0].status}" if failed else "ok"
                yield Check(f"cron_missed:{name}", rule, bool(entry and entry.missed) or failed, f"cron {name}: {why}")
        elif isinstance(rule, RedisMemory):
            memory = redis.info("memory")
            limit = int(memory.get("maxmemory") or 0)
            ratio = int(memory.get("used_memory") or 0) / limit if limit else 0.0
            summary = f"Redis uses {ratio:.0%} of its maxmemory" if limit else "Redis has no maxmemory set"
            yield Check("redis_memory", rule, ratio > rule.above_ratio, summary, round(ratio, 4))


def _failure_ratios(redis: Redis, rule: FailureRatio, now: float) -> Iterator[Check]:
    names = _targets(rule.task, [task.name for task in registry.all()])
    found = series.totals_by_scope(redis, [f"t|{name}" for name in names], rule.over_minutes, now)
    for name in names:
        counts = found[f"t|{name}"]
        ended = counts["finished"] + counts["failed"] + counts["stopped"]
        ratio = counts["failed"] / ended if ended else 0.0
        active = ended >= rule.min_jobs and ratio > rule.above
        summary = f"task {name}: {counts['failed']} of {ended} job(s) failed over {rule.over_minutes} min"
        yield Check(f"failure_ratio:{name}", rule, active, summary, round(ratio, 4))


def read_state(redis: Redis) -> dict[str, Alert]:
    return {text(key): Alert(**json.loads(value)) for key, value in redis.hgetall(STATE_KEY).items()}


def evaluate(redis: Redis, now: float | None = None) -> list[Alert]:
    """Evaluate every rule once, move each alert's state, and notify; returns the alerts told now."""
    settings = get_settings()
    now = now or time.time()
    known = read_state(redis)
    told, kept = [], {}
    for check in checks(redis, settings.ALERT_RULES, now):
        before = known.get(check.alert)
        alert = before or Alert(check.alert, check.rule.kind, "ok", check.summary, check.rule.describe())
        alert.summary, alert.value, alert.described = check.summary, check.value, check.rule.describe()
        if check.active:
            alert.pending_since = alert.pending_since or now
            if now - alert.pending_since >= check.rule.for_seconds:
                if alert.state != "firing":
                    alert.state, alert.firing_since = "firing", now
                    told.append(_tell(redis, alert, "firing", now))
                elif now - (alert.last_notified or 0) >= settings.ALERT_REPEAT_SECONDS:
                    told.append(_tell(redis, alert, "firing", now))
            else:
                alert.state = "pending"
        else:
            if alert.state == "firing":
                told.append(_tell(redis, alert, "resolved", now))
            alert.state, alert.pending_since, alert.firing_since = "ok", None, None
        kept[check.alert] = alert
    with redis.pipeline() as pipe:
        pipe.delete(STATE_KEY)
        if kept:
            pipe.hset(STATE_KEY, mapping={name: json.dumps(alert.as_dict()) for name, alert in kept.items()})
        pipe.set(EVALUATED_KEY, repr(time.time()))
        pipe.execute()
    return told


def last_evaluated(redis: Redis) -> float | None:
    """When the rules were last evaluated, or None if never."""
    value = redis.get(EVALUATED_KEY)
    return float(value) if value is not None else None


def evaluation_is_stale(redis: Redis, now: float | None = None) -> bool:
    """No evaluation for ``STALE_AFTER_CHECKS`` periods: the cron process is not running (or is stuck)."""
    last = last_evaluated(redis)
    period = get_settings().ALERT_CHECK_SECONDS
    return last is None or (now or time.time()) - last > STALE_AFTER_CHECKS * max(period, 1.0)


def _tell(redis: Redis, alert: Alert, state: str, now: float) -> Alert:
    alert.last_notified = now
    alert.notifications = [job.id for job in notifications.notify(redis, alert.as_dict(), state)]
    return alert


def tick(redis: Redis, now: float | None = None) -> bool:
    """Evaluate, unless another process did within this period; raises nothing but a stop request
    (the cron process must keep scheduling). True when this call evaluated."""
    period = get_settings().ALERT_CHECK_SECONDS
    try:
        if not redis.set(LOCK_KEY, "1", nx=True, px=max(1, int(period * 1000) - 50)):
            return False
        _sample_queues(redis, now or time.time())
        evaluate(redis, now)
        return True
    except StopRequested:  # the cron process's SIGTERM, raised by its handler wherever it lands
        raise
    except RedisError as error:
        log.warning("alerts: Redis unreachable (%s); the next tick tries again", error)
    except Exception:
        log.exception("alerts: evaluating the rules failed; the next tick tries again")
    return False


def _sample_queues(redis: Redis, now: float) -> None:
    """Each queue's depth and oldest job's age into the series (the charts' depth and latency)."""
    views = queue_overview.overview(redis, fleet=[])
    with redis.pipeline(transaction=False) as pipe:
        for view in views:
            series.record_queue_sample(pipe, view.name, view.counts["queued"], view.latency_seconds or 0.0, now)
        pipe.execute()
