"""POST /api/uploads: send a file for a task (multipart, or JSON with base64), get its id."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from flask import Blueprint, current_app, request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app import rate_limits, uploading
from app.json_body import json_body
from app.problems import ApiProblem, field_problem, invalid_arguments
from jobs.records import uploaded_files

bp = Blueprint("uploads", __name__)


class Base64Upload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    data: str = Field(description="The file's bytes, base64-encoded")
    filename: str = Field(default="upload.bin", max_length=200)
    content_type: str = Field(default="application/octet-stream", max_length=200)


@bp.post("/uploads")
def create_upload() -> tuple[dict[str, Any], int]:
    rate_limits.count_upload()
    request.max_content_length = current_app.config["UPLOAD_MAX_BYTES"] * 4 // 3 + 4096
    if request.mimetype == "multipart/form-data":
        upload = _from_multipart()
    else:
        upload = _from_json()
    if not upload.data:
        raise _problem(["file"], "the file is empty")
    if len(upload.data) > current_app.config["UPLOAD_MAX_BYTES"]:
        raise ApiProblem(
            413, "Upload too large", f"uploads hold at most {current_app.config['UPLOAD_MAX_BYTES']} bytes"
        )
    upload_id = uploading.accept(upload)
    return {
        "id": upload_id,
        "filename": upload.filename,
        "content_type": upload.content_type,
        "size": len(upload.data),
        "expires_in": uploaded_files.TTL,
    }, 201


@bp.delete("/uploads/<upload_id>")
def delete_upload(upload_id: str) -> tuple[str, int]:
    """Forget an upload before it expires (its bytes go back to the uploader's quota)."""
    uploading.forget(upload_id)
    return "", 204


def _from_multipart() -> uploaded_files.Upload:
    sent = request.files.get("file")
    if sent is None:
        raise _problem(["file"], "send the file in a form field named 'file'")
    return uploaded_files.Upload(
        sent.read(), sent.mimetype or "application/octet-stream", sent.filename or "upload.bin"
    )


def _from_json() -> uploaded_files.Upload:
    try:
        body = Base64Upload.model_validate(json_body())
    except ValidationError as error:
        raise invalid_arguments(error) from None
    try:
        data = base64.b64decode(body.data, validate=True)
    except (binascii.Error, ValueError):
        raise _problem(["data"], "not valid base64") from None
    return uploaded_files.Upload(data, body.content_type, body.filename)


def _problem(loc: list[str], msg: str) -> ApiProblem:
    return field_problem(loc, msg, title="Invalid upload")
