"""createPost and deletePost."""

from __future__ import annotations

from collections.abc import Sequence

import anyio

from . import validation
from .client import XClient
from .errors import InvalidInputError
from .media import MAX_POST_IMAGES, MediaLoader, load_all, upload_images
from .models import CreatePostResult, DeletePostResult, FileEntry, parse_response
from .text import check_post_text


async def create_post(
    client: XClient,
    loader: MediaLoader,
    text: str | None = None,
    media: Sequence[FileEntry] | None = None,
) -> CreatePostResult:
    """POST /2/tweets, uploading any images first."""
    text = text or None
    media = list(media or ())
    if text is None and not media:
        raise InvalidInputError("createPost needs `text`, `media`, or both; both were empty.")
    if text is not None:
        check_post_text(text)
    images = await anyio.to_thread.run_sync(load_all, loader, media, MAX_POST_IMAGES, "A post")
    body: dict[str, object] = {}
    if text is not None:
        body["text"] = text
    if images:
        media_ids = await upload_images(client, images, "tweet_image")
        body["media"] = {"media_ids": list(dict.fromkeys(media_ids))}
    response = await client.request("POST", "/2/tweets", json=body)
    return parse_response(CreatePostResult, response, "POST /2/tweets")


async def delete_post(client: XClient, post_id: str) -> DeletePostResult:
    """DELETE /2/tweets/{id}."""
    checked = validation.post_id(post_id, "id")
    response = await client.request("DELETE", "/2/tweets/{id}", path_params={"id": checked})
    return parse_response(DeletePostResult, response, "DELETE /2/tweets/{id}")
