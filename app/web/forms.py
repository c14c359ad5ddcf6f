"""A task's JSON Schema as form fields, and a submitted form back into the task's arguments.

The schema is the one the API validates against, so the form never lists a field
twice: every input here comes from ``Task.schema()``. Values are converted only as
far as HTML needs (numbers, checkboxes, one item per line, JSON); the task's own
pydantic model then validates them exactly as it validates an API call.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from werkzeug.datastructures import FileStorage

# Arguments named like this never exist (pydantic keeps them private), so options can't collide.
OPTION_PREFIX = "_"
_STRING_FORMATS = {"email": "email", "uri": "url", "password": "password"}


@dataclass
class FormField:
    """One input of a task form (or a group of them, for a nested object)."""

    name: str
    label: str
    kind: str  # text, textarea, email, url, password, integer, number, checkbox, select, lines, json, file, group
    required: bool = False
    default: Any = None
    help: str | None = None
    attrs: dict[str, str] = field(default_factory=dict)
    choices: list[str] = field(default_factory=list)
    item_kind: str | None = None
    children: list[FormField] = field(default_factory=list)

    @property
    def hint(self) -> str | None:
        """What the server will check, in words, beside what the browser checks itself."""
        parts = [self.help] if self.help else []
        if self.kind == "lines":
            parts.append(f"one {self.item_kind or 'value'} per line")
        if self.kind == "json":
            parts.append("JSON")
        if self.default is not None and self.kind not in ("checkbox", "group", "file"):
            parts.append(f"default {json.dumps(self.default)}")
        return "; ".join(parts) or None

    def display_default(self) -> str:
        if self.default is None:
            return ""
        if self.kind == "lines" and isinstance(self.default, list):
            return "\n".join(str(item) for item in self.default)
        if self.kind == "json":
            return json.dumps(self.default, indent=2)
        return str(self.default)


def fields_of(schema: Mapping[str, Any], prefix: str = "", defs: Mapping[str, Any] | None = None) -> list[FormField]:
    """The form fields for an object schema, in the schema's order."""
    defs = schema.get("$defs", {}) if defs is None else defs
    required = set(schema.get("required", []))
    return [
        _field(f"{prefix}{name}", name, _resolved(spec, defs), name in required, defs)
        for name, spec in schema.get("properties", {}).items()
    ]


def _resolved(spec: Mapping[str, Any], defs: Mapping[str, Any]) -> dict[str, Any]:
    """The schema with a local ``$ref`` (pydantic's nested models) replaced by its definition."""
    if "$ref" not in spec:
        return dict(spec)
    target = defs.get(str(spec["$ref"]).rsplit("/", 1)[-1], {})
    return {**target, **{key: value for key, value in spec.items() if key != "$ref"}}


_ACRONYMS = {"url": "URL", "html": "HTML", "id": "ID", "csv": "CSV", "api": "API", "json": "JSON", "smtp": "SMTP"}


def plain_label(key: str) -> str:
    """``html_body`` → ``HTML body``: words, with the acronyms people write in capitals."""
    words = [_ACRONYMS.get(word, word) for word in key.split("_") if word]
    if words and words[0] == words[0].lower():
        words[0] = words[0].capitalize()
    return " ".join(words)


def _label(key: str, title: str | None) -> str:
    """The schema's title when someone wrote one; pydantic's own ("Max Attempts", "Url") reads worse."""
    return title if title and title != key.replace("_", " ").title() else plain_label(key)


def _field(name: str, key: str, spec: Mapping[str, Any], required: bool, defs: Mapping[str, Any]) -> FormField:
    options = [_resolved(option, defs) for option in spec.get("anyOf", []) if option.get("type") != "null"]
    inner = {**options[0], **{k: v for k, v in spec.items() if k != "anyOf"}} if len(options) == 1 else spec
    made = FormField(
        name=name,
        label=_label(key, spec.get("title")),
        kind="json",
        required=required,
        default=spec.get("default"),
        help=spec.get("description"),
    )
    kind = inner.get("type") if len(options) <= 1 else None
    if "x-upload" in inner:
        made.kind, made.attrs = "file", {"accept": str(inner["x-upload"])}
    elif "enum" in inner:
        made.kind, made.choices = "select", [str(choice) for choice in inner["enum"]]
    elif kind == "string":
        made.kind = _STRING_FORMATS.get(inner.get("format", ""), "text")
        if made.kind == "text" and not {"maxLength", "pattern"} & inner.keys():
            made.kind = "textarea"
        made.attrs = _bounds(inner, {"minLength": "minlength", "maxLength": "maxlength", "pattern": "pattern"})
    elif kind in ("integer", "number"):
        made.kind = kind
        made.attrs = {"step": "1" if kind == "integer" else "any"}
        made.attrs |= _bounds(inner, {"minimum": "min", "maximum": "max", "exclusiveMinimum": "min"})
    elif kind == "boolean":
        made.kind = "checkbox"
    elif kind == "array" and inner.get("items", {}).get("type") in ("string", "integer", "number"):
        made.kind, made.item_kind = "lines", inner["items"]["type"]
    elif kind == "object" and inner.get("properties"):
        made.kind, made.children = "group", fields_of(inner, prefix=f"{name}.", defs=defs)
    return made


def _bounds(spec: Mapping[str, Any], names: Mapping[str, str]) -> dict[str, str]:
    return {attr: str(spec[key]) for key, attr in names.items() if key in spec}


@dataclass
class Submission:
    """A form turned into arguments, with the errors found before validation."""

    args: dict[str, Any]
    errors: dict[str, list[str]]


def args_from_form(
    fields: list[FormField],
    form: Mapping[str, str],
    files: Mapping[str, FileStorage],
    store_upload: Callable[[FileStorage], str],
) -> Submission:
    """The task's arguments from a submitted form; empty optional inputs fall back to defaults."""
    submission = Submission({}, {})
    for item in fields:
        value = _value(item, form, files, store_upload, submission.errors)
        if value is not _MISSING:
            submission.args[item.name.rsplit(".", 1)[-1]] = value
    return submission


_MISSING = object()


def _value(
    item: FormField,
    form: Mapping[str, str],
    files: Mapping[str, FileStorage],
    store_upload: Callable[[FileStorage], str],
    errors: dict[str, list[str]],
) -> Any:
    if item.kind == "group":
        nested = args_from_form(item.children, form, files, store_upload)
        errors.update(nested.errors)
        return nested.args if nested.args or item.required else _MISSING
    if item.kind == "checkbox":
        return item.name in form
    if item.kind == "file":
        sent = files.get(item.name)
        if sent is None or not sent.filename:
            return _MISSING
        accept = item.attrs.get("accept", "")
        if accept.endswith("/*") and not (sent.mimetype or "").startswith(accept[:-1]):
            errors.setdefault(item.name, []).append(f"choose a file of type {accept} (this one is {sent.mimetype})")
            return _MISSING
        return store_upload(sent)
    raw = form.get(item.name, "")
    if raw.strip() == "":
        return _MISSING
    if item.kind == "lines":
        return [_scalar(line.strip(), item.item_kind) for line in raw.splitlines() if line.strip()]
    if item.kind == "json":
        try:
            return json.loads(raw)
        except json.JSONDecodeError as error:
            errors.setdefault(item.name, []).append(f"not valid JSON: {error.msg} (line {error.lineno})")
            return _MISSING
    return _scalar(raw.strip() if item.kind != "textarea" else raw, item.kind)


def _scalar(raw: str, kind: str | None) -> Any:
    """A number where one is expected; anything unreadable goes through as typed, for the schema to name."""
    try:
        if kind == "integer":
            return int(raw)
        if kind == "number":
            return float(raw)
    except ValueError:
        return raw
    return raw


def field_errors(problem_errors: list[dict[str, Any]], fields: list[FormField]) -> dict[str, list[str]]:
    """The API's 422 errors placed on the form's inputs by their ``loc``; the rest under ``""``."""
    names = {name for item in fields for name in _names(item)}
    placed: dict[str, list[str]] = {}
    for error in problem_errors:
        loc = [str(part) for part in error.get("loc", [])]
        message = error.get("msg", "is invalid")
        target = ""
        if loc[:1] == ["args"]:
            path = loc[1:]
            for end in range(len(path), 0, -1):
                candidate = ".".join(path[:end])
                if candidate in names:
                    target = candidate
                    rest = path[end:]
                    if rest and rest[0].isdigit():
                        message = f"item {int(rest[0]) + 1}: {message}"
                    break
        elif loc and loc[0] in ("queue", "delay", "at", "timeout"):
            target = OPTION_PREFIX + loc[0]
        placed.setdefault(target, []).append(message)
    return placed


def _names(item: FormField) -> list[str]:
    return [item.name, *(name for child in item.children for name in _names(child))]
