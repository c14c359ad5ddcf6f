"""The approach Offload replaces: a Flask route that starts the work in a thread of the web process.

Served by gunicorn with threads (``gthread``), as such an app usually is. The work is the
same CPU burn as ``bench.cpu_burn``.
"""

from __future__ import annotations

import threading

from flask import Flask, request

from scripts.bench.bench_tasks import cpu_burn


def create_naive_app() -> Flask:
    app = Flask(__name__)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/work")
    def work() -> tuple[dict[str, str], int]:
        seconds = float(request.args.get("seconds", "1"))
        threading.Thread(target=cpu_burn, args=(seconds,), daemon=True).start()
        return {"status": "started"}, 202

    return app
