"""Hold captured requests against X's own OpenAPI document (tests/data/x-openapi.json).

The client and the sandbox share no models; both answer to X's spec instead. OpenAPI 3.0 schemas
are close to JSON Schema draft 4, so bodies are checked with a Draft4Validator whose
`#/components/...` references resolve inside the spec document through a referencing Registry.
"""

from __future__ import annotations

import functools
import json
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


def request_body_schema(method: str, path: str, content_type: str = "application/json") -> dict[str, Any]:
    """The requestBody schema X documents for `method path` (path as templated in the spec)."""
    operation = spec()["paths"][path][method.lower()]
    return operation["requestBody"]["content"][content_type]["schema"]


def validate_request_body(method: str, path: str, body: Any, content_type: str = "application/json") -> None:
    """Raise jsonschema.ValidationError unless `body` matches the spec's requestBody schema."""
    schema = request_body_schema(method, path, content_type)
    # Anchor the schema in the spec document so its `#/components/...` refs resolve there.
    anchored = {"$ref": SPEC_URI + schema["$ref"]} if set(schema) == {"$ref"} else schema
    jsonschema.Draft4Validator(anchored, registry=_registry()).validate(body)
