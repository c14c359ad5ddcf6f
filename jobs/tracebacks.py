"""What a traceback says: the type and message of the exception it ends with."""

from __future__ import annotations

import re
from typing import Any

_EXCEPTION_LINE = re.compile(r"^(?P<type>[A-Za-z_][\w.]*)(?::\s?(?P<message>.*))?$")


def error_from_traceback(exc_string: str | None) -> dict[str, Any] | None:
    """Type and message of the exception a traceback ends with.

    The exception's header is the first unindented line after the frames of the last
    ``Traceback`` block; the message runs from there to the end (it may span lines).
    """
    if not exc_string:
        return None
    lines = exc_string.rstrip().splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("Traceback (most recent call last)")]
    index = starts[-1] + 1 if starts else 0
    while index < len(lines) - 1 and (not lines[index] or lines[index][0].isspace()):
        index += 1
    found = _EXCEPTION_LINE.match(lines[index]) if lines else None
    if found is None:
        return {"type": "Error", "message": "\n".join(lines[index:]), "traceback": exc_string}
    message = "\n".join([found.group("message") or "", *lines[index + 1 :]]).strip()
    return {"type": found.group("type").rsplit(".", 1)[-1], "message": message, "traceback": exc_string}
