"""Operators find and fix: failures grouped by cause, bulk actions on a filter or a group, the audit log."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from jobs.records import audit_log
from tests.conftest import AUTH, TOKEN


def enqueue(client: FlaskClient, task: str, **args: object) -> str:
    answer = client.post("/api/jobs", json={"task": task, "args": args}, headers=AUTH)
    assert answer.status_code == 202, answer.get_data(as_text=True)
    return answer.get_json()["id"]


@pytest.fixture
def failed(client: FlaskClient, run_jobs: Callable[..., bool]) -> dict[str, list[str]]:
    made = {
        "gateway": [enqueue(client, "tests.fixtures.fail_with", message=f"gateway {n} timed out") for n in (3, 7, 12)],
        "card": [enqueue(client, "demo.fail", message=f"card '{n}' refused") for n in ("4242", "1881")],
        "fine": [enqueue(client, "tests.fixtures.add", a=1, b=2)],
    }
    run_jobs()
    return made


def groups(client: FlaskClient) -> list[dict]:
    answer = client.get("/api/failures", headers=AUTH)
    assert answer.status_code == 200
    return answer.get_json()["groups"]


def test_failures_are_grouped_by_task_error_type_and_message_shape(client: FlaskClient, failed):
    found = groups(client)
    assert [(g["task"], g["error_type"], g["message"], g["count"]) for g in found] == [
        ("tests.fixtures.fail_with", "RuntimeError", "gateway <n> timed out", 3),
        ("demo.fail", "RuntimeError", "card '…' refused", 2),
    ]
    gateway = found[0]
    assert set(gateway["job_ids"]) == set(failed["gateway"])
    assert gateway["sample"]["id"] == gateway["job_ids"][0] and "timed out" in gateway["sample"]["message"]
    assert gateway["first_seen"] <= gateway["last_seen"]


def test_a_groups_bulk_retry_does_each_job_once_and_is_recorded(client: FlaskClient, failed):
    gateway = groups(client)[0]
    answer = client.post("/api/jobs/retry", json={"group": gateway["id"]}, headers=AUTH)
    assert answer.status_code == 200
    assert answer.get_json() == {
        "action": "retry", "matched": 3, "done": 3, "skipped": 0, "skipped_because": {}, "more": False,
    }  # fmt: skip
    statuses = {client.get(f"/api/jobs/{job_id}", headers=AUTH).get_json()["status"] for job_id in failed["gateway"]}
    assert statuses == {"queued"}
    again = client.post("/api/jobs/retry", json={"group": gateway["id"]}, headers=AUTH).get_json()
    assert again["matched"] == 0 and again["done"] == 0  # the group is gone: nothing more happens
    entries = client.get("/api/audit", headers=AUTH).get_json()["entries"]
    assert [(e["action"], e["via"], e["filters"], e["done"]) for e in entries[:2]] == [
        ("retry", "api", {"group": gateway["id"]}, 0),
        ("retry", "api", {"group": gateway["id"]}, 3),
    ]
    assert entries[0]["actor"].startswith("token ") and TOKEN not in str(entries)


def test_bulk_actions_on_a_filter_skip_what_their_state_forbids(client: FlaskClient, failed):
    finished = client.post("/api/jobs/retry", json={"status": "finished"}, headers=AUTH).get_json()
    assert finished["matched"] == 1 and finished["done"] == 0 and finished["skipped"] == 1
    assert list(finished["skipped_because"]) == [
        "only failed, stopped or canceled jobs can be retried; this one is finished"
    ]
    queued = enqueue(client, "tests.fixtures.add", a=5, b=5)
    canceled = client.post("/api/jobs/cancel", json={"status": "queued", "q": "fixtures.add"}, headers=AUTH)
    assert canceled.get_json()["done"] == 1
    assert client.get(f"/api/jobs/{queued}", headers=AUTH).get_json()["status"] == "canceled"
    deleted = client.post("/api/jobs/delete", json={"task": "demo.fail"}, headers=AUTH).get_json()
    assert deleted["done"] == 2 and all(
        client.get(f"/api/jobs/{job_id}", headers=AUTH).status_code == 404 for job_id in failed["card"]
    )
    nothing = client.post("/api/jobs/delete", json={"q": "no such text"}, headers=AUTH).get_json()
    assert (nothing["matched"], nothing["done"], nothing["skipped"]) == (0, 0, 0)


@pytest.mark.parametrize(
    "body",
    [{}, {"group": "0123456789abcdef", "status": "failed"}, {"group": "not-a-group"}, {"status": "lost"}, {"x": 1}],
)
def test_bad_bulk_requests_are_a_422_and_change_nothing(client: FlaskClient, redis_conn: redis.Redis, body: dict):
    answer = client.post("/api/jobs/retry", json=body, headers=AUTH)
    assert answer.status_code == 422 and answer.mimetype == "application/problem+json"
    assert answer.get_json()["errors"]
    assert redis_conn.xlen(audit_log.KEY) == 0


def test_the_cli_retries_a_filter_and_the_audit_log_names_it(app: Flask, client: FlaskClient, failed):
    result = app.test_cli_runner().invoke(
        args=["jobs", "retry", "--status", "failed", "--task", "tests.fixtures.fail_with", "--match", "gateway"]
    )
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == "retry: 3 matched, 3 done, 0 skipped"
    entry = client.get("/api/audit", headers=AUTH).get_json()["entries"][0]
    assert entry["via"] == "cli" and entry["actor"].startswith("cli ") and entry["done"] == 3
    assert entry["filters"] == {"status": "failed", "task_name": "tests.fixtures.fail_with", "text": "gateway"}
    usage = app.test_cli_runner().invoke(args=["jobs", "retry"])
    assert usage.exit_code == 2 and "at least one filter" in usage.output


def test_single_actions_are_recorded_and_the_log_pages_newest_first(client: FlaskClient, failed):
    for job_id in failed["gateway"]:
        assert client.post(f"/api/jobs/{job_id}/retry", headers=AUTH).status_code == 202
    first = client.get("/api/audit", query_string={"limit": 2}, headers=AUTH).get_json()
    rest = client.get("/api/audit", query_string={"limit": 2, "before": first["next_before"]}, headers=AUTH).get_json()
    assert [e["job"] for e in first["entries"] + rest["entries"]] == list(reversed(failed["gateway"]))
    assert rest["next_before"] is None
    assert client.get("/api/audit", query_string={"before": "yesterday"}, headers=AUTH).status_code == 422


def test_the_audit_log_keeps_entries_for_its_retention_only(redis_conn: redis.Redis):
    old = int((time.time() - 3 * 86_400) * 1000)
    redis_conn.xadd(audit_log.KEY, {"entry": "{}"}, id=f"{old}-0")
    audit_log.record(redis_conn, audit_log.Entry("cli tester", "retry", "cli"), retention_days=1)
    assert redis_conn.xlen(audit_log.KEY) == 1
    entries, _ = audit_log.read(redis_conn, 10)
    assert [(e.actor, e.action) for e in entries] == [("cli tester", "retry")]


def test_the_pages_group_failures_confirm_the_count_and_record_the_action(client: FlaskClient, failed):
    from tests.test_pages import csrf_of, log_in

    assert log_in(client) == (303, "/")
    page = client.get("/failures").get_data(as_text=True)
    gateway = groups(client)[0]
    assert "gateway &lt;n&gt; timed out" in page and "Retry 3" in page
    confirm = client.get("/bulk/retry", query_string={"group": gateway["id"]}).get_data(as_text=True)
    assert "Retry 3 matching jobs?" in confirm
    token = csrf_of(client, f"/bulk/retry?group={gateway['id']}")
    done = client.post("/bulk/retry", data={"group": gateway["id"], "csrf_token": token})
    assert done.status_code == 200 and "Retry: 3 matched, 3 done, 0 skipped." in done.get_data(as_text=True)
    audit = client.get("/audit").get_data(as_text=True)
    assert f"group={gateway['id']}" in audit and "<td>page</td>" in audit
    history = client.get("/jobs", query_string={"status": "failed"}).get_data(as_text=True)
    assert "Retry 2 matching" in history and "Delete 2 matching" in history
    refused = client.get("/bulk/delete", query_string={"status": "lost"})
    assert refused.status_code == 422 and "status: Input should be" in refused.get_data(as_text=True)
    nothing = client.get("/bulk/cancel", query_string={"q": "no such text"}).get_data(as_text=True)
    assert "No job matches: nothing to cancel." in nothing


def test_a_dashboard_action_is_recorded_in_the_audit_log(app: Flask, client: FlaskClient, failed):
    from tests.test_auth import basic

    app.config["DASHBOARD_ACTIONS"] = True
    job_id = failed["card"][0]
    headers = {**basic(TOKEN), "Sec-Fetch-Site": "same-origin"}
    assert client.post(f"/rq/job/{job_id}/requeue", headers=headers).status_code < 400
    entry = client.get("/api/audit", headers=AUTH).get_json()["entries"][0]
    assert entry["via"] == "rq" and entry["action"].startswith("rq ") and job_id in entry["filters"]["path"]
    assert entry["actor"].startswith("token ")
