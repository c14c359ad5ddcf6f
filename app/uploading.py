"""Accept and forget uploads: the one place the API and the pages store files through.

An upload counts against Redis's memory headroom like a job does (a 1 MiB upload at a time
filled a ``maxmemory`` Redis, after which every POST answered 503 for a day), and against a
quota per credential; its owner may delete it.
"""

from __future__ import annotations

import hashlib

from flask import current_app

from app import backpressure
from app.auth import credential_scope
from app.problems import ApiProblem
from app.redis_client import get_redis
from jobs.records import uploaded_files


def _owner() -> str:
    return hashlib.sha256(credential_scope().encode()).hexdigest()[:32]


def accept(upload: uploaded_files.Upload) -> str:
    """Store ``upload`` for its uploader: ``RefusedError`` when Redis is nearly full,
    ``UploadQuotaError`` over the quota."""
    backpressure.check_memory("uploads")
    return uploaded_files.store(get_redis(), upload, owner=_owner(), quota=current_app.config["UPLOAD_QUOTA_BYTES"])


def forget(upload_id: str) -> None:
    """Delete one of the caller's uploads, or a 404."""
    if not uploaded_files.delete(get_redis(), upload_id, owner=_owner()):
        raise ApiProblem(
            404,
            "Unknown upload",
            f"no upload of yours has the id {upload_id!r}",
            type="urn:offload:problem:unknown-upload",
        )
