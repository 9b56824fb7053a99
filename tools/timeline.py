"""Reading posts: a user's timeline and recent search, paged through in full."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from . import validation
from .client import XClient
from .models import EDIT_HISTORY, ReadablePost, parse_response
from .users import UserDirectory

logger = logging.getLogger("xcourier.x")

TIMELINE = "/2/users/{id}/tweets"
SEARCH = "/2/tweets/search/recent"
MAX_PAGE = 100
MAX_QUERY_LENGTH = 512
# X reaches only a user's newest 3,200 posts; more pages than this can't exist.
MAX_PAGES = 32 + 1
NEWEST_FEW = 5
# Spec 2.167 names the parameter `post.fields` (the live API also takes `tweet.fields`) and moved
# `author_id` out of its enum into `expansions`. X puts an expanded id on the post itself
# (docs.x.com, x-api/fundamentals/expansions), so search, which mixes authors, asks for the
# expansion; a timeline is one user's posts, whose author the call already knows, so it doesn't
# (includes.users would be billed as user reads).
_FIELDS = "created_at"
_SEARCH_EXPANSIONS = "author_id"


class Post(ReadablePost):
    """A post by the user, as X sent it; what X left out is filled in as each field says."""

    # A post is usable only with an id (the cursor, the order, what the user acts on): _Page skips
    # items whose id fails ReadablePost's check rather than failing the page.
    id: str = Field(description="The post's id.")
    text: str = Field(description="The post's text; empty when X sent none.")
    edit_history_tweet_ids: list[str] = Field(
        validation_alias=EDIT_HISTORY,
        description="Ids of the post's versions, oldest first. X may call this edit_history_post_ids (copied here) "
        "or leave it out, as it does for posts made before 2022-09-29: then it is [id].",
    )
    created_at: str | None = Field(default=None, description="When the post was made (ISO 8601), if X said.")
    author_id: str | None = Field(
        default=None, description="The author's user id; for a user's own timeline, that user when X leaves it out."
    )


class _Meta(BaseModel):
    model_config = ConfigDict(extra="ignore")

    result_count: int = 0
    newest_id: str | None = None
    next_token: str | None = None


class _Page(BaseModel):
    model_config = ConfigDict(extra="ignore")

    data: list[Post] = []
    meta: _Meta = _Meta()

    @field_validator("data", mode="before")
    @classmethod
    def _usable(cls, items: Any) -> Any:
        """One post X sent in a shape that can't be used is skipped, not the whole page with it.

        X omits `data` on an empty page. A post without a usable id can't be ordered, delivered or
        used as a cursor; failing the page for it would stall getNewPosts and the watcher on every poll.
        """
        if items is None:
            return []
        if not isinstance(items, list):
            return items  # not a page at all: unreadable
        usable: list[Post] = []
        for item in items:
            try:
                usable.append(Post.model_validate(item))
            except ValidationError:
                logger.warning("skipped a post X sent without a usable id or text")
        return usable

    @field_validator("meta", mode="before")
    @classmethod
    def _no_meta(cls, value: Any) -> Any:
        return {} if value is None else value

    def authored_by(self, user_id: str) -> list[Post]:
        """The posts of one user's timeline: every one is theirs, whether X said so or not."""
        return [post if post.author_id else post.model_copy(update={"author_id": user_id}) for post in self.data]


class NewPosts(BaseModel):
    posts: list[Post]
    next_since_id: str | None


_TWITTER_EPOCH_MS = 1288834974657


def newer(a: str, b: str | None) -> bool:
    """Post ids are snowflakes: a larger number is a later post."""
    return b is None or int(a) > int(b)


def posted_at(post_id: str) -> float:
    """A snowflake id carries its creation time (ms since X's epoch) in its top bits."""
    return ((int(post_id) >> 22) + _TWITTER_EPOCH_MS) / 1000


def minus_seconds(post_id: str, seconds: float) -> str:
    """The id a post made `seconds` before `post_id` would have."""
    return str(max(0, int(post_id) - (int(seconds * 1000) << 22)))


async def _pages(
    client: XClient, path: str, params: dict[str, str | int], path_params: dict[str, str], author: str | None = None
) -> list[Post]:
    """Every post the query reaches, oldest first; `author` when every post is that user's."""
    posts: list[Post] = []
    token: str | None = None
    for _ in range(MAX_PAGES):
        query = dict(params) | ({"pagination_token" if path == TIMELINE else "next_token": token} if token else {})
        body = await client.request("GET", path, path_params=path_params, params=query)
        page = parse_response(_Page, body, f"GET {path}")
        posts.extend(page.authored_by(author) if author is not None else page.data)
        token = page.meta.next_token
        if not token:
            break
    unique = {post.id: post for post in posts}
    return sorted(unique.values(), key=lambda post: int(post.id))


async def user_posts(client: XClient, user_id: str, since_id: str | None) -> list[Post]:
    """All of the user's posts newer than since_id, oldest first."""
    params: dict[str, str | int] = {"max_results": MAX_PAGE, "post.fields": _FIELDS}
    if since_id is not None:
        params["since_id"] = since_id
    return await _pages(client, TIMELINE, params, {"id": user_id}, author=user_id)


async def newest_posts(client: XClient, user_id: str, count: int = NEWEST_FEW) -> list[Post]:
    """The user's newest `count` posts (5..100), oldest first."""
    params: dict[str, str | int] = {"max_results": max(5, min(count, MAX_PAGE)), "post.fields": _FIELDS}
    body = await client.request("GET", TIMELINE, path_params={"id": user_id}, params=params)
    page = parse_response(_Page, body, f"GET {TIMELINE}")
    return sorted(page.authored_by(user_id), key=lambda post: int(post.id))[-count:]


def search_queries(usernames: Sequence[str]) -> list[list[str]]:
    """Group usernames into `from:a OR from:b ...` queries within X's 512-character limit."""
    batches: list[list[str]] = []
    current: list[str] = []
    for name in usernames:
        candidate = [*current, name]
        if current and len(search_query(candidate)) > MAX_QUERY_LENGTH:
            batches.append(current)
            candidate = [name]
        current = candidate
    if current:
        batches.append(current)
    return batches


def search_query(usernames: Sequence[str]) -> str:
    return " OR ".join(f"from:{name}" for name in usernames)


async def search_posts(client: XClient, usernames: Sequence[str], since_id: str) -> list[Post]:
    """Posts by any of the users newer than since_id (recent search: the last 7 days), oldest first."""
    params: dict[str, str | int] = {
        "query": search_query(usernames),
        "since_id": since_id,
        "max_results": MAX_PAGE,
        "post.fields": _FIELDS,
        "expansions": _SEARCH_EXPANSIONS,
    }
    return await _pages(client, SEARCH, params, {})


async def get_new_posts(client: XClient, users: UserDirectory, username: str, since_id: str | None) -> NewPosts:
    """getNewPosts: every post newer than since_id (oldest first), or the newest few and a cursor."""
    name = validation.username(username)
    if since_id is not None:
        validation.post_id(since_id, "since_id")
    user = await users.by_username(name)
    if since_id is None:
        posts = await newest_posts(client, user.id)
    else:
        posts = await user_posts(client, user.id, since_id)
    next_since_id = posts[-1].id if posts else since_id
    return NewPosts(posts=posts, next_since_id=next_since_id)
