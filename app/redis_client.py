"""The web's Redis connection, kept on the app and read through an accessor."""

from __future__ import annotations

from flask import Flask, current_app
from redis import Redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from jobs.connection import redis_url

EXTENSION = "offload.redis"


def redis_from_url(url: str, socket_timeout: float, max_connections: int = 1000) -> Redis:
    """A client that fails fast: bounded timeouts and no retries, so outages surface as 503.

    Building it does no network I/O; it connects on first use.
    """
    return Redis.from_url(
        redis_url(url),
        socket_connect_timeout=socket_timeout,
        socket_timeout=socket_timeout,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=30,
        max_connections=max_connections,
    )


def init_app(app: Flask) -> None:
    app.extensions[EXTENSION] = redis_from_url(
        app.config["REDIS_URL"], app.config["REDIS_SOCKET_TIMEOUT"], app.config["REDIS_MAX_CONNECTIONS"]
    )


def get_redis() -> Redis:
    return current_app.extensions[EXTENSION]
