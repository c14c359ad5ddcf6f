"""Files sent to tasks (an image to resize): kept in Redis for a while, referred to by id.

Web and worker may sit on different machines, so an uploaded file lives in Redis
with a TTL, never on local disk; a task receives the upload's id as an argument.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import uuid4

from redis import Redis

TTL = 24 * 3600


class UnknownUploadError(LookupError):
    """No upload with that id (never sent, or expired)."""


@dataclass(frozen=True)
class Upload:
    data: bytes
    content_type: str
    filename: str


def _key(upload_id: str) -> str:
    return f"offload:upload:{upload_id}"


def store(connection: Redis, upload: Upload, ttl: int = TTL) -> str:
    upload_id = uuid4().hex
    key = _key(upload_id)
    with connection.pipeline() as pipe:
        pipe.hset(key, mapping={"data": upload.data, "content_type": upload.content_type, "filename": upload.filename})
        pipe.expire(key, ttl)
        pipe.execute()
    return upload_id


def load(connection: Redis, upload_id: str) -> Upload:
    raw = connection.hgetall(_key(upload_id))
    if not raw:
        raise UnknownUploadError(f"no upload with id {upload_id!r} (uploads expire after {TTL // 3600} hours)")
    return Upload(raw[b"data"], raw[b"content_type"].decode(), raw[b"filename"].decode())
