"""Capture what a task logs (``logging``) and prints while it runs, into its job.

Lines are buffered and written by a small flusher thread a few times a second, so a
chatty task costs one Redis round trip per batch, not per line; whatever is buffered
is written when the task returns or raises.
"""

from __future__ import annotations

import contextlib
import io
import logging
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any, TextIO

from redis import Redis

from jobs.events import LOG_MAX_LINE_BYTES, append_logs

FLUSH_INTERVAL = 0.2
MAX_BUFFERED = 500


class LogSink:
    """Buffers log lines of one job and writes them to Redis in batches."""

    def __init__(self, connection: Redis, job_id: str, ttl: int | None) -> None:
        self.connection = connection
        self.job_id = job_id
        self.ttl = ttl
        self._buffer: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"logs-{job_id}", daemon=True)

    def add(self, level: str, message: str, logger: str | None = None) -> None:
        encoded = message.encode("utf-8", "replace")
        if len(encoded) > LOG_MAX_LINE_BYTES:
            message = encoded[:LOG_MAX_LINE_BYTES].decode("utf-8", "ignore") + " …[line truncated]"
        line = {"at": time.time(), "level": level, "logger": logger, "message": message}
        with self._lock:
            self._buffer.append(line)
            full = len(self._buffer) >= MAX_BUFFERED
        if full:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            lines, self._buffer = self._buffer, []
        if lines:
            with self.connection.pipeline(transaction=False) as pipe:
                append_logs(pipe, self.job_id, lines, self.ttl)
                pipe.execute()

    def _run(self) -> None:
        while not self._stop.wait(FLUSH_INTERVAL):
            with contextlib.suppress(Exception):  # a lost batch must never fail the job
                self.flush()

    def __enter__(self) -> LogSink:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.flush()


class _SinkHandler(logging.Handler):
    def __init__(self, sink: LogSink) -> None:
        super().__init__(logging.DEBUG)
        self.sink = sink
        self.setFormatter(logging.Formatter("%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.sink.add(record.levelname, self.format(record), record.name)
        except Exception:  # logging must never raise into the task
            self.handleError(record)


class _LineWriter(io.TextIOBase):
    """A text stream that hands complete lines to the sink and echoes to the original."""

    def __init__(self, sink: LogSink, level: str, echo: TextIO) -> None:
        self.sink, self.level, self.echo, self._partial = sink, level, echo, ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.echo.write(text)
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        for line in lines:
            self.sink.add(self.level, line, None)
        return len(text)

    def flush(self) -> None:
        self.echo.flush()

    def close_line(self) -> None:
        if self._partial:
            self.sink.add(self.level, self._partial, None)
            self._partial = ""


@contextlib.contextmanager
def capture(connection: Redis, job_id: str, ttl: int | None, level: int = logging.INFO) -> Iterator[LogSink]:
    """Send log records at ``level`` and above, and stdout/stderr, to the job's log."""
    root = logging.getLogger()
    previous_level = root.level
    with LogSink(connection, job_id, ttl) as sink:
        handler = _SinkHandler(sink)
        handler.setLevel(level)
        root.addHandler(handler)
        if root.level > level or root.level == logging.NOTSET:
            root.setLevel(level)
        stdout = _LineWriter(sink, "STDOUT", sys.stdout)
        stderr = _LineWriter(sink, "STDERR", sys.stderr)
        try:
            with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
                yield sink
        finally:
            stdout.close_line()
            stderr.close_line()
            root.removeHandler(handler)
            root.setLevel(previous_level)
