"""Start Offload on this machine: ``make run``.

Starts an embedded Valkey server with persistence when REDIS_URL is unset, makes sure
an API token and a secret key exist (generated into the git-ignored ``.env``), then
runs every process of the Procfile under honcho. Ctrl-C stops them all, the embedded
server last, so that a running job is handed back to it: this process adopts orphans (it
is a child subreaper), so even a work-horse that left its process group is found and
stopped. The same happens on SIGINT or SIGTERM to this process alone, or to ``make``.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from honcho.environ import parse as parse_env

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.embedded_redis import EmbeddedRedis, free_port  # noqa: E402

_PR_SET_CHILD_SUBREAPER = 36
_PR_SET_PDEATHSIG = 1
# honcho SIGKILLs what still runs 5 s after the first process stops: hand running jobs back before.
SHUTDOWN_GRACE_UNDER_HONCHO = "3"
# The embedded server's port, chosen once and kept in .env with its REDIS_URL: `flask ...`
# commands beside a running `make run` read the same address from .env, nothing exported.
EMBEDDED_PORT = "OFFLOAD_EMBEDDED_REDIS_PORT"


def become_subreaper() -> None:
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_CHILD_SUBREAPER, 1)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)  # our parent (make) died: stop too


def caught_signals(pid: int) -> int:
    """The mask of signals ``pid`` catches (0 when it is gone or this is not Linux)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("SigCgt:"):
                return int(line.split()[1], 16)
    except OSError:
        pass
    return 0


def watch_parent(on_stop: Callable[[], None]) -> None:
    """Stop when our parent starts dying. ``make`` catches SIGINT and SIGTERM; on a SIGINT to
    its pid alone it sets the handler back to the default and waits for us forever (it expects
    the terminal to have signalled us too), so its mask losing a bit it had is the sign."""
    parent = os.getppid()
    watched = caught_signals(parent) & ((1 << (signal.SIGINT - 1)) | (1 << (signal.SIGTERM - 1)))
    if not watched:
        return

    def watch() -> None:
        while os.getppid() == parent and caught_signals(parent) & watched == watched:
            time.sleep(0.2)
        on_stop()

    threading.Thread(target=watch, name="watch-parent", daemon=True).start()


def ensure_env_file(path: Path) -> dict[str, str]:
    """The settings in ``path``, adding a generated API token and secret key if absent, and the
    embedded server's address when no REDIS_URL is exported or written there."""
    values = parse_env(path.read_text()) if path.exists() else {}
    added = {}
    if not values.get("REDIS_URL") and not os.environ.get("REDIS_URL"):
        port = str(free_port())
        added[EMBEDDED_PORT] = port
        added["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
    defaults: tuple[tuple[str, Callable[[], str]], ...] = (
        ("API_TOKENS", lambda: secrets.token_urlsafe(32)),
        ("SECRET_KEY", lambda: secrets.token_hex(32)),
        # Plain `honcho start` reads .env too: there the worker must hand its job back within 5 s.
        ("OFFLOAD_SHUTDOWN_GRACE", lambda: SHUTDOWN_GRACE_UNDER_HONCHO),
    )
    for key, make in defaults:
        if not values.get(key) and not os.environ.get(key):
            added[key] = make()
    if added:
        with path.open("a") as env_file:
            env_file.write("".join(f"{key}={value}\n" for key, value in added.items()))
        values.update(added)
    return values


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def stop_leftovers(keep: set[int], grace: float = 5.0) -> None:
    """Stop every process still parented to us but ``keep`` (orphans we adopted)."""
    if not sys.platform.startswith("linux"):
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = [pid for pid in children_of(os.getpid()) if pid not in keep]
        for pid in pids:
            try:
                os.kill(pid, signal.SIGCONT)
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        while pids and time.monotonic() < deadline:
            for pid in pids:
                try:
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass
            pids = [pid for pid in children_of(os.getpid()) if pid not in keep]
            time.sleep(0.05)
        if not pids:
            return


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "5000")))
    parser.add_argument("--env-file", type=Path, default=ROOT / ".env")
    parser.add_argument("--data-dir", type=Path, default=ROOT / ".data")
    parser.add_argument("--procfile", type=Path, default=ROOT / "Procfile")
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WORKERS", "2")), help="worker processes")
    args = parser.parse_args(argv)

    become_subreaper()
    settings = ensure_env_file(args.env_file)
    environ = {**os.environ, **settings}
    environ.setdefault("WEB_HOST", "127.0.0.1")
    # The web shares this machine with the workers: keep them off one CPU so it always finds it free.
    environ.setdefault("OFFLOAD_WORKER_CPUS", "spare")
    environ["PYTHONUNBUFFERED"] = "1"
    environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{environ.get('PATH', '')}"

    server = None
    if settings.get(EMBEDDED_PORT):  # .env says which server: its own, on its port
        server = EmbeddedRedis(args.data_dir / "valkey", port=int(settings[EMBEDDED_PORT]), persistent=True)
        server.start()
        environ["REDIS_URL"] = server.url
        print(f"offload: embedded Valkey on {server.url} (data in {server.data_dir})", flush=True)

    token = environ["API_TOKENS"].split(",")[0].strip()
    print(f"offload: web on http://{environ['WEB_HOST']}:{args.port}  (pages /, dashboard /rq, API /api)", flush=True)
    print(f"offload: API token (from {args.env_file.name}): {token}", flush=True)
    print(f"offload: log in at http://127.0.0.1:{args.port}/login with that token", flush=True)
    print(f'offload: try  curl -H "Authorization: Bearer {token}" http://127.0.0.1:{args.port}/api/tasks', flush=True)

    honcho = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "honcho"),
            "start",
            "--procfile",
            str(args.procfile),
            "--app-root",
            str(ROOT),
            "--env",
            str(args.env_file),
            "--port",
            str(args.port),
            "--concurrency",
            f"worker={args.workers}",
        ],
        env=environ,
        cwd=ROOT,
    )
    stopping = False

    def stop(*_: object) -> None:
        """Ask honcho to stop its processes (it ignores a second request, so a Ctrl-C that
        reached it too is harmless); the embedded server is stopped once they have."""
        nonlocal stopping
        stopping = True
        if honcho.poll() is None:
            honcho.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    watch_parent(stop)
    try:
        returncode = honcho.wait()
    finally:
        stop_leftovers(keep={server.process.pid} if server and server.process else set())
        if server is not None:
            server.stop()
        print("offload: stopped", flush=True)
    # Stopped on request, the processes' exit codes are those of being signalled: not an error.
    return 0 if stopping else returncode


if __name__ == "__main__":
    sys.exit(main())
