"""Local peers for the built-in tasks: an HTTP server that plays scripted answers and
records what it received. Nothing in the tests reaches beyond 127.0.0.1."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Answer:
    status: int = 200
    body: bytes = b"ok"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


class HttpPeer:
    """Answers each path with its queue of scripted answers (the last one repeats)."""

    def __init__(self) -> None:
        self.answers: dict[str, deque[Answer]] = {}
        self.received: list[Received] = []
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                peer.received.append(Received(self.command, self.path, dict(self.headers), body, time.monotonic()))
                queue = peer.answers.get(self.path) or deque([Answer(404, b"no such path")])
                answer = queue.popleft() if len(queue) > 1 else queue[0]
                if answer.delay:
                    time.sleep(answer.delay)
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            do_GET = do_POST = _answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def script(self, path: str, *answers: Answer) -> str:
        self.answers[path] = deque(answers)
        return f"{self.base}{path}"

    def __enter__(self) -> HttpPeer:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.shutdown()
        self.server.server_close()
