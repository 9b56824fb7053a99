"""createPost and deletePost."""

from __future__ import annotations

import re
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from . import timeline, validation
from .client import XClient
from .errors import InvalidInputError, OutcomeUnknownError, TransportError, XError
from .media import MAX_POST_IMAGES, Attachment, MediaLoader, ProgressCallback, load_all, upload_all
from .models import CreatePostResult, DeletePostResult, FileEntry, PostData, parse_response
from .text import check_post_text
from .users import UserDirectory

_URLS = re.compile(r"https?://\S+")
# How far back (in post time) a post found after a lost answer may be and still be ours.
_LOST_ANSWER_WINDOW = 300.0


class RecoveredPost(CreatePostResult):
    """The answer to POST /2/tweets was lost, but the post was found on the account."""


@dataclass(frozen=True)
class PreparedPost:
    """A post that passed every local check, with its attachments loaded: only X is left."""

    text: str | None
    attachments: list[Attachment]


async def prepare_post(loader: MediaLoader, text: str | None, media: Sequence[FileEntry] | None) -> PreparedPost:
    text = text or None
    entries = list(media or ())
    if text is None and not entries:
        raise InvalidInputError("createPost needs `text`, `media`, or both; both were empty.")
    if text is not None:
        check_post_text(text)
    return PreparedPost(text=text, attachments=await load_all(loader, entries, MAX_POST_IMAGES, "A post"))


async def create_post(
    client: XClient,
    loader: MediaLoader,
    text: str | None = None,
    media: Sequence[FileEntry] | None = None,
    *,
    progress: ProgressCallback | None = None,
    users: UserDirectory | None = None,
) -> CreatePostResult:
    """POST /2/tweets, uploading any images first. Never retried blindly (see _recover)."""
    prepared = await prepare_post(loader, text, media)
    body: dict[str, object] = {}
    if prepared.text is not None:
        body["text"] = prepared.text
    if prepared.attachments:
        media_ids = await upload_all(client, prepared.attachments, "tweet", progress=progress)
        body["media"] = {"media_ids": list(dict.fromkeys(media_ids))}
    sent_at = time.time()
    try:
        response = await client.request("POST", "/2/tweets", json=body)
    except TransportError as exc:
        return await _recover(client, users or UserDirectory(client), prepared, sent_at, exc)
    return parse_response(CreatePostResult, response, "POST /2/tweets")


def _same_text(posted: str, wanted: str | None) -> bool:
    # X shortens links to t.co and appends a link for attached media: compare what is left.
    def core(text: str | None) -> str:
        return " ".join(_URLS.sub("", unicodedata.normalize("NFC", text or "")).split())

    return core(posted) == core(wanted)


async def _recover(
    client: XClient, users: UserDirectory, prepared: PreparedPost, sent_at: float, lost: TransportError
) -> CreatePostResult:
    """The request went out but no answer came back: look before anyone retries."""
    try:
        me = await users.me()
        recent = await timeline.newest_posts(client, me.id, 10)
    except XError:
        recent = []
    for post in reversed(recent):  # newest first
        if timeline.posted_at(post.id) >= sent_at - _LOST_ANSWER_WINDOW and _same_text(post.text, prepared.text):
            return RecoveredPost(
                data=PostData(id=post.id, text=post.text, edit_history_tweet_ids=post.edit_history_tweet_ids)
            )
    raise OutcomeUnknownError(
        "The post was sent but X's answer was lost, and the account's newest posts don't show it yet: the outcome "
        "is unknown. Check the account before retrying, so it isn't posted twice.",
        endpoint=lost.endpoint,
        detail=lost.detail,
    ) from None


async def delete_post(client: XClient, post_id: str) -> DeletePostResult:
    """DELETE /2/tweets/{id}."""
    checked = validation.post_id(post_id, "id")
    response = await client.request("DELETE", "/2/tweets/{id}", path_params={"id": checked})
    return parse_response(DeletePostResult, response, "DELETE /2/tweets/{id}")
