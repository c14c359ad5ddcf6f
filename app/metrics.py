"""GET /metrics: Prometheus text, from Redis (jobs, queues, workers) and the HTTP layer.

Metric names (all prefixed ``offload_``):

- ``queue_jobs{queue,state}`` — jobs per queue and registry (queued, started, scheduled,
  deferred, finished, failed, canceled)
- ``queue_paused{queue}``, ``queue_paused_seconds{queue}``, ``queue_oldest_job_age_seconds{queue}``,
  ``queue_workers{queue}`` (live workers listening)
- ``alert_firing{rule}`` — 1 while an alert fires; ``alerts_evaluated_timestamp_seconds``;
  ``redis_memory_used_ratio``
- ``jobs_enqueued_total{task}``, ``jobs_ended_total{task,status}`` (finished, failed, stopped)
- ``job_duration_seconds{task}``, ``job_queue_wait_seconds{task}`` — histograms, recorded by workers
- ``workers{state}``, ``workers_busy_ratio`` — from the workers' registrations
- ``http_requests_total{method,route,status}``, ``http_request_duration_seconds{method,route}``
- ``redis_up`` — 1 when Redis answered this scrape
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

from flask import Blueprint, Flask, Response, g, request
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from redis import Redis
from redis.exceptions import RedisError

from app import redis_client
from app.redis_client import get_redis
from jobs.alerts import evaluation
from jobs.fleet import queue_overview, worker_overview
from jobs.records import job_metrics

bp = Blueprint("metrics", __name__)


class RedisCollector(Collector):
    """Reads everything a scrape shows from Redis, at scrape time."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("offload_redis_up", "1 when Redis answered this scrape")
        try:
            families = list(self._families())
        except RedisError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _families(self) -> Iterator[Metric]:
        fleet = worker_overview.workers(self.redis)  # read once: the queues' listeners and the states
        yield from self._queue_families(fleet)
        yield from self._alert_families()
        yield self._counter("jobs_enqueued", "Jobs enqueued", ["task"])
        yield self._counter("jobs_ended", "Jobs that ended, by final status", ["task", "status"])
        yield self._histogram("job_duration_seconds", "Run time of jobs", ["task"], job_metrics.DURATION_BUCKETS)
        yield self._histogram(
            "job_queue_wait_seconds", "Time from enqueue to start", ["task"], job_metrics.DURATION_BUCKETS
        )
        yield self._counter("http_requests", "HTTP requests", ["method", "route", "status"])
        yield self._histogram(
            "http_request_duration_seconds", "HTTP request latency", ["method", "route"], job_metrics.HTTP_BUCKETS
        )

        states: dict[str, int] = {}
        for worker in fleet:
            states[worker.state] = states.get(worker.state, 0) + 1
        by_state = GaugeMetricFamily("offload_workers", "Registered workers by state", labels=["state"])
        for state in ("idle", "busy", "started", "suspended"):
            by_state.add_metric([state], states.get(state, 0))
        yield by_state
        ratio = GaugeMetricFamily("offload_workers_busy_ratio", "Share of workers running a job")
        ratio.add_metric([], states.get("busy", 0) / len(fleet) if fleet else 0.0)
        yield ratio

    def _queue_families(self, fleet: list[worker_overview.Worker]) -> Iterator[Metric]:
        def gauge(name: str, doc: str, labels: tuple[str, ...] = ("queue",)) -> GaugeMetricFamily:
            return GaugeMetricFamily(f"offload_{name}", doc, labels=list(labels))

        depth = gauge("queue_jobs", "Jobs per queue and state", ("queue", "state"))
        paused = gauge("queue_paused", "1 while the queue is paused")
        paused_for = gauge("queue_paused_seconds", "How long the queue has been paused (0 when it is not)")
        age = gauge("queue_oldest_job_age_seconds", "How long the oldest queued job has waited")
        listening = gauge("queue_workers", "Live workers that listen to the queue")
        now = time.time()
        for queue in queue_overview.overview(self.redis, fleet):
            for state, count in queue.counts.items():
                depth.add_metric([queue.name, state], count)
            paused.add_metric([queue.name], int(queue.paused))
            held = 0.0 if queue.paused_since is None else round(now - queue.paused_since, 1)
            paused_for.add_metric([queue.name], held)
            age.add_metric([queue.name], queue.latency_seconds or 0.0)
            listening.add_metric([queue.name], len(queue.workers))
        yield from (depth, paused, paused_for, age, listening)

    def _alert_families(self) -> Iterator[Metric]:
        firing = GaugeMetricFamily("offload_alert_firing", "1 while the alert fires", labels=["rule"])
        for name, alert in sorted(evaluation.read_state(self.redis).items()):
            firing.add_metric([name], int(alert.state == "firing"))
        yield firing
        evaluated = GaugeMetricFamily(
            "offload_alerts_evaluated_timestamp_seconds", "When the cron process last evaluated the alert rules"
        )
        evaluated.add_metric([], evaluation.last_evaluated(self.redis) or 0.0)
        yield evaluated
        memory = self.redis.info("memory")
        limit = int(memory.get("maxmemory") or 0)
        used = GaugeMetricFamily("offload_redis_memory_used_ratio", "used_memory / maxmemory (0 without maxmemory)")
        used.add_metric([], int(memory.get("used_memory") or 0) / limit if limit else 0.0)
        yield used

    def _counter(self, name: str, doc: str, labels: list[str]) -> CounterMetricFamily:
        family = CounterMetricFamily(f"offload_{name}", doc, labels=labels)
        for values, value in job_metrics.read_counters(self.redis, name):
            family.add_metric([values.get(label, "") for label in labels], value)
        return family

    def _histogram(self, name: str, doc: str, labels: list[str], buckets: tuple[float, ...]) -> HistogramMetricFamily:
        family = HistogramMetricFamily(f"offload_{name}", doc, labels=labels)
        for values, cumulative, total in job_metrics.read_histograms(self.redis, name, buckets):
            family.add_metric([values.get(label, "") for label in labels], cumulative, total)
        return family


@bp.get("/metrics")
def scrape() -> Response:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RedisCollector(get_redis()))
    return Response(generate_latest(registry), mimetype="text/plain", content_type="text/plain; version=0.0.4")


class HttpRecorder:
    """Adds up HTTP observations in the process and writes the sums to Redis once a second.

    A request never waits on Redis for its own metrics, and an outage loses at most the
    observations of that second (the scrape then shows ``redis_up 0``). Each observation is
    added to a tally when it is made, so a flush writes one increment per label set and bucket
    however many requests it covers: written one command per observation, the flush of a busy
    second held the gevent hub for tens of milliseconds, the web's p99 (``make bench``).
    """

    def __init__(self, redis: Redis, interval: float = 1.0) -> None:
        self.redis = redis
        self.interval = interval
        self._tally = job_metrics.Tally()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def record(self, method: str, route: str, status: int, elapsed: float) -> None:
        labels = {"method": method, "route": route}
        with self._lock, job_metrics.tallied(self._tally):
            job_metrics.count(None, "http_requests", {**labels, "status": str(status)})
            job_metrics.observe(None, "http_request_duration_seconds", labels, elapsed, job_metrics.HTTP_BUCKETS)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="offload-http-metrics", daemon=True)
                self._thread.start()

    def flush(self) -> None:
        with self._lock:
            tally, self._tally = self._tally, job_metrics.Tally()
        if not tally.increments and not tally.sums:
            return
        with self.redis.pipeline(transaction=False) as pipe:
            tally.write(pipe)
            pipe.execute()

    def _run(self) -> None:
        while True:
            time.sleep(self.interval)
            try:
                self.flush()
            except RedisError:
                pass


def init_app(app: Flask) -> None:
    """Time every request and count it, by route pattern (not raw path: ids would explode the labels)."""
    recorder = HttpRecorder(app.extensions[redis_client.EXTENSION])
    app.extensions["offload.http_metrics"] = recorder

    @app.before_request
    def start_timer() -> None:
        g.offload_started = time.perf_counter()

    @app.after_request
    def record(response: Response) -> Response:
        started = g.pop("offload_started", None)
        if started is not None and request.url_rule is not None and request.path != "/metrics":
            recorder.record(request.method, request.url_rule.rule, response.status_code, time.perf_counter() - started)
        return response
