"""Workers on separate "machines" (network namespaces reaching Redis over a virtual
network): killing one machine mid-job hands its job to another."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from scripts.embedded_redis import EmbeddedRedis
from scripts.procfile import procfile_command
from tests.conftest import process_env, wait_for

pytestmark = pytest.mark.slow


def _netns_usable() -> bool:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        return False
    name = f"offload-probe-{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", name], capture_output=True).returncode == 0
    if made:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)
    return made


class Machine:
    """A network namespace linked to the host by a veth pair: its own address, its own processes."""

    def __init__(self, index: int) -> None:
        tag = uuid.uuid4().hex[:6]
        self.name = f"off{tag}{index}"
        self.host_if, self.peer_if = f"oh{tag}{index}", f"op{tag}{index}"
        self.host_ip, self.ip = f"10.231.{index}.1", f"10.231.{index}.2"

    def create(self) -> None:
        for command in (
            f"ip netns add {self.name}",
            f"ip link add {self.host_if} type veth peer name {self.peer_if}",
            f"ip link set {self.peer_if} netns {self.name}",
            f"ip addr add {self.host_ip}/30 dev {self.host_if}",
            f"ip link set {self.host_if} up",
            f"ip netns exec {self.name} ip addr add {self.ip}/30 dev {self.peer_if}",
            f"ip netns exec {self.name} ip link set {self.peer_if} up",
            f"ip netns exec {self.name} ip link set lo up",
        ):
            subprocess.run(command.split(), check=True, capture_output=True)

    def pids(self) -> list[int]:
        found = subprocess.run(["ip", "netns", "pids", self.name], capture_output=True, text=True).stdout
        return [int(pid) for pid in found.split()]

    def crash(self) -> None:
        """Power loss: every process of the machine dies at once."""
        for pid in self.pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def destroy(self) -> None:
        self.crash()
        subprocess.run(["ip", "link", "del", self.host_if], capture_output=True)
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)


@pytest.fixture
def machines() -> Iterator[list[Machine]]:
    if not _netns_usable():
        pytest.skip("network namespaces need root and iproute2")
    made = [Machine(index) for index in (1, 2)]
    try:
        for machine in made:
            machine.create()
        yield made
    finally:
        for machine in made:
            machine.destroy()


@pytest.fixture
def shared_redis(tmp_path: Path, machines: list[Machine]) -> Iterator[EmbeddedRedis]:
    binds = " ".join(["127.0.0.1", *(machine.host_ip for machine in machines)])
    server = EmbeddedRedis(tmp_path / "valkey", persistent=False, bind=binds, password=uuid.uuid4().hex)
    server.start()
    yield server
    server.stop()


def start_worker_on(machine: Machine, server: EmbeddedRedis, log: Path) -> subprocess.Popen[bytes]:
    settings, argv = procfile_command("worker")
    env = process_env(server.url_for(machine.host_ip), **settings)
    with log.open("wb") as output:
        return subprocess.Popen(
            ["ip", "netns", "exec", machine.name, *argv],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def test_a_job_on_a_crashed_machine_is_recovered_by_another(
    machines: list[Machine], shared_redis: EmbeddedRedis, tmp_path: Path
):
    from app import create_app
    from tests.conftest import AUTH, TOKEN

    connection = redis.Redis.from_url(shared_redis.url)
    client = create_app({"REDIS_URL": shared_redis.url, "API_TOKENS": TOKEN}).test_client()
    first, second = machines
    workers = [start_worker_on(first, shared_redis, tmp_path / "worker-a.log")]
    wait_for(lambda: connection.scard("rq:workers") == 1, message="machine A's worker to register over the veth")

    job_id = client.post(
        "/api/jobs", json={"task": "tests.fixtures.run_twice", "args": {"marker_dir": str(tmp_path)}}, headers=AUTH
    ).get_json()["id"]
    wait_for((tmp_path / "first-attempt").exists, message="the job to start on machine A")
    horse = int((tmp_path / "first-attempt").read_text())
    assert horse in first.pids()
    assert client.get(f"/api/jobs/{job_id}", headers=AUTH).get_json()["status"] == "started"

    workers.append(start_worker_on(second, shared_redis, tmp_path / "worker-b.log"))
    wait_for(lambda: connection.scard("rq:workers") == 2, message="machine B's worker to register")
    first.crash()

    done = wait_for(
        lambda: (doc := client.get(f"/api/jobs/{job_id}", headers=AUTH).get_json())["status"] == "finished" and doc,
        timeout=90,
        interval=0.5,
        message="machine B to recover and finish the job",
    )
    assert done["result"]["pid"] != horse
    assert (done["attempts"], done["recoveries"]) == (2, 1)  # run again by recovery, its retry unspent
    second.crash()
    for worker in workers:
        worker.wait(10)
    connection.close()
