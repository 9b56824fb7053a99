"""createPost and deletePost, and what createPost does when X's answer to a post is lost."""

from __future__ import annotations

import re
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from . import validation
from .client import XClient
from .errors import InvalidInputError, OutcomeUnknownError, TransportError, XError
from .media import MAX_POST_IMAGES, Attachment, MediaLoader, ProgressCallback, load_all, upload_all
from .models import CreatePostResult, DeletePostResult, FileEntry, PostData, parse_response
from .text import validate_post_text
from .users import UserDirectory

CREATE = "/2/tweets"
TIMELINE = "/2/users/{id}/tweets"
# How many of the account's newest posts are looked at after a lost answer (X's minimum is 5).
_LOOKUP_COUNT = 10
# What the lookup needs to tell this request's post from any other: when it was made, what its
# t.co links stand for, and which media it carries. Spec 2.167 names the parameter post.fields;
# servers that predate it (the live API took both in 2026-08) get tweet.fields if they refuse it.
_LOOKUP_FIELDS = "created_at,entities,attachments"
# A post's id is stamped by X's clock, the send time by this machine's. The offset between the two is
# measured from the Date header of X's answers (second resolution, read after some latency, so it
# errs towards X being behind), and this much more is allowed for what that measurement can miss.
# Only a post whose id is at least this old before the send can be taken for an older post; without
# the allowance a correct match could be missed (then the outcome is reported unknown, never wrong).
CLOCK_ALLOWANCE = 5.0

_TWITTER_EPOCH_MS = 1288834974657
_TCO = re.compile(r"https://t\.co/[A-Za-z0-9]+")
# X's link to a post's own photo or video, which it appends (as a t.co link) to the text of a post with media.
_MEDIA_LINK = re.compile(r"^https?://(?:www\.)?(?:x|twitter)\.com/[^/]+/status/\d+/(?:photo|video)/\d+$")
# X returns &, < and > HTML-escaped in post text (observed on the live API; the spec does not say).
_ESCAPES = (("&lt;", "<"), ("&gt;", ">"), ("&amp;", "&"))


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
        await validate_post_text(text)
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
    """POST /2/tweets, uploading any images first. Never retried blindly (see _recover).

    X unreachable (NotSentError): nothing was sent, and that is what is raised; there is nothing to
    look for on the account.
    """
    prepared = await prepare_post(loader, text, media)
    body: dict[str, object] = {}
    if prepared.text is not None:
        body["text"] = prepared.text
    media_ids: list[str] = []
    if prepared.attachments:
        media_ids = list(dict.fromkeys(await upload_all(client, prepared.attachments, "tweet", progress=progress)))
        body["media"] = {"media_ids": media_ids}
    sent_at = time.time()
    try:
        response = await client.request("POST", CREATE, json=body)
    except TransportError as exc:
        return await _recover(client, users or UserDirectory(client), prepared.text, media_ids, sent_at, exc)
    return parse_response(CreatePostResult, response, f"POST {CREATE}")


# --- after a lost answer: the account's newest posts, read for this purpose only --------------------


class _Link(BaseModel):
    model_config = ConfigDict(extra="ignore")

    url: str | None = None  # the t.co link as it appears in the text
    expanded_url: str | None = None
    media_key: str | None = None  # set on the link X appends for a post's own media
    start: int | None = None
    end: int | None = None


class _Entities(BaseModel):
    model_config = ConfigDict(extra="ignore")

    urls: list[_Link] | None = None


class _Attachments(BaseModel):
    model_config = ConfigDict(extra="ignore")

    media_keys: list[str] | None = None


class _Recent(BaseModel):
    """A post on the account, with what tells it apart (spec 2.167's Post requires no field)."""

    model_config = ConfigDict(extra="ignore")

    id: str
    text: str | None = None
    edit_history_tweet_ids: list[str] | None = None
    edit_history_post_ids: list[str] | None = None
    entities: _Entities | None = None
    attachments: _Attachments | None = None


def _readable_posts(body: dict[str, Any]) -> list[_Recent]:
    """Each post that can be read; one that can't is never a match, so it is skipped, not fatal."""
    items = body.get("data")
    posts: list[_Recent] = []
    for item in items if isinstance(items, list) else []:
        try:
            post = _Recent.model_validate(item)
        except ValidationError:
            continue
        if post.id.isascii() and post.id.isdigit():
            posts.append(post)
    return posts


async def _newest_posts(client: XClient, user_id: str) -> list[_Recent]:
    params: dict[str, str | int] = {"max_results": _LOOKUP_COUNT, "post.fields": _LOOKUP_FIELDS}
    try:
        body = await client.request("GET", TIMELINE, path_params={"id": user_id}, params=params)
    except InvalidInputError:
        params = {"max_results": _LOOKUP_COUNT, "tweet.fields": _LOOKUP_FIELDS}
        body = await client.request("GET", TIMELINE, path_params={"id": user_id}, params=params)
    return _readable_posts(body)


def posted_at(post_id: str) -> float:
    """A snowflake id carries its creation time (ms since X's epoch) in its top bits."""
    return ((int(post_id) >> 22) + _TWITTER_EPOCH_MS) / 1000


def _normal(text: str) -> str:
    return unicodedata.normalize("NFC", text).replace("\r\n", "\n").strip()


def _spellings(url: str) -> list[str]:
    """How the link may have been written in the request: X expands `example.com` to `http://example.com`."""
    bare = re.sub(r"^https?://", "", url)
    return list(dict.fromkeys([url, bare, url.rstrip("/"), bare.rstrip("/")]))


def _text_pattern(post: _Recent, with_media: bool) -> re.Pattern[str]:
    """What the request's text must look like for X to have stored `post.text`.

    Each t.co link stands for the link X says it expands to (`entities.urls[].expanded_url`), or for
    itself; the link X appends for the post's own media stands for nothing. A t.co link X says
    nothing about can only have been written as itself, except a last one on a post with media,
    which may be that appended link.
    """
    text = post.text or ""
    for escaped, plain in _ESCAPES:
        text = text.replace(escaped, plain)
    text = _normal(text)
    links = {link.url: link for link in (post.entities.urls or []) if link.url} if post.entities else {}
    pieces: list[str] = []
    last = 0
    matches = list(_TCO.finditer(text))
    for index, found in enumerate(matches):
        tco = found.group(0)
        before = text[last : found.start()]
        link = links.get(tco)
        final = index == len(matches) - 1 and found.end() == len(text)
        if link is not None and (link.media_key or _MEDIA_LINK.match(link.expanded_url or "")):
            # X added it, with a space before it when there is text: neither was in the request.
            pieces.append(re.escape(before.rstrip() if final else before))
        elif link is None and final and with_media:
            kept = before.rstrip()
            pieces.append(re.escape(kept) + "(?:" + re.escape(before[len(kept) :] + tco) + ")?")
        else:
            spellings = _spellings(link.expanded_url) if link is not None and link.expanded_url else []
            alternatives = "|".join(re.escape(s) for s in [*spellings, tco])
            pieces.append(re.escape(before) + f"(?:{alternatives})")
        last = found.end()
    pieces.append(re.escape(text[last:]))
    return re.compile("".join(pieces))


def _media_ids(post: _Recent) -> set[str]:
    # X's media key is "<type>_<media id>" (e.g. 3_1455952740635586573 for a photo).
    keys = post.attachments.media_keys if post.attachments and post.attachments.media_keys else []
    return {key.rsplit("_", 1)[-1] for key in keys}


def is_this_post(post: _Recent, text: str | None, media_ids: Sequence[str], not_before: float) -> bool:
    """Whether `post` is the one this request made: made after it was sent, with its text and media."""
    if posted_at(post.id) < not_before:
        return False
    if _media_ids(post) != set(media_ids):
        return False
    return _text_pattern(post, bool(media_ids)).fullmatch(_normal(text or "")) is not None


async def _recover(
    client: XClient,
    users: UserDirectory,
    text: str | None,
    media_ids: Sequence[str],
    sent_at: float,
    lost: TransportError,
) -> CreatePostResult:
    """The request went out but no answer came back: look before anyone retries.

    Only a post made after the request was sent, with the same text once X's t.co links are read back
    and the same media, is this request's; exactly one such post must be found. Anything less certain
    is reported as an unknown outcome, never as another post's id.
    """
    try:
        me = await users.me()
        recent = await _newest_posts(client, me.id)
    except XError:
        recent = []
    not_before = sent_at + (client.clock_offset or 0.0) - CLOCK_ALLOWANCE
    found = [post for post in recent if is_this_post(post, text, media_ids, not_before)]
    if len(found) == 1:
        post = found[0]
        history = post.edit_history_tweet_ids or post.edit_history_post_ids or [post.id]
        data = PostData.model_validate({"id": post.id, "text": post.text or "", "edit_history_tweet_ids": history})
        return RecoveredPost(data=data)
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
