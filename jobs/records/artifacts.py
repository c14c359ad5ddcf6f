"""Files a task produces (a thumbnail, a report): kept in Redis beside the job.

Web and worker processes may run on different machines with no shared disk, so an
artifact lives in Redis with the job's TTL and a size cap, never on local disk.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis import Redis
from redis.client import Pipeline

from jobs.connection import binary, text
from jobs.records.job_events import artifact_key

MAX_BYTES = 16 * 1024 * 1024


class ArtifactTooLargeError(ValueError):
    """The task produced a file larger than Offload keeps."""


@dataclass(frozen=True)
class Artifact:
    """Return one of these from a task to hand back a file instead of a JSON value."""

    data: bytes
    content_type: str = "application/octet-stream"
    filename: str = "artifact.bin"

    def describe(self) -> dict[str, object]:
        return {"filename": self.filename, "content_type": self.content_type, "size": len(self.data)}


def store(pipe: Pipeline | Redis, job_id: str, artifact: Artifact, ttl: int, max_bytes: int = MAX_BYTES) -> None:
    if len(artifact.data) > max_bytes:
        raise ArtifactTooLargeError(f"artifact of {len(artifact.data)} bytes exceeds the cap of {max_bytes} bytes")
    key = artifact_key(job_id)
    pipe.hset(
        key, mapping={"data": artifact.data, "content_type": artifact.content_type, "filename": artifact.filename}
    )
    if ttl > 0:
        pipe.expire(key, ttl)


def load(connection: Redis, job_id: str) -> Artifact | None:
    raw = connection.hgetall(artifact_key(job_id))
    if not raw:
        return None
    return Artifact(binary(raw[b"data"]), text(raw[b"content_type"]), text(raw[b"filename"]))
