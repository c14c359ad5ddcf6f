"""Who did what to which jobs: every operator action, from the API, the pages, the CLI and /rq.

One Redis stream, newest last, trimmed by age (``AUDIT_RETENTION_DAYS``) as entries are added.
An entry names the actor by a fingerprint of its credential (never the secret), the action,
the job or the filter it acted on, how many jobs it changed and skipped, when, and from where.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from redis import Redis

from jobs.connection import text

KEY = "offload:audit"


@dataclass(frozen=True)
class Entry:
    actor: str  # "token 3f2a9c1b7d0e", "session 9a1b…", "cli alice"
    action: str  # "retry", "cancel", "delete", "rq: requeue", …
    via: str  # "api", "page", "cli", "rq"
    source: str = ""  # the client's address, or the host a CLI ran on
    job: str | None = None  # one job, or
    filters: dict[str, Any] = field(default_factory=dict)  # the filter a bulk action matched
    done: int = 0
    skipped: int = 0
    at: float = 0.0
    id: str = ""


def record(redis: Redis, entry: Entry, retention_days: int) -> str:
    """Append ``entry`` (its time is now) and drop what is older than the retention."""
    now_ms = int(time.time() * 1000)
    body = {key: value for key, value in asdict(entry).items() if key not in ("at", "id")}
    oldest = now_ms - retention_days * 86_400_000
    added = redis.xadd(KEY, {"entry": json.dumps(body)}, minid=oldest, approximate=False)
    return text(added)


def read(redis: Redis, limit: int, before: str | None = None) -> tuple[list[Entry], str | None]:
    """Newest first, ``limit`` at a time; the next page starts before the returned id."""
    if before is not None and before.replace("-", "").strip("0") == "":
        return [], None  # nothing comes before the first possible id
    found: Any = redis.xrevrange(KEY, max=f"({before}" if before else "+", min="-", count=limit + 1)
    entries = []
    for raw_id, fields in found[:limit]:
        entry_id = text(raw_id)
        body = json.loads(fields[b"entry"])
        entries.append(Entry(**body, at=int(entry_id.split("-", 1)[0]) / 1000, id=entry_id))
    return entries, entries[-1].id if len(found) > limit else None
