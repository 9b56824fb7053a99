"""Hold HTTP bodies against X's OpenAPI spec (tests/data/x-openapi.json).

Reusable by any test: validate_response(...) / validate_request(...) raise AssertionError with
the offending path and schema location.

OpenAPI 3.0 handling: schemas are validated as JSON Schema draft 4 (3.0's base); `nullable` is
turned into a null type; `discriminator` on Problem is honoured by also validating a problem
against the schema its `type` maps to. One spec defect is patched (see _DOCUMENTED_PROBLEM_TYPES).
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft4Validator, validators
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

SPEC_PATH = Path(__file__).resolve().parents[1] / "data" / "x-openapi.json"
_BASE = "urn:x-openapi"

# Spec 2.159's defects (`meta` required in the media upload responses, `type` in ProcessingInfo,
# neither defined) are gone in 2.167. Its defect: `Problem` is a oneOf of nine typed problems, while
# X's docs (xdevplatform/docs x-api/fundamentals/response-codes-and-errors.mdx, "Error types") also
# list the generic `about:blank` (X's 401, 403 and 429 answers), `client-forbidden`,
# `usage-capped` and `rate-limit-exceeded`; and X answers an empty pay-per-use balance with
# `credits-depleted` (HTTP 402, see server/sandbox/errors.py). Those are added as one more choice.
_DOCUMENTED_PROBLEM_TYPES: tuple[str, ...] = (
    "about:blank",
    "https://api.x.com/2/problems/client-forbidden",
    "https://api.x.com/2/problems/usage-capped",
    "https://api.x.com/2/problems/rate-limit-exceeded",
    "https://api.x.com/2/problems/credits-depleted",
)
_DOCUMENTED_PROBLEM: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title"],
    "properties": {
        "type": {"type": "string", "enum": list(_DOCUMENTED_PROBLEM_TYPES)},
        "title": {"type": "string"},
        "detail": {"type": "string"},
        "status": {"type": "integer"},
    },
}


def _nullable_to_type(node: Any) -> None:
    if isinstance(node, dict):
        if node.get("nullable") is True and isinstance(node.get("type"), str):
            node["type"] = [node["type"], "null"]
        for value in node.values():
            _nullable_to_type(value)
    elif isinstance(node, list):
        for value in node:
            _nullable_to_type(value)


@cache
def _spec() -> dict[str, Any]:
    spec = copy.deepcopy(json.loads(SPEC_PATH.read_text()))
    _nullable_to_type(spec)
    schemas = spec["components"]["schemas"]
    schemas["DocumentedProblem"] = _DOCUMENTED_PROBLEM
    schemas["Problem"]["oneOf"].append({"$ref": "#/components/schemas/DocumentedProblem"})
    return spec


@cache
def _registry() -> Registry:
    return Registry().with_resource(_BASE, Resource.from_contents(_spec(), default_specification=DRAFT4))


def _discriminator(validator: Any, discriminator: Any, instance: Any, schema: Any) -> Any:
    if not isinstance(instance, dict):
        return
    target = discriminator.get("mapping", {}).get(instance.get(discriminator.get("propertyName")))
    if target is None:
        return
    # A plain validator for the mapped schema: the mapped schema's allOf leads back to the base
    # schema, and re-applying the discriminator there would recurse forever.
    inner = Draft4Validator({"$ref": _BASE + target}, registry=_registry())
    yield from inner.iter_errors(instance)


_Validator = validators.extend(Draft4Validator, {"discriminator": _discriminator})


def _check(schema_ref: dict[str, Any], instance: Any, where: str) -> None:
    validator = _Validator({"$ref": _absolute(schema_ref)}, registry=_registry())
    problems = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    if problems:
        lines = [
            f"  at /{'/'.join(map(str, e.absolute_path))}: {e.message} (schema {'/'.join(map(str, e.schema_path))})"
            for e in problems[:10]
        ]
        raise AssertionError(
            f"{where} does not match X's OpenAPI spec:\n" + "\n".join(lines) + f"\nbody: {json.dumps(instance)[:2000]}"
        )


def _absolute(schema: dict[str, Any]) -> str:
    ref = schema.get("$ref")
    if not isinstance(ref, str):
        raise AssertionError(f"expected a $ref schema, got {schema}")
    return _BASE + ref


def _operation(method: str, path_template: str) -> dict[str, Any]:
    paths = _spec()["paths"]
    if path_template not in paths:
        raise AssertionError(f"{path_template} is not a path in X's OpenAPI spec")
    operation = paths[path_template].get(method.lower())
    if operation is None:
        raise AssertionError(f"{method.upper()} {path_template} is not an operation in X's OpenAPI spec")
    return operation


def validate_response(method: str, path_template: str, status: int, body: dict, content_type: str) -> None:
    where = f"{method.upper()} {path_template} -> {status} ({content_type})"
    responses = _operation(method, path_template)["responses"]
    response = responses.get(str(status)) or responses.get("default")
    if response is None:
        raise AssertionError(f"{where}: the spec documents no {status} or default response")
    media = content_type.split(";")[0].strip().lower()
    content = response.get("content", {})
    if media not in content:
        raise AssertionError(f"{where}: the spec allows content types {sorted(content)}, not {media}")
    _check(content[media]["schema"], body, where)


def validate_request(method: str, path_template: str, body: dict, content_type: str = "application/json") -> None:
    where = f"request body of {method.upper()} {path_template} ({content_type})"
    request_body = _operation(method, path_template).get("requestBody")
    if request_body is None:
        raise AssertionError(f"{where}: the spec documents no request body")
    content = request_body.get("content", {})
    if content_type not in content:
        raise AssertionError(f"{where}: the spec allows content types {sorted(content)}")
    _check(content[content_type]["schema"], body, where)
