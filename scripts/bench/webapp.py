"""Offload's app with two baseline routes beside the API: hello-world, and the least an
enqueue route can cost on this stack."""

from __future__ import annotations

from uuid import uuid4

from flask import Flask, request
from redis.commands.core import Script

from app import create_app
from app.auth import public
from app.redis_client import get_redis

FLOOR_PATH = "/api/bench/floor"
_FLOOR = Script(None, b"redis.call('HSET', KEYS[1], 'body', ARGV[1]) redis.call('RPUSH', KEYS[2], ARGV[2]) return 1")


def create_bench_app() -> Flask:
    app = create_app()

    @app.get("/hello")
    @public
    def hello() -> str:
        return "hello, world"

    @app.post(FLOOR_PATH)
    def enqueue_floor() -> tuple[dict[str, str], int]:
        """The same token check, JSON in, one script call that stores the body and queues an
        id, JSON out. POST /api/jobs adds validation, the rate limit and queue cap, RQ's job
        record, the index entry, the first event and metrics."""
        job_id = uuid4().hex
        _FLOOR(keys=[f"bench:floor:{job_id}", "bench:floor"], args=[request.get_data(), job_id], client=get_redis())
        return {"id": job_id, "status": "queued"}, 202

    return app
