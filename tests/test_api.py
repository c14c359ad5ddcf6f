"""The JSON API against a real Redis server: shapes, status codes and problem details."""

from __future__ import annotations

import json
import zlib
from datetime import UTC, datetime, timedelta

import pytest
import redis
from flask.testing import FlaskClient

from app.api import fleet_schemas
from tests.conftest import AUTH


def post_job(client: FlaskClient, body: object, **kwargs: object):
    return client.post("/api/jobs", json=body, headers=AUTH, **kwargs)


def assert_problem(response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["status"] == status
    assert body["title"] and body["type"]
    return body


def test_tasks_lists_the_registry_with_argument_schemas(client: FlaskClient):
    response = client.get("/api/tasks", headers=AUTH)
    assert response.status_code == 200
    tasks = {item["name"]: item for item in response.get_json()["tasks"]}
    assert {"demo.sleep", "demo.fail", "tests.fixtures.add"} <= tasks.keys()
    add = tasks["tests.fixtures.add"]
    assert add["queue"] == "default"
    assert add["description"] == "Add two numbers."
    assert add["schema"]["properties"] == {
        "a": {"title": "A", "type": "integer"},
        "b": {"title": "B", "type": "integer"},
    }
    assert set(add) >= {"name", "description", "queue", "timeout", "retry", "schedule", "schema"}


def test_one_task_and_unknown_task(client: FlaskClient):
    assert client.get("/api/tasks/demo.sleep", headers=AUTH).get_json()["name"] == "demo.sleep"
    body = assert_problem(client.get("/api/tasks/os.system", headers=AUTH), 404)
    assert "os.system" in body["detail"]


def test_enqueue_returns_202_location_and_the_job_document(client: FlaskClient, redis_conn: redis.Redis):
    response = post_job(client, {"task": "tests.fixtures.add", "args": {"a": 2, "b": "3"}})
    assert response.status_code == 202
    job = response.get_json()
    assert response.headers["Location"] == f"/api/jobs/{job['id']}"
    assert job["task"] == "tests.fixtures.add"
    assert job["args"] == {"a": 2, "b": 3}
    assert job["status"] == "queued"
    assert job["queue"] == "default"
    assert job["attempts"] == 0
    assert job["created_at"].endswith("Z")
    assert redis_conn.lrange("rq:queue:default", 0, -1) == [job["id"].encode()]
    assert client.get(job["links"]["self"], headers=AUTH).get_json()["id"] == job["id"]


def test_jobs_are_stored_as_json_never_pickle(client: FlaskClient, redis_conn: redis.Redis):
    job = post_job(client, {"task": "tests.fixtures.describe", "args": {"name": "n", "where": {"x": 1, "y": 2}}})
    raw = redis_conn.hgetall(f"rq:job:{job.get_json()['id']}")
    # RQ zlib-compresses the payload; inside it is JSON, never a pickle.
    assert json.loads(zlib.decompress(raw[b"data"])) == [
        "tests.fixtures.describe",
        None,
        [],
        {"name": "n", "color": "red", "tags": None, "where": {"x": 1, "y": 2}},
    ]
    assert json.loads(raw[b"meta"])["task"] == "tests.fixtures.describe"


def test_queue_override_and_job_ids_are_unguessable(client: FlaskClient):
    job = post_job(client, {"task": "tests.fixtures.add", "args": {"a": 1, "b": 1}, "queue": "high"}).get_json()
    assert job["queue"] == "high"
    assert len(job["id"]) == 32 and int(job["id"], 16) >= 0


@pytest.mark.parametrize(
    ("raw", "detail"),
    [
        (b'{"task": "demo.noop",', "Expecting"),
        (b'{"task": "demo.noop", "args": {"a": NaN}}', "NaN is not valid JSON"),
        (b'{"task": "demo.noop", "args": {"a": Infinity}}', "Infinity is not valid JSON"),
        (b'{"task": "demo.noop", "task": "demo.fail"}', "duplicate key 'task'"),
        (b"[" * 10_000, "nested too deeply"),
        (b'{"a":' * 40 + b"1" + b"}" * 40, "nested deeper than 32"),
        (b"\xff\xfe", "not UTF-8"),
    ],
)
def test_bad_json_is_a_400_problem(client: FlaskClient, raw: bytes, detail: str):
    response = client.post("/api/jobs", data=raw, headers={**AUTH, "Content-Type": "application/json"})
    assert detail in assert_problem(response, 400)["detail"]


def test_a_body_that_is_not_json_is_a_415_problem(client: FlaskClient):
    response = client.post("/api/jobs", data="task=demo.noop", headers={**AUTH, "Content-Type": "text/plain"})
    assert_problem(response, 415)
    response = client.post("/api/jobs", data=b"{}", headers=AUTH)
    assert_problem(response, 415)


def test_unknown_task_is_a_404_problem(client: FlaskClient, redis_conn: redis.Redis):
    body = assert_problem(post_job(client, {"task": "os.system", "args": {"command": "true"}}), 404)
    assert body["type"] == "urn:offload:problem:unknown-task"
    assert redis_conn.keys("rq:job:*") == []


def test_bad_args_are_a_422_with_one_error_per_field(client: FlaskClient, redis_conn: redis.Redis):
    response = post_job(client, {"task": "tests.fixtures.add", "args": {"a": "two", "c": 1}})
    body = assert_problem(response, 422)
    errors = {tuple(error["loc"]): error["msg"] for error in body["errors"]}
    assert errors == {
        ("args", "a"): "Input should be a valid integer, unable to parse string as an integer",
        ("args", "b"): "Field required",
        ("args", "c"): "Extra inputs are not permitted",
    }
    assert redis_conn.keys("rq:job:*") == []


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"args": {}}, ["task"]),
        ({"task": "demo.noop", "queue": "urgent"}, ["queue"]),
        ({"task": "demo.noop", "delay": -1}, ["delay"]),
        ({"task": "demo.noop", "surprise": True}, ["surprise"]),
        ({"task": "demo.noop", "at": "tomorrow"}, ["at"]),
        ({"task": "demo.noop", "at": "2020-01-01T00:00:00Z"}, ["at"]),
        ({"task": "demo.noop", "at": "2999-01-01T00:00:00Z", "delay": 5}, ["at"]),
        ({"task": "demo.noop", "depends_on": ["missing"]}, ["depends_on", 0]),
        (["demo.noop"], []),
    ],
)
def test_bad_request_fields_are_422_naming_the_field(client: FlaskClient, body: object, loc: list):
    errors = assert_problem(post_job(client, body), 422)["errors"]
    assert [error["loc"] for error in errors] == [loc]


def test_a_body_over_the_limit_is_a_413_problem(app, client: FlaskClient):
    app.config["MAX_CONTENT_LENGTH"] = 1000
    response = post_job(client, {"task": "tests.fixtures.describe", "args": {"name": "x" * 2000}})
    assert_problem(response, 413)


def test_delay_schedules_the_job(client: FlaskClient, redis_conn: redis.Redis):
    job = post_job(client, {"task": "demo.noop", "delay": 60}).get_json()
    assert job["status"] == "scheduled"
    assert redis_conn.zscore("rq:scheduled:high", job["id"]) is not None
    at = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert post_job(client, {"task": "demo.noop", "at": at}).get_json()["status"] == "scheduled"


def test_depends_on_defers_the_job_until_its_parent_finishes(client: FlaskClient):
    parent = post_job(client, {"task": "demo.noop"}).get_json()
    child = post_job(client, {"task": "demo.noop", "depends_on": [parent["id"]]}).get_json()
    assert child["status"] == "deferred"
    listed = client.get("/api/jobs", headers=AUTH).get_json()["jobs"]
    assert [job["id"] for job in listed] == [child["id"], parent["id"]]


def test_unknown_job_is_a_404_problem(client: FlaskClient):
    assert_problem(client.get("/api/jobs/0123456789abcdef", headers=AUTH), 404)
    assert_problem(client.get("/api/jobs/not..valid", headers=AUTH), 404)


def test_list_is_newest_first_and_pages_with_a_cursor(client: FlaskClient):
    ids = [
        post_job(client, {"task": "tests.fixtures.add", "args": {"a": i, "b": 0}}).get_json()["id"] for i in range(5)
    ]
    seen, cursor = [], None
    while True:
        query = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/jobs", query_string=query, headers=AUTH).get_json()
        assert len(page["jobs"]) <= 2
        seen.extend(job["id"] for job in page["jobs"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))


def test_list_filters_by_task_queue_and_status(client: FlaskClient):
    post_job(client, {"task": "tests.fixtures.add", "args": {"a": 1, "b": 1}})
    post_job(client, {"task": "tests.fixtures.describe", "args": {"name": "x"}})
    scheduled = post_job(client, {"task": "demo.noop", "delay": 60}).get_json()

    def listed(**query: str) -> list[str]:
        response = client.get("/api/jobs", query_string=query, headers=AUTH)
        assert response.status_code == 200
        return [job["task"] for job in response.get_json()["jobs"]]

    assert listed(task="tests.fixtures.add") == ["tests.fixtures.add"]
    assert listed(queue="low") == ["tests.fixtures.describe"]
    assert listed(status="scheduled") == ["demo.noop"]
    assert listed(status="finished") == []
    assert scheduled["id"]


@pytest.mark.parametrize("query", [{"status": "lost"}, {"limit": "0"}, {"limit": "x"}, {"cursor": "abc"}, {"x": "1"}])
def test_bad_list_filters_are_422(client: FlaskClient, query: dict):
    errors = assert_problem(client.get("/api/jobs", query_string=query, headers=AUTH), 422)["errors"]
    assert errors[0]["loc"][0] == "query"


def test_list_drops_index_entries_whose_job_expired(client: FlaskClient, redis_conn: redis.Redis):
    kept = post_job(client, {"task": "demo.noop"}).get_json()
    gone = post_job(client, {"task": "demo.noop"}).get_json()
    redis_conn.delete(f"rq:job:{gone['id']}")
    listed = client.get("/api/jobs", headers=AUTH).get_json()["jobs"]
    assert [job["id"] for job in listed] == [kept["id"]]
    assert redis_conn.zcard("offload:jobs") == 1


def test_queues_count_each_registry(client: FlaskClient):
    post_job(client, {"task": "tests.fixtures.add", "args": {"a": 1, "b": 1}})
    post_job(client, {"task": "demo.noop", "delay": 30})
    queues = {queue["name"]: queue for queue in client.get("/api/queues", headers=AUTH).get_json()["queues"]}
    assert list(queues) == ["high", "default", "low"]
    assert queues["default"]["queued"] == 1
    assert queues["high"]["scheduled"] == 1
    assert set(queues["low"]) == set(fleet_schemas.QueueInfo.model_fields)
    assert queues["default"]["latency_seconds"] is not None and queues["default"]["latency_seconds"] >= 0
    assert queues["low"]["latency_seconds"] is None and queues["low"]["paused"] is False


def test_workers_is_empty_without_workers(client: FlaskClient):
    assert client.get("/api/workers", headers=AUTH).get_json() == {"workers": []}


def test_openapi_document_is_3_1_and_includes_each_task_schema(client: FlaskClient):
    document = client.get("/api/openapi.json", headers=AUTH).get_json()
    assert document["openapi"] == "3.1.0"
    assert {"/api/tasks", "/api/jobs", "/api/jobs/{job_id}", "/api/queues", "/api/workers"} <= set(document["paths"])
    schemas = document["components"]["schemas"]
    variants = document["paths"]["/api/jobs"]["post"]["requestBody"]["content"]["application/json"]["schema"]["oneOf"]
    by_task = {variant["properties"]["task"]["const"]: variant for variant in variants}
    add_ref = by_task["tests.fixtures.add"]["properties"]["args"]["$ref"]
    assert schemas[add_ref.rsplit("/", 1)[1]]["required"] == ["a", "b"]
    describe_ref = by_task["tests.fixtures.describe"]["properties"]["args"]["$ref"].rsplit("/", 1)[1]
    assert schemas[describe_ref]["properties"]["where"]["anyOf"][0] == {"$ref": "#/components/schemas/Point"}
    assert "Point" in schemas
    for name in ("JobDocument", "Problem", "TaskList", "QueueList", "WorkerList", "JobList"):
        assert name in schemas
    assert "$defs" not in json.dumps(document)


def test_unknown_api_path_and_wrong_method_are_problems(client: FlaskClient):
    assert_problem(client.get("/api/nothing-here", headers=AUTH), 404)
    response = client.delete("/api/tasks", headers=AUTH)
    assert_problem(response, 405)
    assert "GET" in response.headers["Allow"]
