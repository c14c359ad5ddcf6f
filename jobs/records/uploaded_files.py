"""Files sent to tasks (an image to resize): kept in Redis for a while, referred to by id.

Web and worker may sit on different machines, so an uploaded file lives in Redis
with a TTL, never on local disk; a task receives the upload's id as an argument.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import uuid4

from redis import Redis

from jobs.connection import binary, text

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


class UploadQuotaError(RuntimeError):
    """The uploader's quota is used up until some of its uploads expire or are deleted."""

    def __init__(self, quota: int, retry_after: int) -> None:
        super().__init__(f"uploads may hold at most {quota} bytes per credential; delete some or wait")
        self.retry_after = retry_after


def _quota_key(owner: str) -> str:
    return f"offload:upload-quota:{owner}"


# Count the bytes against the owner's quota and store the upload, or refuse: one atomic step.
# KEYS: upload, quota counter. ARGV: size, quota (0: none), ttl, then the hash's fields.
_STORE = """
local size, quota, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local used = tonumber(redis.call('GET', KEYS[2]) or '0')
if quota > 0 and used + size > quota then return {0, redis.call('TTL', KEYS[2])} end
redis.call('INCRBY', KEYS[2], size)
redis.call('EXPIRE', KEYS[2], ttl)
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
redis.call('EXPIRE', KEYS[1], ttl)
return {1, 0}
"""


def store(connection: Redis, upload: Upload, owner: str = "", quota: int = 0, ttl: int = TTL) -> str:
    """Keep ``upload`` for ``ttl`` seconds; its bytes count against ``owner``'s ``quota``."""
    upload_id = uuid4().hex
    fields: list[bytes | str | int] = [
        "data",
        upload.data,
        "content_type",
        upload.content_type,
        "filename",
        upload.filename,
    ]
    fields += ["owner", owner, "size", len(upload.data)]
    stored, wait = connection.eval(_STORE, 2, _key(upload_id), _quota_key(owner), len(upload.data), quota, ttl, *fields)
    if not stored:
        raise UploadQuotaError(quota, max(1, int(wait)))
    return upload_id


def delete(connection: Redis, upload_id: str, owner: str = "") -> bool:
    """Delete an upload of ``owner``'s, giving its bytes back to the quota; False if there is none."""
    key = _key(upload_id)
    found_owner, size = connection.hmget(key, ["owner", "size"])
    if found_owner is None or text(found_owner) != owner:
        return False
    with connection.pipeline() as pipe:
        pipe.delete(key)
        pipe.decrby(_quota_key(owner), int(size or 0))
        pipe.execute()
    return True


def load(connection: Redis, upload_id: str) -> Upload:
    raw = connection.hgetall(_key(upload_id))
    if not raw:
        raise UnknownUploadError(f"no upload with id {upload_id!r} (uploads expire after {TTL // 3600} hours)")
    return Upload(binary(raw[b"data"]), text(raw[b"content_type"]), text(raw[b"filename"]))
