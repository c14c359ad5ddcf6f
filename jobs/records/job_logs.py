"""Capture what a task logs (``logging``) and prints while it runs, into its job.

Lines are buffered and written by a small flusher thread a few times a second, so a
chatty task costs one Redis round trip per batch, not per line; whatever is buffered
is written when the task returns or raises. The thread starts with the first line: a
task that logs nothing costs nothing here.
"""

from __future__ import annotations

import contextlib
import io
import logging
import sys
import threading
import time
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any, TextIO

from redis import Redis

from jobs.records.job_events import LOG_MAX_LINE_BYTES, append_logs

FLUSH_INTERVAL = 0.2
MAX_BUFFERED = 500


class LogSink:
    """Buffers log lines of one job and writes them to Redis in batches."""

    def __init__(self, connection: Redis, job_id: str, ttl: int | None, attempt: int | None = None) -> None:
        self.connection = connection
        self.job_id = job_id
        self.ttl = ttl
        self.attempt = attempt
        self._buffer: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, level: str, message: str, logger: str | None = None) -> None:
        try:
            encoded = message.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: escape it, or Redis could not store the line
            message = message.encode("utf-8", "backslashreplace").decode("utf-8")
            encoded = message.encode("utf-8")
        if len(encoded) > LOG_MAX_LINE_BYTES:
            message = encoded[:LOG_MAX_LINE_BYTES].decode("utf-8", "ignore") + " …[line truncated]"
        line = {"at": time.time(), "level": level, "logger": logger, "message": message}
        if self.attempt is not None:
            line["attempt"] = self.attempt
        with self._lock:
            self._buffer.append(line)
            full = len(self._buffer) >= MAX_BUFFERED
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(target=self._run, name=f"logs-{self.job_id}", daemon=True)
                self._thread.start()
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
        return self

    def __exit__(self, *exc_info: object) -> None:
        with self._lock:
            self._stop.set()
            thread = self._thread
        if thread is not None:
            thread.join(timeout=2)
        self.flush()


_current_sink: ContextVar[LogSink | None] = ContextVar("offload_log_sink", default=None)


class _SinkHandler(logging.Handler):
    """One handler per process, installed once: it sends records to the running job's sink."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        sink = _current_sink.get()
        if sink is None:
            return
        try:
            sink.add(record.levelname, self.format(record), record.name)
        except Exception:  # logging must never raise into the task
            self.handleError(record)


_handler: _SinkHandler | None = None


def _installed_handler(level: int) -> _SinkHandler:
    global _handler
    if _handler is None:
        _handler = _SinkHandler()
        logging.getLogger().addHandler(_handler)
    if _handler.level != level:  # setLevel clears every logger's cache: a cost per job if done each time
        _handler.setLevel(level)
    return _handler


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
def capture(
    connection: Redis, job_id: str, ttl: int | None, level: int = logging.INFO, attempt: int | None = None
) -> Iterator[LogSink]:
    """Send log records at ``level`` and above, and stdout/stderr, to the job's log, each line
    marked with the ``attempt`` it belongs to."""
    root = logging.getLogger()
    previous_level = root.level
    with LogSink(connection, job_id, ttl, attempt) as sink:
        _installed_handler(level)
        token = _current_sink.set(sink)
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
            _current_sink.reset(token)
            if root.level != previous_level:
                root.setLevel(previous_level)
