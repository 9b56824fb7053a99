"""Media upload: one-shot POST /2/media/upload, the chunked initialize/append/finalize trio,
and GET /2/media/upload?command=STATUS; plus the admin knob /_sandbox/media/processing, which sets
how the next GIFs and videos process (steps, check_after_secs, failures)."""

from __future__ import annotations

import json
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import config, errors
from .endpoint import check_query_params, json_body, path_id, x_route
from .media import sniff
from .state import Sandbox, User, decode_media_payload


async def _fields(request: Request) -> dict[str, Any]:
    """Multipart and JSON bodies alike, as {name: str | bytes}; JSON `media` is base64."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data") or content_type.startswith("application/x-www-form-urlencoded"):
        form = await request.form()
        out: dict[str, Any] = {}
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                out[name] = await value.read()
            elif name == "media":
                out[name] = decode_media_payload(value)
            else:
                out[name] = value
        return out
    body = await json_body(request)
    if isinstance(body.get("media"), str):
        body["media"] = decode_media_payload(body["media"])
    return body


def _media_bytes(fields: dict[str, Any]) -> bytes:
    media = fields.get("media")
    if not isinstance(media, bytes):
        raise errors.invalid_request("media is required.", {"media": []})
    return media


def _optional_str(fields: dict[str, Any], name: str) -> str | None:
    value = fields.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise errors.invalid_request(f"{name} must be a string.", {name: [str(value)]})
    return value


# MediaUploadRequest in spec 2.167.
_ONE_SHOT_PROPERTIES = frozenset({"media", "media_category", "additional_owners"})
_KINDS = ("gif", "video")


def _processing_changes(body: Any) -> dict[str, Any]:
    """The admin body {steps?, check_after_secs?, fail_next?, failure?} as checked changes; ValueError if bad."""
    if not isinstance(body, dict):
        raise ValueError("body must be a JSON object")
    unknown = sorted(set(body) - {"steps", "check_after_secs", "fail_next", "failure"})
    if unknown:
        raise ValueError(f"unknown field(s): {', '.join(unknown)}")
    changes: dict[str, Any] = {}

    def count(name: str, value: Any) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 1000:
            raise ValueError(f"{name} must be an integer from 0 to 1000")
        return value

    if "steps" in body:
        steps = body["steps"]
        # One number sets every kind; an object sets the kinds it names.
        given = {kind: steps for kind in _KINDS} if not isinstance(steps, dict) else steps
        if set(given) - set(_KINDS):
            raise ValueError(f"steps names kinds {list(_KINDS)}")
        changes["steps"] = {kind: count(f"steps.{kind}", value) for kind, value in given.items()}
    for name in ("check_after_secs", "fail_next"):
        if name in body:
            changes[name] = count(name, body[name])
    if "failure" in body:
        if not isinstance(body["failure"], str) or not body["failure"].strip():
            raise ValueError("failure must be a non-empty string, e.g. 'InvalidMedia: file is invalid'")
        changes["failure"] = body["failure"]
    return changes


def routes(sandbox: Sandbox) -> list[Route]:
    async def upload(request: Request, user: User) -> tuple[int, dict[str, Any]]:
        fields = await _fields(request)
        extra = sorted(set(fields) - _ONE_SHOT_PROPERTIES)
        if extra:
            # Spec 2.167's MediaUploadRequest has additionalProperties false: X reads the type
            # from the bytes. (xcourier's client stopped sending `media_type` here in tools/media.py.)
            raise errors.invalid_request(
                f"$.{extra[0]}: is not defined in the schema and the schema does not allow additional properties",
                {name: [] for name in extra},
            )
        data = _media_bytes(fields)
        if sniff(data) == "image/gif":
            # The one-shot upload is documented for images; GIFs go through the chunked upload.
            raise errors.invalid_request(
                "GIFs must be uploaded with the chunked upload (media_category tweet_gif or dm_gif).",
                {"media": []},
            )
        media = sandbox.upload_simple(user, data, _optional_str(fields, "media_category"), None)
        return 200, media.response()

    async def initialize(request: Request, user: User) -> tuple[int, dict[str, Any]]:
        body = await json_body(request)
        total = body.get("total_bytes")
        if total is not None and (not isinstance(total, int) or isinstance(total, bool)):
            raise errors.invalid_request("total_bytes must be an integer.", {"total_bytes": [str(total)]})
        media = sandbox.media_initialize(
            user, _optional_str(body, "media_type"), total, _optional_str(body, "media_category")
        )
        return 200, media.response(with_size=False)

    async def append(request: Request, user: User) -> tuple[int, dict[str, Any]]:
        media_id = path_id(request.path_params["id"], "id")
        fields = await _fields(request)
        raw_index = fields.get("segment_index")
        try:
            index = int(raw_index)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise errors.invalid_request(
                "segment_index is required and must be an integer.", {"segment_index": [str(raw_index)]}
            ) from None
        media = sandbox.media_append(user, media_id, index, _media_bytes(fields))
        return 200, {"data": {"expires_at": int(media.expires_at)}}

    async def finalize(request: Request, user: User) -> tuple[int, dict[str, Any]]:
        media = sandbox.media_finalize(user, path_id(request.path_params["id"], "id"))
        return 200, media.response()

    async def status(request: Request, user: User) -> tuple[int, dict[str, Any]]:
        check_query_params(request, ("media_id", "command"))
        command = request.query_params.get("command")
        if command != "STATUS":
            raise errors.invalid_request(
                f"The `command` query parameter value [{command}] is not one of [STATUS]",
                {"command": [str(command)]},
            )
        media_id = request.query_params.get("media_id")
        if not media_id:
            raise errors.invalid_request("The `media_id` query parameter is required.", {"media_id": []})
        media = sandbox.media_status(user, path_id(media_id, "media_id"))
        return 200, media.response()

    async def processing(request: Request) -> Response:
        if request.method == "GET":
            return JSONResponse({"processing": sandbox.set_processing()})
        raw = await request.body()
        try:
            changes = _processing_changes(json.loads(raw) if raw else {})
        except ValueError as exc:  # json.JSONDecodeError is one too
            return JSONResponse({"error": str(exc)}, status_code=400)
        if "steps" in changes:
            changes["steps"] = {**sandbox.set_processing()["steps"], **changes["steps"]}  # type: ignore[dict-item]
        return JSONResponse({"processing": sandbox.set_processing(**changes)})

    return [
        Route("/_sandbox/media/processing", processing, methods=["GET", "POST"]),
        x_route(sandbox, "POST", "/2/media/upload", config.POST_MEDIA_UPLOAD, upload),
        x_route(sandbox, "GET", "/2/media/upload", config.GET_MEDIA_STATUS, status),
        x_route(sandbox, "POST", "/2/media/upload/initialize", config.POST_MEDIA_INITIALIZE, initialize),
        x_route(sandbox, "POST", "/2/media/upload/{id}/append", config.POST_MEDIA_APPEND, append),
        x_route(sandbox, "POST", "/2/media/upload/{id}/finalize", config.POST_MEDIA_FINALIZE, finalize),
    ]
