"""Strict JSON request bodies: the parts of JSON that stock parsing lets through, refused."""

from __future__ import annotations

import json
from typing import Any

from flask import current_app, request

from app.problems import ApiProblem


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _depth(value: Any) -> int:
    """How deeply ``value`` nests; raises ValueError for text that is not valid Unicode."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, str):
            _valid_text(item)
        elif isinstance(item, dict | list):
            deepest = max(deepest, level)
            if isinstance(item, dict):
                for key in item:
                    _valid_text(key)
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, level + 1) for child in children)
    return deepest


def _valid_text(text: str) -> None:
    # JSON's \ud800 escapes decode to lone surrogates, which no UTF-8 store (Redis included) can hold.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        bad = text[error.start : error.end].encode("unicode_escape").decode()
        raise ValueError(f"the text {bad!r} is a lone surrogate, not a Unicode character") from None


def parse_json(data: bytes, max_depth: int) -> Any:
    """Parse ``data`` as strict JSON or raise a 400 ``ApiProblem`` that says what is wrong."""
    try:
        text = data.decode("utf-8")
        value = json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constants)
    except UnicodeDecodeError:
        raise ApiProblem(400, "Malformed JSON", "the body is not UTF-8", type="urn:offload:problem:json") from None
    except RecursionError:
        raise ApiProblem(
            400, "Malformed JSON", "the body is nested too deeply", type="urn:offload:problem:json"
        ) from None
    except ValueError as error:
        raise ApiProblem(400, "Malformed JSON", str(error), type="urn:offload:problem:json") from None
    try:
        depth = _depth(value)
    except ValueError as error:
        raise ApiProblem(400, "Malformed JSON", str(error), type="urn:offload:problem:json") from None
    if depth > max_depth:
        raise ApiProblem(
            400, "Malformed JSON", f"the body is nested deeper than {max_depth} levels", type="urn:offload:problem:json"
        )
    return value


def json_body() -> Any:
    """The current request's body as strict JSON; 415 unless it is declared JSON."""
    mimetype = request.mimetype or ""
    if mimetype != "application/json" and not mimetype.endswith("+json"):
        raise ApiProblem(
            415,
            "Unsupported Media Type",
            "send the body as application/json",
            type="urn:offload:problem:media-type",
        )
    return parse_json(request.get_data(cache=True), current_app.config["JSON_MAX_DEPTH"])
