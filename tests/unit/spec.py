"""Hold requests and answers against X's own OpenAPI document (tests/data/x-openapi.json, 2.167).

The client and the sandbox share no models; both answer to X's spec instead. OpenAPI 3.0 schemas
are close to JSON Schema draft 4, so bodies are checked with a Draft4Validator whose
`#/components/...` references resolve inside the spec document through a referencing Registry.

The spec also generates answers: `minimal_body` (only what the schema requires, recursively) and
`maximal_body` (every documented property), so the tests of what the client accepts follow the
spec when it changes rather than hand-written examples.
"""

from __future__ import annotations

import base64
import functools
import itertools
import json
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path
from typing import Any

import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

SPEC_PATH = Path(__file__).resolve().parents[1] / "data" / "x-openapi.json"
SPEC_URI = "urn:x-openapi"


@functools.cache
def spec() -> dict[str, Any]:
    return json.loads(SPEC_PATH.read_text(encoding="utf-8"))


@functools.cache
def _registry() -> Registry:
    return Registry().with_resource(SPEC_URI, Resource(contents=spec(), specification=DRAFT4))


def _validator(schema: dict[str, Any]) -> jsonschema.Draft4Validator:
    # Anchor the schema in the spec document so its `#/components/...` refs resolve there.
    anchored = {"$ref": SPEC_URI + schema["$ref"]} if set(schema) == {"$ref"} else schema
    return jsonschema.Draft4Validator(anchored, registry=_registry())


def resolve(node: dict[str, Any]) -> dict[str, Any]:
    """Follow `$ref`s (within the spec) until a schema or parameter that is not one."""
    while "$ref" in node:
        target: Any = spec()
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def operation(method: str, path: str) -> dict[str, Any]:
    return spec()["paths"][path][method.lower()]


def request_body_schema(method: str, path: str, content_type: str = "application/json") -> dict[str, Any]:
    """The requestBody schema X documents for `method path` (path as templated in the spec)."""
    return operation(method, path)["requestBody"]["content"][content_type]["schema"]


def validate_request_body(method: str, path: str, body: Any, content_type: str = "application/json") -> None:
    """Raise jsonschema.ValidationError unless `body` matches the spec's requestBody schema.

    Form fields travel as text: a multipart field whose schema is a number is read as one, as
    OpenAPI's multipart encoding does, before the body is checked.
    """
    schema = request_body_schema(method, path, content_type)
    if content_type == "multipart/form-data" and isinstance(body, dict):
        properties = resolve(schema).get("properties", {})
        body = {name: _from_text(value, resolve(properties.get(name, {}))) for name, value in body.items()}
    _validator(schema).validate(body)


def _from_text(value: Any, schema: Mapping[str, Any]) -> Any:
    if not isinstance(value, str):
        return value
    try:
        if schema.get("type") == "integer":
            return int(value)
        if schema.get("type") == "number":
            return float(value)
    except ValueError:
        return value
    if schema.get("type") == "boolean" and value in ("true", "false"):
        return value == "true"
    return value


def validate_query(method: str, path: str, params: Mapping[str, str]) -> None:
    """Raise jsonschema.ValidationError unless every query parameter is one the spec documents, valid.

    Arrays are `style: form, explode: false` in X's spec: one comma-separated value.
    """
    documented = {
        parameter["name"]: parameter
        for parameter in map(resolve, operation(method, path).get("parameters", []))
        if parameter.get("in") == "query"
    }
    for name, raw in params.items():
        if name not in documented:
            raise jsonschema.ValidationError(f"{method} {path} documents no query parameter {name!r}")
        schema = resolve(documented[name]["schema"])
        if schema.get("type") == "array":
            value: Any = [_from_text(item, resolve(schema["items"])) for item in raw.split(",")]
        else:
            value = _from_text(raw, schema)
        _validator(schema).validate(value)


def response_schema(method: str, path: str) -> dict[str, Any]:
    """The schema of X's JSON success answer to `method path` (its one 2xx response)."""
    responses = operation(method, path)["responses"]
    (success,) = [answer for status, answer in responses.items() if status.startswith("2")]
    return success["content"]["application/json"]["schema"]


def success_status(method: str, path: str) -> int:
    (status,) = [int(status) for status in operation(method, path)["responses"] if status.startswith("2")]
    return status


def validate_response_body(method: str, path: str, body: Any) -> None:
    _validator(response_schema(method, path)).validate(body)


# --- answers generated from the spec ------------------------------------------------------------


def minimal_body(
    method: str, path: str, keep: Collection[str] = (), overrides: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Only what X's schema requires, recursively; plus the optional properties at the paths in `keep`.

    Paths are dotted from the body, with `[]` for an array's items: "data", "data[].id".
    """
    return _Generator(full=False, keep=frozenset(keep), overrides=dict(overrides or {})).body(method, path)


def maximal_body(method: str, path: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Every property X's schema documents, arrays with one item; a schema met again inside itself stops there."""
    return _Generator(full=True, keep=frozenset(), overrides=dict(overrides or {})).body(method, path)


class _Generator:
    def __init__(self, *, full: bool, keep: frozenset[str], overrides: dict[str, Any]) -> None:
        self.full = full
        self.keep = keep
        self.overrides = overrides
        self._ids: Iterator[int] = itertools.count(1_600_000_000_000_000_001)

    def body(self, method: str, path: str) -> dict[str, Any]:
        value = self.value(response_schema(method, path), "", "", ())
        assert isinstance(value, dict)
        return value

    def value(self, node: dict[str, Any], where: str, name: str, seen: tuple[str, ...]) -> Any:
        if where in self.overrides:
            return self.overrides[where]
        if "$ref" in node:
            seen = (*seen, node["$ref"])
        schema = resolve(node)
        if "allOf" in schema:
            merged: dict[str, Any] = {"type": "object", "properties": {}, "required": []}
            for part in map(resolve, schema["allOf"]):
                merged["properties"].update(part.get("properties", {}))
                merged["required"] += part.get("required", [])
            schema = merged
        for combinator in ("oneOf", "anyOf"):
            if combinator in schema:
                # The first alternative: for a discriminated union its own `type` enum keeps it valid.
                return self.value(schema[combinator][0], where, name, seen)
        kind = schema.get("type") or ("object" if "properties" in schema else "string")
        if kind == "object":
            return self._object(schema, where, seen)
        if kind == "array":
            count = max(schema.get("minItems", 0), 1 if self.full or f"{where}[]" in self.keep else 0)
            return [self.value(schema["items"], f"{where}[]", name, seen) for _ in range(count)]
        return self._scalar(schema, kind, name)

    def _object(self, schema: dict[str, Any], where: str, seen: tuple[str, ...]) -> dict[str, Any]:
        required = set(schema.get("required", []))
        out: dict[str, Any] = {}
        for prop, sub in schema.get("properties", {}).items():
            at = f"{where}.{prop}" if where else prop
            wanted = prop in required or at in self.keep or at in self.overrides
            if self.full and not wanted and sub.get("$ref") in seen:
                continue  # a recursive schema (a post quoting posts) ends at its first repeat
            if wanted or self.full:
                out[prop] = self.value(sub, at, prop, seen)
        return out

    def _scalar(self, schema: dict[str, Any], kind: str, name: str) -> Any:
        if "enum" in schema:
            return schema["enum"][0]
        if kind == "boolean":
            return True
        if kind == "integer":
            return max(schema.get("minimum", 1), 1)
        if kind == "number":
            return float(max(schema.get("minimum", 1), 1))
        fmt = schema.get("format")
        if fmt == "date-time":
            return "2026-08-20T12:00:00.000Z"
        if fmt in ("uri", "url"):
            return "https://example.com/x"
        if fmt in ("byte", "binary"):
            return base64.b64encode(b"x").decode()
        # X's ids are strings of digits (snowflakes); ids named without a pattern get one too.
        if schema.get("pattern") == "^[0-9]{1,19}$" or name == "id" or name.endswith(("_id", "_ids")):
            return str(next(self._ids))
        minimum = schema.get("minLength", 1)
        return f"{name or 'value'}-text".ljust(minimum, "x")
