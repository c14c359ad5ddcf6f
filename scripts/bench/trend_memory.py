"""What the trends cost in Redis: one task's series for a day, beside its Prometheus metrics.

One task on one queue, ``JOBS_PER_MINUTE`` jobs a minute (one in ten failing, durations over two
buckets) for ``minutes`` minutes, written through the calls the web and the workers make
(``jobs.trends.series``), with the same calls' Prometheus metrics as the baseline. The 1-minute
buckets are measured over the day; the 1-hour buckets over the hours that day touched, and
scaled to the 30 days they are kept.
"""

from __future__ import annotations

import time

from jobs.records import job_metrics
from jobs.trends import series
from scripts.bench.common import Bench, Row

JOBS_PER_MINUTE = 10
TASK, QUEUE = "reports.daily", "default"


def run(bench: Bench, minutes: int) -> None:
    bench.flush()
    connection = bench.redis()
    start = (time.time() // 86400 - 1) * 86400  # yesterday, from midnight: whole hours and days
    labels = {"task": TASK}
    for minute in range(minutes):
        at = start + minute * 60
        with connection.pipeline(transaction=False) as pipe:
            for job in range(JOBS_PER_MINUTE):
                status = "failed" if job == 0 else "finished"
                duration = 0.04 if job % 2 else 0.2
                series.record_enqueued(pipe, TASK, QUEUE, at=at)
                series.record_wait(pipe, TASK, QUEUE, 0.003, at=at)
                series.record_end(pipe, TASK, QUEUE, status, duration, at=at)
                job_metrics.count(pipe, "jobs_enqueued", labels)
                job_metrics.count(pipe, "jobs_ended", {**labels, "status": status})
                job_metrics.observe(pipe, "job_duration_seconds", labels, duration, job_metrics.DURATION_BUCKETS)
                job_metrics.observe(pipe, "job_queue_wait_seconds", labels, 0.003, job_metrics.DURATION_BUCKETS)
            series.record_queue_sample(pipe, QUEUE, 12, 0.5, at=at)
            pipe.execute()

    def used(pattern: str) -> tuple[int, int]:
        keys = list(connection.scan_iter(match=pattern, count=1000))
        return sum(connection.memory_usage(key) or 0 for key in keys), len(keys)

    by_minute, minute_keys = used(f"{series.PREFIX[series.MINUTE]}:*")
    by_hour, hour_keys = used(f"{series.PREFIX[series.HOUR]}:*")
    prometheus, _ = used(f"{job_metrics.PREFIX}:*")
    connection.close()
    day = by_minute * 1440 / minutes
    month = by_hour / max(1, hour_keys) * 720
    bench.add(
        Row(
            "trends",
            "Redis memory of one task's series: 1-minute buckets for a day / 1-hour buckets for 30 days",
            f"{day / 1024:,.0f} KiB / {month / 1024:,.0f} KiB",
            ratio=f"{(day + month) / max(1, prometheus):.0f}× its Prometheus metrics ({prometheus / 1024:.1f} KiB)",
            note=f"{JOBS_PER_MINUTE} jobs a minute for {minutes} min measured ({minute_keys} minute and {hour_keys} "
            "hour buckets), both with the queue's fields; the hour buckets scaled to 720",
        )
    )
