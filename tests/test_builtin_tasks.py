"""The tasks that ship with Offload, each against a local peer: success, every failure
mode, and retries. Called directly (they are plain functions) and through real workers."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import logging
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import requests
from flask.testing import FlaskClient
from PIL import Image
from pydantic import SecretStr, ValidationError
from rq.serializers import JSONSerializer

from jobs import settings
from jobs.job import TaskJob
from jobs.outbound import BlockedDestinationError
from jobs.registry import registry
from jobs.tasks import demo, images, mail, reports, web, webhooks
from scripts.embedded_redis import free_port
from tests.conftest import AUTH, BIN, ROOT, TOKEN
from tests.doc_blocks import code_blocks
from tests.http_peers import Answer, HttpPeer
from tests.mail_peer import Mailbox
from tests.test_worker import enqueue, wait_until_ended


@pytest.fixture
def peer() -> Iterator[HttpPeer]:
    with HttpPeer() as server:
        yield server


@pytest.fixture
def deny_private(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OUTBOUND_ALLOW_PRIVATE", "false")
    settings.reload()


# Webhooks


def test_webhook_is_signed_and_delivered(peer: HttpPeer, caplog: pytest.LogCaptureFixture):
    url = peer.script("/hook", Answer(204, b""))
    caplog.set_level(logging.INFO)
    result = webhooks.deliver(url, {"order": 7}, headers={"X-Team": "a"}, secret=SecretStr("s3cret"))
    assert result["status"] == 204 and result["attempts"] == 1
    [sent] = peer.received
    assert json.loads(sent.body) == {"order": 7}
    assert sent.headers["X-Team"] == "a"
    assert sent.headers["Offload-Delivery"] == result["delivery_id"]
    timestamp, mac = (part.split("=", 1)[1] for part in sent.headers["Offload-Signature"].split(","))
    expected = hmac.new(b"s3cret", f"{timestamp}.".encode() + sent.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(mac, expected)
    assert "attempt 1: HTTP 204" in caplog.text


def test_webhook_retries_5xx_then_succeeds_with_the_same_delivery_id(peer: HttpPeer, caplog):
    caplog.set_level(logging.INFO)
    url = peer.script("/hook", Answer(503), Answer(500), Answer(200))
    result = webhooks.deliver(url, {"a": 1}, backoff=0.01)
    assert result["attempts"] == 3
    assert len({r.headers["Offload-Delivery"] for r in peer.received}) == 1
    attempts = [message.split(" in ")[0] for message in caplog.messages if message.startswith("attempt")]
    assert attempts == ["attempt 1: HTTP 503", "attempt 2: HTTP 500", "attempt 3: HTTP 200"]


def test_webhook_honours_retry_after_on_429(peer: HttpPeer):
    url = peer.script("/hook", Answer(429, headers={"Retry-After": "1"}), Answer(200))
    webhooks.deliver(url, {}, backoff=0)
    first, second = peer.received
    assert second.at - first.at >= 0.9  # waited as the receiver asked, not the zero backoff


@pytest.mark.parametrize("status", [400, 401, 404, 410, 422])
def test_webhook_gives_up_at_once_on_4xx(peer: HttpPeer, status: int):
    url = peer.script("/hook", Answer(status))
    with pytest.raises(webhooks.WebhookRejectedError, match=f"HTTP {status}"):
        webhooks.deliver(url, {}, backoff=0)
    assert len(peer.received) == 1


def test_webhook_gives_up_after_max_attempts_on_timeouts_and_refusals(peer: HttpPeer):
    url = peer.script("/slow", Answer(200, delay=1.0))
    with pytest.raises(webhooks.WebhookFailedError, match="after 2 attempts; last: ReadTimeout"):
        webhooks.deliver(url, {}, max_attempts=2, backoff=0, timeout=0.2)
    closed = f"http://127.0.0.1:{free_port()}/nobody"
    with pytest.raises(webhooks.WebhookFailedError, match="last: ConnectionError"):
        webhooks.deliver(closed, {}, max_attempts=3, backoff=0)


def test_webhook_follows_redirects_on_the_same_host_only(peer: HttpPeer):
    peer.script("/old", Answer(307, headers={"Location": "/new"}))
    peer.script("/new", Answer(200))
    assert webhooks.deliver(f"{peer.base}/old", {"x": 1})["status"] == 200
    assert [r.path for r in peer.received] == ["/old", "/new"]
    peer.script("/away", Answer(302, headers={"Location": "http://example.invalid/steal"}))
    with pytest.raises(BlockedDestinationError, match="another host"):
        webhooks.deliver(f"{peer.base}/away", {})


def test_private_addresses_are_refused_when_configured(peer: HttpPeer, deny_private: None):
    url = peer.script("/hook", Answer(200))
    with pytest.raises(BlockedDestinationError, match="127.0.0.1, a private or reserved address"):
        webhooks.deliver(url, {})
    with pytest.raises(BlockedDestinationError, match="private or reserved"):
        web.word_count("http://169.254.169.254/latest/meta-data/")
    assert peer.received == []


def test_webhook_secret_is_masked_in_the_job_document(client: FlaskClient, peer: HttpPeer, worker, tmp_path: Path):
    url = peer.script("/hook", Answer(500), Answer(200))
    args = {"url": url, "payload": {"n": 1}, "secret": "do-not-show", "backoff": 0.01}
    job = wait_until_ended(client, enqueue(client, "webhooks.deliver", **args))
    assert job["status"] == "finished"
    assert job["args"]["secret"] == "**********"
    assert "do-not-show" not in json.dumps(client.get("/api/jobs", headers=AUTH).get_json())
    assert "do-not-show" not in (tmp_path / "worker-0.log").read_text()  # nor in the worker's log
    assert peer.received[-1].headers["Offload-Signature"].startswith("t=")
    lines = [line["message"] for line in client.get(f"/api/jobs/{job['id']}/logs", headers=AUTH).get_json()["lines"]]
    assert lines[0].startswith("attempt 1: HTTP 500 in ")
    assert lines[1].startswith("attempt 2: HTTP 200 in ")


# Mail


@pytest.fixture
def smtp(monkeypatch: pytest.MonkeyPatch) -> Iterator[Mailbox]:
    with Mailbox.serving() as mailbox:
        monkeypatch.setenv("SMTP_URL", mailbox.url)
        monkeypatch.setenv("MAIL_FROM", "Offload Tests <tests@offload.test>")
        settings.reload()
        yield mailbox


def test_mail_is_sent_with_text_and_html(smtp: Mailbox):
    result = mail.send(["a@example.com", "b@example.com"], "Hello", "plain body", html="<p>html body</p>")
    assert result["recipients"] == 2 and result["attempts"] == 1
    [message] = smtp.messages
    assert message["Subject"] == "Hello"
    assert message["To"] == "a@example.com, b@example.com"
    assert message["From"] == "Offload Tests <tests@offload.test>"
    parts = {
        part.get_content_type(): part.get_payload(decode=True).decode().strip()
        for part in message.walk()
        if not part.is_multipart()
    }
    assert parts["text/plain"] == "plain body"
    assert parts["text/html"] == "<p>html body</p>"


def test_mail_retries_transient_refusals(smtp: Mailbox):
    smtp.refusals = ["451 4.3.0 try again later", "421 4.3.2 busy"]
    assert mail.send(["a@example.com"], "Hi", "body", backoff=0)["attempts"] == 3
    assert len(smtp.messages) == 1


def test_mail_gives_up_on_a_permanent_refusal(smtp: Mailbox):
    smtp.refusals = ["554 5.7.1 rejected"]
    with pytest.raises(mail.MailRejectedError, match="554"):
        mail.send(["a@example.com"], "Hi", "body", backoff=0)
    assert smtp.messages == []


def test_mail_without_a_server_retries_then_fails(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SMTP_URL", f"smtp://127.0.0.1:{free_port()}")
    settings.reload()
    with pytest.raises(ConnectionRefusedError):
        mail.send(["a@example.com"], "Hi", "body", max_attempts=2, backoff=0)


def test_mail_configuration_errors_are_clear(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("SMTP_URL", raising=False)
    settings.reload()
    with pytest.raises(mail.MailConfigError, match="SMTP_URL is not set"):
        mail.send(["a@example.com"], "Hi", "body")
    monkeypatch.setenv("SMTP_URL", "http://mail.example.com")
    settings.reload()
    with pytest.raises(mail.MailConfigError, match="must look like smtp://"):
        mail.send(["a@example.com"], "Hi", "body")


def test_mail_addresses_are_validated_before_enqueueing(client: FlaskClient):
    response = client.post(
        "/api/jobs", json={"task": "mail.send", "args": {"to": ["not-an-address"], "subject": "x", "body": "y"}},
        headers=AUTH,
    )  # fmt: skip
    assert response.status_code == 422
    assert response.get_json()["errors"][0]["loc"] == ["args", "to", 0]


def test_mail_through_a_worker_uses_the_job_id_as_message_id(client: FlaskClient, smtp: Mailbox, redis_url: str,
                                                             start_worker):  # fmt: skip
    start_worker()
    job = wait_until_ended(client, enqueue(client, "mail.send", to=["a@example.com"], subject="S", body="B"))
    assert job["status"] == "finished", job["error"]
    assert smtp.messages[0]["Message-ID"] == f"<{job['id']}@offload>"


# Images


def png(width: int, height: int, mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (width, height), "teal").save(buffer, "PNG")
    return buffer.getvalue()


def test_thumbnail_keeps_the_aspect_ratio():
    artifact = images.make_thumbnails(png(400, 200), [100])
    assert (artifact.content_type, artifact.filename) == ("image/png", "thumbnail-100.png")
    assert Image.open(io.BytesIO(artifact.data)).size == (100, 50)


def test_several_sizes_come_back_as_a_zip():
    artifact = images.make_thumbnails(png(300, 300, "RGBA"), [32, 64], "jpeg")
    assert artifact.content_type == "application/zip"
    with zipfile.ZipFile(io.BytesIO(artifact.data)) as bundle:
        assert bundle.namelist() == ["thumbnail-32.jpeg", "thumbnail-64.jpeg"]
        assert Image.open(io.BytesIO(bundle.read("thumbnail-64.jpeg"))).size == (64, 64)


def test_non_images_and_bombs_are_refused():
    with pytest.raises(images.NotAnImageError, match="^the upload is not a PNG, JPEG, GIF or WebP image$"):
        images.make_thumbnails(b"%PDF-1.7 not an image", [64])  # said plainly, no "<_io.BytesIO object at …>"
    with pytest.raises(images.NotAnImageError, match="^the image is damaged: "):
        images.make_thumbnails(png(50, 50)[:60], [64])
    with pytest.raises(images.ImageTooLargeError, match="pixels is over the limit"):
        images.make_thumbnails(png(8000, 8000, "1"), [64])  # small file, 64 megapixels
    with pytest.raises(images.ImageTooLargeError, match="bytes; the limit"):
        images.make_thumbnails(b"\x89PNG" + b"\0" * (images.MAX_INPUT_BYTES + 1), [64])


def test_only_png_jpeg_gif_and_webp_are_read():
    """Pillow opens dozens of formats through C code, and hands EPS to Ghostscript."""
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n"
    with pytest.raises(images.NotAnImageError):
        images.make_thumbnails(eps, [64])
    for refused in ("BMP", "TIFF", "ICO"):
        buffer = io.BytesIO()
        Image.new("RGB", (20, 20), "teal").save(buffer, refused)
        with pytest.raises(images.NotAnImageError):
            images.make_thumbnails(buffer.getvalue(), [16])
    for accepted in ("PNG", "JPEG", "GIF", "WEBP"):
        buffer = io.BytesIO()
        Image.new("RGB", (20, 20), "teal").save(buffer, accepted)
        assert images.make_thumbnails(buffer.getvalue(), [16]).data


def test_a_solid_image_just_over_the_pixel_limit_is_refused():
    """49 megapixels of one colour fit in a 208 KB PNG; decoding it took 685 MB."""
    with pytest.raises(images.ImageTooLargeError, match="pixels is over the limit"):
        images.make_thumbnails(png(5001, 5000), [64])


def test_upload_then_thumbnail_through_the_api(client: FlaskClient, worker):
    sent = client.post(
        "/api/uploads", data={"file": (io.BytesIO(png(640, 480)), "photo.png", "image/png")}, headers=AUTH
    )
    assert sent.status_code == 201
    upload = sent.get_json()
    assert upload["size"] > 0 and upload["content_type"] == "image/png"
    job = wait_until_ended(client, enqueue(client, "images.thumbnail", image=upload["id"], sizes=[160]))
    assert job["status"] == "finished", job["error"]
    thumb = client.get(job["links"]["artifact"], headers=AUTH)
    assert thumb.mimetype == "image/png"
    assert Image.open(io.BytesIO(thumb.data)).size == (160, 120)


def test_base64_uploads_and_bad_uploads(client: FlaskClient, worker, app):
    body = {"data": base64.b64encode(b"not an image").decode(), "filename": "x.txt", "content_type": "text/plain"}
    upload = client.post("/api/uploads", json=body, headers=AUTH).get_json()
    job = wait_until_ended(client, enqueue(client, "images.thumbnail", image=upload["id"]))
    assert job["error"]["type"] == "NotAnImageError"
    missing = wait_until_ended(client, enqueue(client, "images.thumbnail", image="0" * 32))
    assert missing["error"]["type"] == "UnknownUploadError"
    assert client.post("/api/uploads", json={"data": "@@@"}, headers=AUTH).status_code == 422
    assert client.post("/api/uploads", data={}, headers=AUTH).status_code in (415, 422)
    assert client.post("/api/uploads", data={"other": (io.BytesIO(b"x"), "a")}, headers=AUTH).status_code == 422
    app.config["UPLOAD_MAX_BYTES"] = 100
    big = client.post("/api/uploads", data={"file": (io.BytesIO(b"x" * 1000), "a.bin")}, headers=AUTH)
    assert big.status_code == 413


# Word count


PAGE = b"""<html><head><title>Hello world</title><style>p { color: red }</style>
<script>var ignored = "not words";</script></head>
<body><p>The quick brown fox &amp; the lazy dog.</p><p>It's the fox's day!</p></body></html>"""


def test_word_count_counts_visible_text_only(peer: HttpPeer):
    result = web.word_count(peer.script("/page", Answer(200, PAGE, {"Content-Type": "text/html"})))
    assert result["words"] == 13
    assert result["top"][0] == ["the", 3] or result["top"][0] == ("the", 3)
    assert "ignored" not in dict(result["top"])


def test_word_count_enforces_the_size_cap_and_http_errors(peer: HttpPeer):
    with pytest.raises(web.PageTooLargeError, match="the cap is 2048"):
        web.word_count(peer.script("/big", Answer(200, b"word " * 2000)), max_bytes=2048)
    with pytest.raises(requests.HTTPError, match="404"):
        web.word_count(peer.script("/gone", Answer(404)))


def test_word_count_through_a_worker_reports_progress(client: FlaskClient, peer: HttpPeer, worker):
    job = wait_until_ended(client, enqueue(client, "web.word_count", url=peer.script("/page", Answer(200, PAGE))))
    assert job["result"]["words"] == 13
    assert job["progress"]["percent"] == 100.0


# Reports


def test_csv_export_of_posted_rows():
    artifact = reports.csv_export(rows=[{"a": 1, "b": "x"}, {"a": 2, "b": None}], chunk_size=1)
    assert artifact.data.decode() == "a,b\n1,x\n2,\n"
    assert (artifact.content_type, artifact.filename) == ("text/csv", "report.csv")


def test_csv_export_of_the_sample_data_set_through_a_worker(client: FlaskClient, redis_conn, worker):
    job = wait_until_ended(client, enqueue(client, "reports.csv_export", sample_rows=250, chunk_size=100))
    lines = client.get(job["links"]["artifact"], headers=AUTH).data.decode().splitlines()
    assert lines[0] == "order,customer,day,amount,paid"
    assert len(lines) == 251
    progress_events = [
        json.loads(fields[b"data"]) for _, fields in redis_conn.xrange(f"offload:job:{job['id']}:events")
        if fields[b"type"] == b"progress"
    ]  # fmt: skip
    assert [event["done"] for event in progress_events] == [100, 200, 250]


@pytest.mark.parametrize("filename", ["../etc/passwd", "ｒｅｐｏｒｔ.csv", "report.csv\n", "a b.csv"])
def test_csv_export_refuses_bad_filenames(filename: str):
    with pytest.raises(ValidationError):
        registry.lookup("reports.csv_export").validate({"filename": filename})


def test_csv_cells_that_a_spreadsheet_would_run_are_written_as_text():
    rows = [{"=name": '=HYPERLINK("http://evil")', "n": "-2+3", "at": "@SUM(A1)", "ok": "plain", "num": -5}]
    lines = reports.csv_export(rows=rows).data.decode().splitlines()
    assert lines[0] == "'=name,n,at,ok,num"
    assert lines[1] == '"\'=HYPERLINK(""http://evil"")",\'-2+3,\'@SUM(A1),plain,-5'


def test_an_artifact_with_a_non_ascii_name_downloads(client: FlaskClient, redis_conn, worker):
    job = wait_until_ended(client, enqueue(client, "tests.fixtures.make_file", text="hi", name="ｒｅｐｏｒｔ.txt"))
    response = client.get(job["links"]["artifact"], headers=AUTH)
    assert response.status_code == 200 and response.data == b"hi"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="')
    assert "filename*=UTF-8''%EF%BD%92" in disposition
    disposition.encode("latin-1")  # what a WSGI server can send


# Demo tasks


def test_demo_tasks():
    assert demo.flaky(0.0) == "ok"
    with pytest.raises(ConnectionError):
        demo.flaky(1.0)
    assert demo.sleep(0.01, 2)["steps"] == 2


# Adding a task


def test_the_readmes_task_is_in_the_api_openapi_cli_and_worker_with_no_other_change(tmp_path: Path, redis_url: str):
    """The README's two examples, as written there: a task module added to a copy of the
    project, and a Flask route of the app's own that enqueues it and sends the person to its page."""
    module, route = (
        block for block in code_blocks(ROOT / "README.md", "python") if "enqueue_task" in block or "@task" in block
    )
    tree = tmp_path / "project"
    for part in ("app", "jobs", "scripts"):
        shutil.copytree(ROOT / part, tree / part, ignore=shutil.ignore_patterns("__pycache__"))
    path = module.splitlines()[0].removeprefix("# ").strip()  # the block names its file
    (tree / path).write_text(module)
    (tree / "billing.py").write_text(route)
    probe = """
import json, os, re
from app import create_app
from billing import bp
app = create_app({"REDIS_URL": os.environ["REDIS_URL"], "API_TOKENS": os.environ["API_TOKENS"], "SECRET_KEY": "probe"})
app.register_blueprint(bp)
client = app.test_client()
headers = {"Authorization": "Bearer " + os.environ["API_TOKENS"]}
tasks = [t["name"] for t in client.get("/api/tasks", headers=headers).get_json()["tasks"]]
openapi = json.dumps(client.get("/api/openapi.json", headers=headers).get_json())
cli = app.test_cli_runner().invoke(args=["tasks"]).output
csrf = lambda page: re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
token = csrf(client.get("/login").get_data(as_text=True))
client.post("/login", data={"secret": os.environ["API_TOKENS"], "csrf_token": token})
token = csrf(client.get("/").get_data(as_text=True))
answer = client.post("/billing/invoices", data={"csrf_token": token})
print(json.dumps({"tasks": tasks, "openapi": "invoices.monthly" in openapi, "cli": "invoices.monthly" in cli,
                  "status": answer.status_code, "location": answer.headers.get("Location", "")}))
"""
    env = {
        "PATH": str(BIN),
        "PYTHONPATH": str(tree),
        "HOME": str(tmp_path),
        "REDIS_URL": redis_url,
        "API_TOKENS": TOKEN,
        "INVOICING_KEY": "key-from-the-environment",
    }
    found = json.loads(subprocess.run([sys.executable, "-c", probe], cwd=tree, env=env, capture_output=True,
                                      text=True, check=True).stdout)  # fmt: skip
    assert "invoices.monthly" in found["tasks"] and found["openapi"] and found["cli"]
    assert found["status"] == 303 and found["location"].startswith("/jobs/"), found
    worker = [str(BIN / "rq"), "worker", "--config", "jobs.worker.rq_cli_config",
              "--worker-class", "jobs.worker.forking.ForkingWorker", "--job-class", "jobs.job.TaskJob",
              "--serializer", "json", "--burst", "low"]  # fmt: skip
    subprocess.run(worker, cwd=tree, env=env, capture_output=True, check=True, timeout=60)
    with redis.Redis.from_url(redis_url) as connection:
        job = TaskJob.fetch(found["location"].removeprefix("/jobs/"), connection=connection, serializer=JSONSerializer)
        assert job.latest_result().return_value == {"invoices": 1234}
        assert job.kwargs["year"] == 2026 and job.kwargs["month"] == 11


def test_word_count_retries_a_server_error_through_the_worker(client: FlaskClient, peer: HttpPeer, worker):
    url = peer.script("/flaky", Answer(503), Answer(200, PAGE))
    job = wait_until_ended(client, enqueue(client, "web.word_count", url=url), timeout=30)
    assert job["status"] == "finished", job["error"]
    assert job["attempts"] == 2
    assert job["result"]["words"] == 13


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True),
        ("2606:2800:220:1:248:1893:25c8:1946", True),
        ("127.0.0.1", False),
        ("::ffff:127.0.0.1", False),
        ("64:ff9b::7f00:1", False),  # NAT64 of 127.0.0.1
        ("64:ff9b::c0a8:101", False),  # NAT64 of 192.168.1.1
        ("64:ff9b::5db8:d822", True),  # NAT64 of a public address
        ("2002:7f00:1::", False),  # 6to4 of 127.0.0.1
        ("2002:a9fe:a9fe::", False),  # 6to4 of 169.254.169.254, the cloud metadata endpoint
        ("2002:5db8:d822::", True),
    ],
)
def test_addresses_that_embed_a_private_ipv4_address_are_not_public(address: str, public: bool):
    import ipaddress

    from jobs.outbound import is_public

    assert is_public(ipaddress.ip_address(address)) is public
