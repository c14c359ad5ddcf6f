"""Finding jobs as the store grows: GET /api/jobs with a search, filters and nothing, over N retained jobs."""

from __future__ import annotations

import random
import time

import requests

from jobs import submission
from jobs.records import job_search
from jobs.registry import registry
from scripts.bench.common import AUTH, Bench, Row, percentile, web_server

CHUNK = 500
FAILED_EVERY = 100  # 1 % of the jobs carry an error
QUERIES = 40


def fill(bench: Bench, jobs: int) -> None:
    """``jobs`` orders from 1,000 customers, written as the API writes them; every hundredth marked
    failed with an error, as the worker leaves it."""
    registry.load()
    rng = random.Random(7)
    with bench.redis() as connection:
        for begin in range(0, jobs, CHUNK):
            calls = [
                submission.prepare(
                    "bench.order",
                    {"customer": f"customer-{rng.randrange(1000):04d}", "amount": rng.randrange(1, 5000)},
                )
                for _ in range(min(CHUNK, jobs - begin))
            ]
            submission.write(connection, calls)
            with connection.pipeline(transaction=False) as pipe:
                for number, call in enumerate(calls, start=begin):
                    if number % FAILED_EVERY == 0:
                        pipe.hset(f"rq:job:{call.job_id}", "status", "failed")
                        job_search.record_error(pipe, call.job_id, "TimeoutError", f"gateway {number % 7} timed out")
                pipe.execute()


def run(bench: Bench, jobs: int) -> None:
    bench.flush()
    began = time.perf_counter()
    fill(bench, jobs)
    filled = time.perf_counter() - began
    connection = bench.redis()
    per_job = (connection.memory_usage(job_search.TEXT_KEY) or 0) / jobs
    errors = (connection.memory_usage(job_search.ERRORS_KEY) or 0) / max(1, jobs // FAILED_EVERY)
    connection.close()
    searches = {
        "first page, no filter (the baseline)": {"limit": 25},
        "text in the arguments (customer-0042)": {"q": "customer-0042", "limit": 25},
        "text in the error (gateway 3)": {"q": "gateway 3", "limit": 25},
        "status failed + task": {"status": "failed", "task": "bench.order", "limit": 25},
        "text matching nothing": {"q": "no such text", "limit": 25},
    }
    with web_server(bench) as base, requests.Session() as session:
        timings: dict[str, list[float]] = {}
        for name, params in searches.items():
            session.get(f"{base}/api/jobs", params=params, headers=AUTH, timeout=30).raise_for_status()  # warm
            samples = []
            for _ in range(QUERIES):
                started = time.perf_counter()
                answer = session.get(f"{base}/api/jobs", params=params, headers=AUTH, timeout=30)
                samples.append((time.perf_counter() - started) * 1000)
                answer.raise_for_status()
            timings[name] = samples
    baseline = percentile(timings["first page, no filter (the baseline)"], 0.95)
    for name, samples in timings.items():
        p95 = percentile(samples, 0.95)
        bench.add(
            Row(
                "search",
                f"GET /api/jobs p50 / p95 over {jobs:,} jobs, {name}",
                f"{percentile(samples, 0.5):.1f} / {p95:.1f} ms",
                ratio=f"{p95 / baseline:.1f}× the first page" if name != "first page, no filter (the baseline)" else "",
                note=f"{QUERIES} requests, one at a time",
            )
        )
    bench.add(
        Row(
            "search",
            "search records in Redis per job (text) / per failed job (error)",
            f"{per_job:.0f} B / {errors:.0f} B",
            note=f"filled in {filled:.0f} s through the submission path",
        )
    )
