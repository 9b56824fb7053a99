"""sendDirectMessage."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from . import validation
from .client import XClient
from .errors import DM_NOT_ALLOWED, ForbiddenError, InvalidInputError, OutcomeUnknownError, TransportError
from .limits import MAX_DM_ATTACHMENTS
from .media import Attachment, MediaLoader, ProgressCallback, load_all, upload_all
from .models import FileEntry, SendDirectMessageResult, parse_response
from .users import UserDirectory

MAX_DM_LENGTH = 10_000


@dataclass(frozen=True)
class PreparedMessage:
    """A message that passed every local check, with its attachment loaded: only X is left."""

    username: str
    text: str
    attachments: list[Attachment]


async def prepare_message(
    loader: MediaLoader, username: str, text: str, media: Sequence[FileEntry] | None
) -> PreparedMessage:
    name = validation.username(username)
    if not text:
        raise InvalidInputError("sendDirectMessage needs a non-empty `text`.")
    if len(text) > MAX_DM_LENGTH:
        raise InvalidInputError(f"A direct message is at most {MAX_DM_LENGTH} characters; got {len(text)}.")
    attachments = await load_all(loader, list(media or ()), MAX_DM_ATTACHMENTS, "A direct message")
    return PreparedMessage(username=name, text=text, attachments=attachments)


async def send_direct_message(
    client: XClient,
    users: UserDirectory,
    loader: MediaLoader,
    username: str,
    text: str,
    media: Sequence[FileEntry] | None = None,
    *,
    progress: ProgressCallback | None = None,
) -> SendDirectMessageResult:
    """POST /2/dm_conversations/with/{participant_id}/messages. Never retried blindly."""
    prepared = await prepare_message(loader, username, text, media)
    attachments = prepared.attachments
    recipient = await users.by_username(prepared.username)
    body: dict[str, object] = {"text": prepared.text}
    if attachments:
        # A video is uploaded as dm_video and processed by X before the message is sent.
        media_ids = await upload_all(client, attachments, "dm", progress=progress)
        body["attachments"] = [{"media_id": media_id} for media_id in media_ids]
    try:
        response = await client.request(
            "POST",
            "/2/dm_conversations/with/{participant_id}/messages",
            path_params={"participant_id": recipient.id},
            json=body,
        )
    except TransportError as exc:
        raise OutcomeUnknownError(
            f"The message to @{recipient.username} was sent but X's answer was lost: it may or may not have "
            "arrived. Check the conversation before sending it again.",
            endpoint=exc.endpoint,
            detail=exc.detail,
        ) from None
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
