"""Offload's benchmark suite: ``make bench`` (or ``.venv/bin/python -m scripts.bench``).

Starts its own Valkey, web and workers, measures every row in the same run, and prints one
table (Markdown, ready for docs/performance.md). Machines are noisy: rows are repeated (``--repeat``)
and show the median with the range; compare the ratios, which are measured side by side.

    python -m scripts.bench                  # the full run (~10 minutes on 2 cores)
    python -m scripts.bench --peers          # also Celery, Dramatiq and Huey (installs them in .bench-peers)
    python -m scripts.bench --smoke          # tiny sizes: checks that every section runs (CI)
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

# The benchmark's own tasks, beside any the caller loads: every process started below inherits them.
_modules = [name for name in os.environ.get("OFFLOAD_TASK_MODULES", "").split(",") if name.strip()]
os.environ["OFFLOAD_TASK_MODULES"] = ",".join(dict.fromkeys([*_modules, "scripts.bench.bench_tasks"]))

from scripts.bench import costs, drain, http, peers, search, trend_memory  # noqa: E402
from scripts.bench.common import WRK, Bench  # noqa: E402
from scripts.embedded_redis import EmbeddedRedis  # noqa: E402

SECTIONS = ["drain", "http", "web", "pickup", "redis", "memory", "search", "trends"]
SIZES = {
    "full": {
        "drain": 5000,
        "seconds": 5.0,
        "pickup": 300,
        "memory": 5000,
        "rss": 30000,
        "search": 100_000,
        "trends": 1440,
    },
    "smoke": {"drain": 200, "seconds": 1.0, "pickup": 20, "memory": 200, "rss": 500, "search": 2000, "trends": 60},
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one repetition: does every section run?")
    parser.add_argument("--peers", action="store_true", help="also drain with Celery and Dramatiq")
    parser.add_argument("--repeat", type=int, default=None, help="repetitions per row (default 3; smoke 1)")
    parser.add_argument("--jobs", type=int, default=None, help="jobs per drain (default 5,000)")
    parser.add_argument("--only", nargs="*", default=None, choices=SECTIONS)
    parser.add_argument(
        "--baseline-tree", type=Path, default=None, help="drain with the Procfile worker of this checkout too"
    )
    args = parser.parse_args(argv)
    size = SIZES["smoke" if args.smoke else "full"]
    repeat = args.repeat or (1 if args.smoke else 3)
    jobs = args.jobs or size["drain"]
    if not Path(WRK).exists():
        parser.error(f"wrk is needed for the HTTP rows ({WRK}): `make bench` installs Debian's package")
    with_peers = peers.install() if args.peers else []
    sections = set(args.only or SECTIONS)

    scratch = Path(tempfile.mkdtemp(prefix="offload-bench-"))
    server = EmbeddedRedis(scratch / "valkey", persistent=False)
    server.start()
    bench = Bench(server, scratch, repeat)
    began = time.monotonic()
    print(f"bench: {platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"Valkey on {server.url}; median (range) of {repeat} runs", flush=True)  # fmt: skip
    try:
        if "drain" in sections:
            drain.run(bench, jobs, with_peers, args.baseline_tree)
        if "http" in sections:
            http.enqueue(bench, size["seconds"])
            http.batch(bench, size["seconds"])
        if "web" in sections:
            http.healthz_under_load(bench, size["seconds"])
        if "pickup" in sections:
            costs.pickup(bench, size["pickup"], with_peers)
        if "redis" in sections:
            costs.redis_costs(bench, size["memory"])
        if "memory" in sections:
            costs.worker_memory(bench, size["rss"])
        if "search" in sections:
            search.run(bench, size["search"])
        if "trends" in sections:
            trend_memory.run(bench, size["trends"])
    finally:
        server.stop()
    print()
    print("| section | measured | figure | ratio | notes |")
    print("|---|---|---|---|---|")
    for row in bench.rows:
        print(f"| {row.section} | {row.name} | {row.value} | {row.ratio} | {row.note} |")
    print(f"\nbench: {len(bench.rows)} rows in {time.monotonic() - began:.0f} s; logs in {scratch}")
    if not args.smoke:
        return 0
    shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
