"""Celery, Dramatiq and Huey draining the same no-op jobs, from a virtualenv of their own.

``--peers`` creates ``.bench-peers`` from ``peers-requirements.txt`` once. Each peer's task
increments a Redis counter so that the benchmark sees when the last one is done (one
Redis command more per job than Offload's no-op pays). For pickup, each peer's ``stamp`` task
pushes how long it waited since it was sent (``time.time()`` on one machine, the clock both
ends read), one job at a time with the worker idle.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from scripts.bench.common import Bench
from scripts.procfile import ROOT

VENV = ROOT / ".bench-peers"
REQUIREMENTS = Path(__file__).with_name("peers-requirements.txt")
DONE_KEY = "bench:done"

_CELERY = """
import os
import time
import redis
from celery import Celery

app = Celery("peer", broker=os.environ["REDIS_URL"])
app.conf.update(task_serializer="json", accept_content=["json"], task_ignore_result=True)
done = redis.Redis.from_url(os.environ["REDIS_URL"])


@app.task
def noop():
    done.incr("bench:done")


@app.task
def stamp(sent):
    done.rpush("bench:pickup", time.time() - sent)


def fill(count):
    for _ in range(count):
        noop.delay()


def send_stamp():
    stamp.delay(time.time())
"""

_DRAMATIQ = """
import os
import time
import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker

dramatiq.set_broker(RedisBroker(url=os.environ["REDIS_URL"]))
done = redis.Redis.from_url(os.environ["REDIS_URL"])


@dramatiq.actor
def noop():
    done.incr("bench:done")


@dramatiq.actor
def stamp(sent):
    done.rpush("bench:pickup", time.time() - sent)


def fill(count):
    for _ in range(count):
        noop.send()


def send_stamp():
    stamp.send(time.time())
"""

_HUEY = """
import os
import time
import redis
from huey import RedisHuey

huey = RedisHuey("peer", url=os.environ["REDIS_URL"], results=False)
done = redis.Redis.from_url(os.environ["REDIS_URL"])


@huey.task()
def noop():
    done.incr("bench:done")


@huey.task()
def stamp(sent):
    done.rpush("bench:pickup", time.time() - sent)


def fill(count):
    for _ in range(count):
        noop()


def send_stamp():
    stamp(time.time())
"""


@dataclass(frozen=True)
class Peer:
    name: str
    title: str
    source: str
    worker: tuple[str, ...]

    def directory(self, bench: Bench) -> Path:
        path = bench.scratch / "peers"
        path.mkdir(exist_ok=True)
        (path / f"peer_{self.name}.py").write_text(self.source)
        return path

    def env(self, bench: Bench) -> dict[str, str]:
        return bench.env(PYTHONPATH=str(self.directory(bench)))

    def fill(self, bench: Bench, jobs: int) -> None:
        code = f"import peer_{self.name} as peer; peer.fill({jobs})"
        subprocess.run([str(VENV / "bin" / "python"), "-c", code], env=self.env(bench), check=True, timeout=600)

    def pickup_waits(self, bench: Bench, jobs: int) -> list[float]:
        """Milliseconds from send to start, ``jobs`` times, the worker idle in between (the peer's
        worker must be running)."""
        code = (
            f"import time, redis, os, peer_{self.name} as peer\n"
            "done = redis.Redis.from_url(os.environ['REDIS_URL'])\n"
            f"for _ in range({jobs}):\n"
            "    before = done.llen('bench:pickup')\n"
            "    peer.send_stamp()\n"
            "    deadline = time.monotonic() + 30\n"
            "    while done.llen('bench:pickup') == before and time.monotonic() < deadline:\n"
            "        time.sleep(0.0005)\n"
            "    time.sleep(0.02)\n"
            "print(','.join(str(float(x) * 1000) for x in done.lrange('bench:pickup', 0, -1)))\n"
        )
        python = str(VENV / "bin" / "python")
        run = subprocess.run([python, "-c", code], env=self.env(bench), check=True, timeout=600, capture_output=True)
        return [float(value) for value in run.stdout.decode().strip().split(",") if value]

    def worker_argv(self, processes: int) -> list[str]:
        return [str(VENV / "bin" / self.worker[0]), *(part.format(p=processes) for part in self.worker[1:])]


CELERY = Peer(
    "celery",
    "Celery 5.7 prefork",
    _CELERY,
    ("celery", "-A", "peer_celery", "worker", "-c", "{p}", "-P", "prefork", "--without-gossip", "--without-mingle",
     "--without-heartbeat", "-l", "WARNING"),
)  # fmt: skip
DRAMATIQ = Peer(
    "dramatiq", "Dramatiq 2.2 (8 threads each)", _DRAMATIQ, ("dramatiq", "peer_dramatiq", "-p", "{p}", "-t", "8")
)
HUEY = Peer(
    "huey", "Huey 3.5 (process workers)", _HUEY, ("huey_consumer", "peer_huey.huey", "-w", "{p}", "-k", "process", "-q")
)


def install() -> list[Peer]:
    """Create the peers' virtualenv if needed; the peers it holds."""
    if not (VENV / "bin" / "huey_consumer").exists():
        print(f"bench: installing Celery, Dramatiq and Huey into {VENV.name}/ (once)", flush=True)
        if not (VENV / "bin" / "pip").exists():
            subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(VENV / "bin" / "pip"), "install", "-q", "-r", str(REQUIREMENTS)], check=True)
    return [CELERY, DRAMATIQ, HUEY]
