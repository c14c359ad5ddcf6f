"""Backpressure (refuse new work before Redis fills up) and configuration from the environment."""

from __future__ import annotations

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from app.config import ConfigError, from_environment
from tests.conftest import AUTH

JOB = {"task": "tests.fixtures.add", "args": {"a": 1, "b": 2}}


def test_a_full_queue_answers_429_with_retry_after(app: Flask, client: FlaskClient, redis_conn: redis.Redis):
    app.config["QUEUE_MAX_LENGTH"] = 2
    assert [client.post("/api/jobs", json=JOB, headers=AUTH).status_code for _ in range(2)] == [202, 202]
    refused = client.post("/api/jobs", json=JOB, headers=AUTH)
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "5"
    assert refused.get_json()["type"] == "urn:offload:problem:queue-full"
    assert "'default' holds 2 jobs (limit 2)" in refused.get_json()["detail"]
    assert client.post("/api/jobs", json={**JOB, "queue": "high"}, headers=AUTH).status_code == 202
    batch = client.post("/api/jobs/batch", json=[{**JOB, "queue": "high"}] * 2, headers=AUTH)
    assert batch.status_code == 429
    assert redis_conn.llen("rq:queue:high") == 1


def test_redis_memory_near_its_limit_answers_503(app: Flask, client: FlaskClient, redis_conn: redis.Redis):
    used = int(redis_conn.info("memory")["used_memory"])
    redis_conn.config_set("maxmemory", str(int(used * 1.05)))
    try:
        refused = client.post("/api/jobs", json=JOB, headers=AUTH)
        assert refused.status_code == 503
        assert refused.headers["Retry-After"] == "5"
        assert refused.get_json()["type"] == "urn:offload:problem:memory"
        app.config["REDIS_MEMORY_MAX_RATIO"] = 0
        assert client.post("/api/jobs", json=JOB, headers=AUTH).status_code == 202
    finally:
        redis_conn.config_set("maxmemory", "0")


def test_numeric_settings_from_the_environment_are_typed_and_checked():
    found = from_environment({"SSE_MAX_STREAMS": "5", "REDIS_MEMORY_MAX_RATIO": "0.5", "API_TOKENS": "a,b"})
    assert found == {"SSE_MAX_STREAMS": 5, "REDIS_MEMORY_MAX_RATIO": 0.5, "API_TOKENS": "a,b"}
    with pytest.raises(ConfigError, match="QUEUE_MAX_LENGTH='lots' is not a valid int"):
        from_environment({"QUEUE_MAX_LENGTH": "lots"})


def test_submissions_are_rate_limited_per_token(redis_url: str):
    from app import create_app

    app = create_app({"REDIS_URL": redis_url, "API_TOKENS": "token-one,token-two", "SUBMIT_RATE_LIMIT": "3/minute"})
    client = app.test_client()
    one, two = ({"Authorization": f"Bearer {token}"} for token in ("token-one", "token-two"))
    assert [client.post("/api/jobs", json=JOB, headers=one).status_code for _ in range(3)] == [202] * 3
    limited = client.post("/api/jobs", json=JOB, headers=one)
    assert limited.status_code == 429
    assert limited.mimetype == "application/problem+json"
    assert 0 < int(limited.headers["Retry-After"]) <= 61  # the rest of the minute window
    assert client.post("/api/jobs", json=JOB, headers=two).status_code == 202  # another token, its own budget
    assert client.get("/api/jobs", headers=one).status_code == 200  # reading is not limited
    with redis.Redis.from_url(redis_url) as connection:
        keys = [key.decode() for key in connection.keys("*ratelimit*")]
    assert keys and not any("token-one" in key for key in keys)  # tokens are hashed, never stored
