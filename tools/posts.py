"""createPost and deletePost, and what createPost does when X's answer to a post is lost.

A post may reply to another, quote one, or carry a poll. X's rules on combining them are checked
here, before anything is sent (see `prepare_post`). Of X's 2026 self-serve rules, replies only when
summoned and no quote posts depend on the app's plan and on other accounts, which only X knows: they
are left to X and its refusal explained (tools/errors.py). The one-cashtag rule is checked locally
(tools/text.py), which also refuses a second cashtag on an Enterprise plan, where X would allow it.
"""

from __future__ import annotations

import re
import time
import unicodedata
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from . import validation
from .client import XClient
from .errors import (
    QUOTES_NEED_ENTERPRISE,
    ForbiddenError,
    InvalidInputError,
    OutcomeUnknownError,
    TransportError,
    XError,
)
from .limits import MAX_POST_IMAGES, MAX_THREAD_POSTS
from .media import Attachment, MediaLoader, ProgressCallback, load_all, upload_all
from .models import (
    POLL_MAX_MINUTES,
    POLL_MAX_OPTIONS,
    POLL_MIN_MINUTES,
    POLL_MIN_OPTIONS,
    POLL_OPTION_MAX_CHARS,
    CreatePostResult,
    DeletePostResult,
    FileEntry,
    Poll,
    PostData,
    ThreadPost,
    parse_response,
)
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

REPLY_SETTINGS = ("following", "mentionedUsers", "subscribers", "verified")  # spec 2.167
# A post's address on X as the apps share it: x.com or twitter.com (www., mobile.), a handle or
# i/web, /status/<id>, then anything (/photo/1, ?s=20).
_POST_URL = re.compile(
    r"(?:https?://)?(?:www\.|mobile\.)?(?:x|twitter)\.com/(?:[A-Za-z0-9_]{1,15}|i/web|i)/status(?:es)?/"
    r"([0-9]{1,19})(?:[/?#].*)?",
    re.IGNORECASE,
)
# X puts the @handles of the users replied to at the start of a reply's text (the display_text_range
# excludes them); a request's text never has them.
_REPLY_PREFIX = re.compile(r"@[A-Za-z0-9_]{1,15} ")

_TWITTER_EPOCH_MS = 1288834974657
_TCO = re.compile(r"https://t\.co/[A-Za-z0-9]+")
# X's link to a post's own photo or video, which it appends (as a t.co link) to the text of a post with media.
_MEDIA_LINK = re.compile(r"^https?://(?:www\.)?(?:x|twitter)\.com/[^/]+/status/\d+/(?:photo|video)/\d+$")
# X returns &, < and > HTML-escaped in post text (observed on the live API; the spec does not say).
_ESCAPES = (("&lt;", "<"), ("&gt;", ">"), ("&amp;", "&"))


class RecoveredPost(CreatePostResult):
    """The answer to POST /2/tweets was lost, but the post was found on the account."""


@dataclass(frozen=True)
class PostOptions:
    """What a post is besides its text and media: a reply, a quote, a poll, who may reply."""

    reply_to: str | None = None
    quote: str | None = None
    poll: Poll | None = None
    reply_settings: str | None = None


@dataclass(frozen=True)
class PreparedPost:
    """A post that passed every local check, with its attachments loaded: only X is left."""

    text: str | None
    attachments: list[Attachment]
    reply_to: str | None = None
    quote_tweet_id: str | None = None
    poll: Poll | None = None
    reply_settings: str | None = None

    def body(self, media_ids: Sequence[str]) -> dict[str, object]:
        """The JSON of POST /2/tweets (CreatePostsRequest, spec 2.167)."""
        body: dict[str, object] = {}
        if self.text is not None:
            body["text"] = self.text
        if media_ids:
            body["media"] = {"media_ids": list(media_ids)}
        if self.reply_to is not None:
            body["reply"] = {"in_reply_to_tweet_id": self.reply_to}
        if self.quote_tweet_id is not None:
            body["quote_tweet_id"] = self.quote_tweet_id
        if self.poll is not None:
            body["poll"] = {"options": list(self.poll.options), "duration_minutes": self.poll.duration_minutes}
        if self.reply_settings is not None:
            body["reply_settings"] = self.reply_settings
        return body


def quoted_post_id(value: str, field: str = "quote") -> str:
    """A post id, or the id in a post's x.com / twitter.com URL."""
    text = value.strip() if isinstance(value, str) else ""
    if text.isascii() and text.isdigit() and len(text) <= 19:
        return text
    match = _POST_URL.fullmatch(text)
    if match is not None:
        return match.group(1)
    shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
    raise InvalidInputError(
        f"`{field}` must be a post id (1 to 19 digits, e.g. '1460323737035677698') or a post's URL "
        f"(https://x.com/<user>/status/<id>); got {shown}."
    )


def check_poll(poll: Poll, tool: str = "createPost") -> Poll:
    """X's limits on a poll (CreatePostsPoll, spec 2.167), each failure saying what to change."""
    options = [option.strip() for option in poll.options]
    if not POLL_MIN_OPTIONS <= len(options) <= POLL_MAX_OPTIONS:
        raise InvalidInputError(
            f"{tool}: a poll has {POLL_MIN_OPTIONS} to {POLL_MAX_OPTIONS} options; got {len(options)}."
        )
    for index, option in enumerate(options):
        if not option:
            raise InvalidInputError(f"{tool}: poll option {index + 1} is empty; give each option some text.")
        if len(option) > POLL_OPTION_MAX_CHARS:
            raise InvalidInputError(
                f"{tool}: poll option {index + 1} ({option[:30]!r}) has {len(option)} characters; X takes at most "
                f"{POLL_OPTION_MAX_CHARS}. Shorten it."
            )
    if len({option.casefold() for option in options}) < len(options):
        # Not in the spec; two equal choices make a poll no one can answer meaningfully.
        raise InvalidInputError(f"{tool}: two poll options are the same; make each option different.")
    if not POLL_MIN_MINUTES <= poll.duration_minutes <= POLL_MAX_MINUTES:
        raise InvalidInputError(
            f"{tool}: a poll's duration_minutes is {POLL_MIN_MINUTES} to {POLL_MAX_MINUTES} (7 days); got "
            f"{poll.duration_minutes}."
        )
    return Poll(options=options, duration_minutes=poll.duration_minutes)


async def prepare_post(
    loader: MediaLoader,
    text: str | None,
    media: Sequence[FileEntry] | None,
    options: PostOptions | None = None,
    *,
    tool: str = "createPost",
) -> PreparedPost:
    """Every check that needs no X: text, media (loaded), and how reply, quote, poll and media combine.

    A poll, a quote and media exclude one another: X's API Playground refuses more than one ("You can
    only provide one of poll or quote_tweet_id or direct_message_deep_link or media or card_uri.",
    xdevplatform/playground internal/playground/handlers_unified.go at fe224d5), as spec 2.159
    documented ("mutually exclusive from Media, Quote Tweet Id, and Card URI").
    """
    extra = options or PostOptions()
    text = text or None
    entries = list(media or ())
    if text is None and not entries:
        raise InvalidInputError(f"{tool} needs `text`, `media`, or both; both were empty.")
    reply_to = validation.post_id(extra.reply_to, "reply_to") if extra.reply_to is not None else None
    quote = quoted_post_id(extra.quote) if extra.quote is not None else None
    poll = check_poll(extra.poll, tool) if extra.poll is not None else None
    given = [name for name, value in (("poll", poll), ("quote", quote), ("media", entries)) if value]
    if len(given) > 1:
        raise InvalidInputError(
            f"{tool}: X takes only one of a poll, a quote and media on a post; got {' and '.join(given)}. Post "
            "them separately (e.g. the poll first, then a reply with the media)."
        )
    if poll is not None and text is None:
        raise InvalidInputError(f"{tool}: a poll needs `text`, the question it asks.")
    if extra.reply_settings is not None and extra.reply_settings not in REPLY_SETTINGS:
        raise InvalidInputError(
            f"{tool}: `reply_settings` is one of {', '.join(REPLY_SETTINGS)} (leave it out to let everyone reply); "
            f"got {extra.reply_settings!r}."
        )
    if text is not None:
        await validate_post_text(text)
    return PreparedPost(
        text=text,
        attachments=await load_all(loader, entries, MAX_POST_IMAGES, "A post"),
        reply_to=reply_to,
        quote_tweet_id=quote,
        poll=poll,
        reply_settings=extra.reply_settings,
    )


async def upload_post_media(
    client: XClient, prepared: PreparedPost, progress: ProgressCallback | None = None
) -> list[str]:
    if not prepared.attachments:
        return []
    return list(dict.fromkeys(await upload_all(client, prepared.attachments, "tweet", progress=progress)))


async def send_post(
    client: XClient, users: UserDirectory, prepared: PreparedPost, media_ids: Sequence[str]
) -> CreatePostResult:
    """POST /2/tweets for a prepared post whose media are uploaded. Never retried blindly: a lost
    answer is looked for on the account (_recover)."""
    sent_at = time.time()
    try:
        response = await client.request("POST", CREATE, json=prepared.body(media_ids))
    except TransportError as exc:
        return await _recover(
            client, users, prepared.text, media_ids, sent_at, exc, reply=prepared.reply_to is not None
        )
    except ForbiddenError as exc:
        if prepared.quote_tweet_id is not None and exc.reason in (None, "client-not-enrolled"):
            # X's refusal of a quote on a self-serve plan is not documented; a 403 to a request that
            # quotes, not recognised as anything else, is read as that rule (inferred).
            raise ForbiddenError(exc.message, reason=QUOTES_NEED_ENTERPRISE, **exc.details()) from None
        raise
    return parse_response(CreatePostResult, response, f"POST {CREATE}")


async def create_post(
    client: XClient,
    loader: MediaLoader,
    text: str | None = None,
    media: Sequence[FileEntry] | None = None,
    *,
    options: PostOptions | None = None,
    progress: ProgressCallback | None = None,
    users: UserDirectory | None = None,
) -> CreatePostResult:
    """POST /2/tweets, uploading any media first (a video also waits for X to process it). Never retried
    blindly (see _recover).

    X unreachable (NotSentError): nothing was sent, and that is what is raised; there is nothing to
    look for on the account.
    """
    prepared = await prepare_post(loader, text, media, options)
    media_ids = await upload_post_media(client, prepared, progress)
    return await send_post(client, users or UserDirectory(client), prepared, media_ids)


# --- threads -------------------------------------------------------------------------------------


@dataclass
class ThreadProgress:
    """How far a thread got: the posts made, in order, and where and why it stopped (if it did)."""

    total: int
    created: list[CreatePostResult]
    stopped_at: int | None = None  # index of the post that was not (or not surely) made
    error: XError | None = None
    refusal: str | None = None  # the caller's guard stopped it before the post was sent

    @property
    def last_id(self) -> str | None:
        return self.created[-1].data.id if self.created else None


# Entered around each post (index): yields a reason to stop there, or None to send it; the post's
# outcome (after_post) is reported inside it, so a caller can hold the post's place until then.
AroundPost = Callable[[int], AbstractAsyncContextManager[str | None]]
# Called after each post: (index, the post, or None with the error that stopped the thread).
AfterPost = Callable[[int, CreatePostResult | None, XError | None], Awaitable[None]]


async def prepare_thread(
    loader: MediaLoader, entries: Sequence[ThreadPost], continue_from: str | None
) -> list[PreparedPost]:
    """Every post checked and its media loaded before anything reaches X; a problem names the post."""
    if not entries:
        raise InvalidInputError("createThread needs `posts`: at least one {text, media}.")
    if len(entries) > MAX_THREAD_POSTS:
        raise InvalidInputError(
            f"createThread takes at most {MAX_THREAD_POSTS} posts in one call; got {len(entries)}. Post the first "
            f"{MAX_THREAD_POSTS}, then call again with continue_from=<the last id> and the rest."
        )
    if continue_from is not None:
        validation.post_id(continue_from, "continue_from")
    prepared: list[PreparedPost] = []
    for index, entry in enumerate(entries):
        try:
            prepared.append(await prepare_post(loader, entry.text, entry.media, tool=f"posts[{index}]"))
        except InvalidInputError as exc:
            message = exc.message if exc.message.startswith("posts[") else f"posts[{index}]: {exc.message}"
            raise InvalidInputError(message, **exc.details()) from None
    return prepared


async def create_thread(
    client: XClient,
    loader: MediaLoader,
    users: UserDirectory,
    entries: Sequence[ThreadPost],
    *,
    continue_from: str | None = None,
    progress: ProgressCallback | None = None,
    around_post: AroundPost | None = None,
    after_post: AfterPost | None = None,
) -> ThreadProgress:
    """Post `entries` in order, each replying to the one before (the first to `continue_from`, if given).

    Everything is checked and every image uploaded before the first post, so a bad file never leaves
    half a thread. Once posting starts, an error on post k stops the thread there: the result holds
    the posts made, and nothing is ever sent twice (a lost answer goes through createPost's recovery;
    if that can't tell, the thread stops with the outcome of post k unknown). Errors before the first
    post is sent (checks, uploads) are raised: nothing was posted.
    """
    prepared = await prepare_thread(loader, entries, continue_from)
    uploaded = [await upload_post_media(client, post, progress) for post in prepared]
    thread = ThreadProgress(total=len(prepared), created=[])
    previous = continue_from
    for index, (post, media_ids) in enumerate(zip(prepared, uploaded, strict=True)):
        async with around_post(index) if around_post is not None else nullcontext(None) as refusal:
            if refusal is not None:
                thread.stopped_at, thread.refusal = index, refusal
                break
            reply = PreparedPost(post.text, post.attachments, reply_to=previous)
            try:
                created = await send_post(client, users, reply, media_ids)
            except XError as exc:
                thread.stopped_at, thread.error = index, exc
                if after_post is not None:
                    await after_post(index, None, exc)
                break
            thread.created.append(created)
            previous = created.data.id
            if after_post is not None:
                await after_post(index, created, None)
    return thread


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


def is_this_post(
    post: _Recent, text: str | None, media_ids: Sequence[str], not_before: float, *, reply: bool = False
) -> bool:
    """Whether `post` is the one this request made: made after it was sent, with its text and media.

    `reply`: the request replied to a post, so X's stored text may start with @handles it added.
    """
    if posted_at(post.id) < not_before:
        return False
    if _media_ids(post) != set(media_ids):
        return False
    wanted = _normal(text or "")
    stored = post.text or ""
    while True:
        if _text_pattern(post.model_copy(update={"text": stored}), bool(media_ids)).fullmatch(wanted) is not None:
            return True
        prefix = _REPLY_PREFIX.match(stored) if reply else None
        if prefix is None:
            return False
        stored = stored[prefix.end() :]


async def _recover(
    client: XClient,
    users: UserDirectory,
    text: str | None,
    media_ids: Sequence[str],
    sent_at: float,
    lost: TransportError,
    *,
    reply: bool = False,
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
    found = [post for post in recent if is_this_post(post, text, media_ids, not_before, reply=reply)]
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
