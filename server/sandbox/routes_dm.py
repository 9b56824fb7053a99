"""POST /2/dm_conversations/with/{participant_id}/messages."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from . import config, errors
from .endpoint import json_body, path_id, x_route
from .state import Sandbox, User


def _attachment_ids(body: dict[str, Any]) -> list[str]:
    attachments = body.get("attachments")
    if attachments is None:
        return []
    if not isinstance(attachments, list) or not all(
        isinstance(a, dict) and isinstance(a.get("media_id"), str) for a in attachments
    ):
        raise errors.invalid_request("$.attachments: must be an array of {media_id}", {"attachments": []})
    return [a["media_id"] for a in attachments]


def routes(sandbox: Sandbox) -> list[Route]:
    async def send(request: Request, user: User) -> tuple[int, dict[str, Any]]:
        participant_id = path_id(request.path_params["participant_id"], "participant_id")
        body = await json_body(request)
        text = body.get("text")
        if text is not None and not isinstance(text, str):
            raise errors.invalid_request("$.text: must be a string", {"text": [str(text)]})
        dm = sandbox.send_dm(user, participant_id, text, _attachment_ids(body))
        return 201, {"data": {"dm_conversation_id": dm.conversation_id, "dm_event_id": dm.id}}

    return [
        x_route(sandbox, "POST", "/2/dm_conversations/with/{participant_id}/messages", config.POST_DM, send),
    ]
