"""RQ's own test suite, run with RQ's workers replaced by Offload's; ``make test`` runs it.

    python -m scripts.rq_suite [pytest options]

1. Fetches the sdist of the installed RQ release from PyPI once (cached in the git-ignored
   ``.cache/rq-suite``): RQ ships its tests there.
2. Runs RQ's worker, job, queue, registry, results, retry, dependency, scheduler, rate-limit,
   execution and command tests with ``offload_workers`` loaded (Offload's in-process worker
   wherever the suite builds ``Worker`` or ``SimpleWorker``).
3. Compares the outcome with ``departures.toml``: every failure there is a difference Offload
   makes on purpose, with its reason. A failure not listed, or a listed one that now passes,
   fails the run.

RQ's tests connect to ``localhost:6379`` and flush its databases, so they run in a network
namespace of their own (``unshare --net``) with a private Valkey on that port: the machine's
own Redis is never reached.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import struct
import subprocess
import sys
import tarfile
import tempfile
import tomllib
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "rq-suite"
DEPARTURES = Path(__file__).with_name("departures.toml")
TEST_FILES = [
    "test_worker.py",
    "test_job.py",
    "test_queue.py",
    "test_registry.py",
    "test_results.py",
    "test_retry.py",
    "test_dependencies.py",
    "test_job_dependency.py",
    "test_scheduler.py",
    "test_rate_limit.py",
    "test_commands.py",
    "test_executions.py",
    "test_job_lifecycle.py",
    "test_timeouts.py",
    "test_worker_registration.py",
]
_IN_NAMESPACE = "OFFLOAD_RQ_SUITE_NAMESPACE"


def rq_sources() -> Path:
    """RQ's sdist for the installed release, unpacked: ``<cache>/rq-<version>``."""
    release = version("rq")
    unpacked = CACHE / f"rq-{release}"
    if (unpacked / "tests" / "__init__.py").exists():
        return unpacked
    CACHE.mkdir(parents=True, exist_ok=True)
    tarball = CACHE / f"rq-{release}.tar.gz"
    if not tarball.exists():
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
             f"rq=={release}", "--dest", str(CACHE)],
            check=True,
        )  # fmt: skip
    with tarfile.open(tarball) as archive:
        archive.extractall(CACHE, filter="data")
    return unpacked


def departures() -> dict[str, dict[str, str]]:
    listed = tomllib.loads(DEPARTURES.read_text())["departure"]
    return {entry["test"]: entry for entry in listed}


def _loopback_up() -> None:
    """``ip link set lo up``, without needing iproute2: a new network namespace starts with
    its loopback down."""
    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH14s", b"lo", 0, b"")
        flags = struct.unpack("16sH14s", fcntl.ioctl(sock, siocgifflags, request))[1]
        fcntl.ioctl(sock, siocsifflags, struct.pack("16sH14s", b"lo", flags | iff_up, b""))


def run_inside(sources: Path, pytest_args: list[str]) -> int:
    """In the private namespace: a Valkey on 6379, RQ's tests, the comparison."""
    sys.path.insert(0, str(ROOT))
    from scripts.embedded_redis import EmbeddedRedis

    _loopback_up()
    expected = departures()
    deselect = [f"--deselect={test}" for test, entry in expected.items() if entry["kind"] == "cannot run"]
    with tempfile.TemporaryDirectory(prefix="offload-rq-suite-") as scratch:
        server = EmbeddedRedis(Path(scratch) / "valkey", port=6379, persistent=False)
        server.start()
        report = Path(scratch) / "outcomes.json"
        try:
            subprocess.run(
                [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                 "-p", "scripts.rq_suite.offload_workers", "-p", "no:warnings", "--tb=no", "-rN",
                 "--timeout", "120", *deselect, *pytest_args,
                 *(f"tests/{name}" for name in TEST_FILES)],
                cwd=sources,
                env={
                    **os.environ,
                    "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",  # rqworker
                    "PYTHONPATH": f"{sources}{os.pathsep}{ROOT}",  # RQ's tests package, not ours
                    "OFFLOAD_RQ_SUITE_REPORT": str(report),
                },
                check=False,
            )  # fmt: skip
        finally:
            server.stop()
        if not report.exists():
            print("rq suite: pytest wrote no outcomes (it died; see above)", file=sys.stderr)
            return 1
        outcomes = json.loads(report.read_text())
    return compare(outcomes, expected)


def compare(outcomes: dict[str, str], expected: dict[str, dict[str, str]]) -> int:
    failing = {test for test, outcome in outcomes.items() if outcome == "failed"}
    departing = {test for test, entry in expected.items() if entry["kind"] == "fails"}
    unexpected = sorted(failing - departing)
    now_pass = sorted(test for test in departing if outcomes.get(test) == "passed")
    missing = sorted(test for test in departing if test not in outcomes)
    counts = {outcome: list(outcomes.values()).count(outcome) for outcome in ("passed", "failed", "skipped")}
    print(
        f"rq suite (RQ {version('rq')}, Offload's workers): {counts['passed']} passed, {counts['failed']} failed "
        f"({len(failing & departing)} expected departures), {counts['skipped']} skipped, "
        f"{len(expected) - len(departing)} not run (they kill the process a job runs in)"
    )
    for test in unexpected:
        print(f"  unexpected failure: {test}")
    if unexpected:
        print("  see why: python -m scripts.rq_suite --tb=short -k <test name>")
    for test in now_pass:
        print(f"  listed as a departure but passes now (take it out of departures.toml): {test}")
    for test in missing:
        print(f"  listed as a departure but not run (renamed or gone upstream?): {test}")
    return 1 if unexpected or now_pass or missing else 0


def main(argv: list[str]) -> int:
    sources = rq_sources()
    if os.environ.get(_IN_NAMESPACE) == "1":
        return run_inside(sources, argv)
    unshare = ["unshare", "--net"] if os.geteuid() == 0 else ["unshare", "--map-root-user", "--net"]
    env = {**os.environ, _IN_NAMESPACE: "1"}
    return subprocess.run([*unshare, sys.executable, "-m", "scripts.rq_suite", *argv], env=env, cwd=ROOT).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
