"""Offload's app with a hello-world route beside the API: the baseline of the HTTP rows."""

from __future__ import annotations

from flask import Flask

from app import create_app
from app.auth import public


def create_bench_app() -> Flask:
    app = create_app()

    @app.get("/hello")
    @public
    def hello() -> str:
        return "hello, world"

    return app
