"""sendDirectMessage."""

from __future__ import annotations

from collections.abc import Sequence

import anyio

from . import validation
from .client import XClient
from .errors import DM_NOT_ALLOWED, ForbiddenError, InvalidInputError
from .media import MAX_DM_ATTACHMENTS, MediaLoader, load_all, upload_images
from .models import FileEntry, SendDirectMessageResult, parse_response
from .users import UserDirectory

MAX_DM_LENGTH = 10_000


async def send_direct_message(
    client: XClient,
    users: UserDirectory,
    loader: MediaLoader,
    username: str,
    text: str,
    media: Sequence[FileEntry] | None = None,
) -> SendDirectMessageResult:
    """POST /2/dm_conversations/with/{participant_id}/messages."""
    name = validation.username(username)
    if not text:
        raise InvalidInputError("sendDirectMessage needs a non-empty `text`.")
    if len(text) > MAX_DM_LENGTH:
        raise InvalidInputError(f"A direct message is at most {MAX_DM_LENGTH} characters; got {len(text)}.")
    images = await anyio.to_thread.run_sync(load_all, loader, list(media or ()), MAX_DM_ATTACHMENTS, "A direct message")
    recipient = await users.by_username(name)
    body: dict[str, object] = {"text": text}
    if images:
        media_ids = await upload_images(client, images, "dm_image")
        body["attachments"] = [{"media_id": media_id} for media_id in media_ids]
    try:
        response = await client.request(
            "POST",
            "/2/dm_conversations/with/{participant_id}/messages",
            path_params={"participant_id": recipient.id},
            json=body,
        )
    except ForbiddenError as exc:
        if exc.reason != DM_NOT_ALLOWED:
            raise
        raise ForbiddenError(
            f"@{recipient.username} does not accept direct messages from this account (their DM settings "
            f"allow only people they follow, or they blocked it). X said: {exc.detail}",
            reason=DM_NOT_ALLOWED,
            **exc.details(),
        ) from None
    return parse_response(SendDirectMessageResult, response, "POST /2/dm_conversations/with/{participant_id}/messages")
