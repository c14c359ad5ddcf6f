"""Every shell session of the README and docs/ runs, as written, against the Procfile's web and worker.

Each document's `sh` blocks with `curl` or `flask` commands run in one bash session, in order,
with what a reader supplies already set: ``TOKEN``, ``H`` and ``J``, ``ID`` (the job the last
answer named; at first one that finished) and ``PARENT``; ``localhost:5000`` is the test's
server and ``redis://…`` its Redis. Every HTTP answer must be one the API documents for a
well-formed call: no 5xx, no 401, no unknown job, task or path. A download waits for its job
to end first, as a reader would. The README's Python examples run in
tests/test_builtin_tasks.py; the Heroku session cannot run here (see docs/operations.md).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import requests
from PIL import Image

from tests.conftest import AUTH, BIN, ROOT, TOKEN, wait_for
from tests.doc_blocks import DOCUMENTS, code_blocks

# A curl that reports each answer's status on stderr, remembers the job it named as $ID,
# and waits for that job to end before downloading its artifact.
PREAMBLE = r"""
H="Authorization: Bearer $TOKEN"
J='Content-Type: application/json'
curl() {
  local url arg answer found
  for arg in "$@"; do case "$arg" in *:[0-9]*/*) url="$arg";; esac; done
  if [[ "$url" == */artifact ]]; then
    for _ in $(seq 450); do
      command curl -s -H "$H" "${url%/artifact}" | grep -qE '"status": ?"(finished|failed|stopped|canceled)"' && break
      sleep 0.2
    done
  fi
  answer=$(mktemp)
  command curl --max-time 20 -w '%{stderr}@@status %{http_code} %{url_effective}\n' "$@" | tee "$answer"
  found=$(grep -oE '"id": ?"[0-9a-f]{32}"' "$answer" | head -1 | grep -oE '[0-9a-f]{32}')
  if [ -n "$found" ]; then ID=$found; fi
  grep -q 'urn:offload:problem:unknown\|"title": *"Not Found"' "$answer" && echo "@@unknown $url" >&2
  rm -f "$answer"
}
"""


def sessions() -> list[tuple[str, str]]:
    found = []
    for path in DOCUMENTS:
        blocks = [
            block
            for block in code_blocks(path, "sh")
            if re.search(r"^\s*(\S+=\$\()?(curl|\.venv/bin/flask) ", block, re.M) and "heroku " not in block
        ]
        if blocks:
            found.append((str(path.relative_to(ROOT)), "\n".join(blocks)))
    return found


def as_run_here(script: str, base: str, redis_url: str) -> str:
    script = re.sub(r"^TOKEN=.*$", "", script, flags=re.M)  # the preamble sets it
    script = script.replace("localhost:5000", base.removeprefix("http://"))
    script = script.replace("5f0c…", "$ID").replace("redis://…", redis_url)
    return script.replace(".venv/bin/flask", str(BIN / "flask"))


@pytest.mark.parametrize(("document", "script"), sessions(), ids=[name for name, _ in sessions()])
def test_the_documents_shell_sessions_run_as_written(
    document: str, script: str, web_server: str, worker, redis_url: str, tmp_path: Path
):
    def create(body: dict) -> str:
        answer = requests.post(f"{web_server}/api/jobs", json=body, headers=AUTH, timeout=10)
        assert answer.status_code == 202, answer.text
        return answer.json()["id"]

    finished = create({"task": "demo.sleep", "args": {"seconds": 0.1, "steps": 2}})
    parent = create({"task": "demo.sleep", "args": {"seconds": 0.1, "steps": 1}})
    for job_id in (finished, parent):
        wait_for(
            lambda job_id=job_id: (
                requests.get(f"{web_server}/api/jobs/{job_id}", headers=AUTH, timeout=5).json()["status"] == "finished"
            ),
            message="the seed jobs to finish",
        )
    Image.new("RGB", (64, 48), "teal").save(tmp_path / "photo.jpg")  # what the thumbnail example uploads
    env = {
        "PATH": f"{BIN}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "PYTHONPATH": str(ROOT),
        "TOKEN": TOKEN,
        "ID": finished,
        "PARENT": parent,
        "OFFLOAD_TASK_MODULES": "tests.fixtures",
    }
    run = subprocess.run(
        ["bash", "-c", PREAMBLE + as_run_here(script, web_server, redis_url)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    statuses = re.findall(r"^@@status (\d{3}) (\S*)", run.stderr, re.M)
    assert statuses, run.stderr
    refused = [(int(code), url) for code, url in statuses if int(code) >= 500 or int(code) in (0, 401)]
    assert not refused, f"{refused}\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    assert "@@unknown" not in run.stderr, run.stderr[-3000:]
    assert "Traceback" not in run.stdout + run.stderr, run.stderr[-3000:]
    downloads = [code for code, url in statuses if url.endswith("/artifact")]
    assert all(code == "200" for code in downloads), statuses  # each example's job made its file


@pytest.mark.parametrize("document", [path for path in DOCUMENTS if code_blocks(path, "python")], ids=lambda p: p.name)
def test_every_python_example_is_python(document: Path):
    for block in code_blocks(document, "python"):
        compile(block, f"{document.name} example", "exec")
