"""GET /2/users/me, /2/users/by/username/{username}, /2/users/{id}/tweets, /mentions and /bookmarks."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from . import catalog, config, errors, plans
from .endpoint import check_query_params, id_param, int_param, path_id, x_route
from .fields import EXPANSION_PARAMS, USER_PARAMS, post_expansions, time_param, tweet_fields
from .pagination import in_time_window, paginate
from .state import Post, Sandbox, User

_USERNAME = re.compile(r"^[A-Za-z0-9_]{1,15}$")
_TIMELINE_PARAMS = (
    "since_id",
    "until_id",
    "max_results",
    "pagination_token",
    "exclude",
    "start_time",
    "end_time",
    *EXPANSION_PARAMS,
)


# Spec 2.167's getUsersMentions parameters: the timeline's, without `exclude`.
_MENTIONS_PARAMS = tuple(name for name in _TIMELINE_PARAMS if name != "exclude")
# getUsersBookmarks takes only max_results (1-100), pagination_token and the field parameters.
_BOOKMARKS_PARAMS = ("max_results", "pagination_token", *EXPANSION_PARAMS)


def routes(sandbox: Sandbox) -> list[Route]:
    async def me(request: Request, user: User) -> tuple[int, dict[str, Any]]:
        check_query_params(request, USER_PARAMS)
        sandbox.charge_reads("user", [user.id], plans.USER_READ)
        return 200, {"data": user.public()}

    async def by_username(request: Request, user: User) -> tuple[int, dict[str, Any]]:
        check_query_params(request, USER_PARAMS)
        username = request.path_params["username"]
        if not _USERNAME.match(username):
            raise errors.invalid_request(
                f"The `username` query parameter value [{username}] does not match ^[A-Za-z0-9_]{{1,15}}$",
                {"username": [username]},
            )
        found = sandbox.user_by_username(username)
        if found is None:
            # X answers an unknown username with 200 and a partial error, not a 404.
            entry = errors.not_found_entry("user", "username", username)
            entry["detail"] = f"Could not find user with username: [{username}]."
            return 200, {"errors": [entry]}
        sandbox.charge_reads("user", [found.id], plans.USER_READ)
        return 200, {"data": found.public()}

    def post_page(
        request: Request, user: User, allowed: tuple[str, ...], posts_of: Callable[[str], list[Post]]
    ) -> tuple[int, dict[str, Any]]:
        """A user's timeline or mentions: one page, billed as Owned Reads when the user is the caller
        (pricing.mdx, "Owned Reads": /2/users/{id}/tweets and /mentions at $0.001; changelog 2026-04-16)."""
        check_query_params(request, allowed)
        user_id = path_id(request.path_params["id"], "id")
        max_results = int_param(request, "max_results", 5, 100, 10)
        since_id, until_id = id_param(request, "since_id"), id_param(request, "until_id")
        start, end = time_param(request, "start_time"), time_param(request, "end_time")
        fields, expansions = tweet_fields(request), post_expansions(request)
        if sandbox.user_by_id(user_id) is None:
            return 200, {"errors": [errors.not_found_entry("user", "id", user_id)]}
        page = paginate(
            in_time_window(posts_of(user_id), start, end),
            since_id=since_id,
            until_id=until_id,
            max_results=max_results,
            token=request.query_params.get("pagination_token"),
            token_parameter="pagination_token",
            with_previous=True,
        )
        owned = user_id == user.id
        sandbox.charge_reads(
            "owned-post" if owned else "post",
            [p.id for p in page.posts],
            plans.OWNED_READ if owned else plans.POST_READ,
        )
        return 200, {**sandbox.render_posts(page.posts, fields, expansions), "meta": page.meta}

    async def user_tweets(request: Request, user: User) -> tuple[int, dict[str, Any]]:
        return post_page(request, user, _TIMELINE_PARAMS, sandbox.user_posts)

    async def mentions(request: Request, user: User) -> tuple[int, dict[str, Any]]:
        return post_page(request, user, _MENTIONS_PARAMS, sandbox.mentions_of)

    async def bookmarks(request: Request, user: User) -> tuple[int, dict[str, Any]]:
        check_query_params(request, _BOOKMARKS_PARAMS)
        user_id = path_id(request.path_params["id"], "id")
        if user_id != user.id:
            # Bookmarks are private: X serves only the authenticated user's own.
            raise errors.forbidden("You are not permitted to view bookmarks of another user.")
        max_results = int_param(request, "max_results", 1, 100, 100)
        fields, expansions = tweet_fields(request), post_expansions(request)
        token = request.query_params.get("pagination_token")
        # Bookmarks are ordered by when they were made, not by post id: pages are offsets into that
        # order (the token is opaque to clients either way).
        ordered = sandbox.bookmarked_posts(user_id)
        offset = _offset(token)
        chunk = ordered[offset : offset + max_results]
        meta: dict[str, Any] = {"result_count": len(chunk)}
        if offset + max_results < len(ordered):
            meta["next_token"] = f"b{offset + max_results}"
        sandbox.charge_reads("owned-post", [p.id for p in chunk], plans.OWNED_READ)
        return 200, {**sandbox.render_posts(chunk, fields, expansions), "meta": meta}

    return [
        x_route(sandbox, "GET", "/2/users/me", config.GET_USERS_ME, me),
        x_route(sandbox, "GET", "/2/users/{id}/mentions", catalog.GET_MENTIONS, mentions),
        x_route(sandbox, "GET", "/2/users/{id}/bookmarks", catalog.GET_BOOKMARKS, bookmarks),
        x_route(sandbox, "GET", "/2/users/by/username/{username}", config.GET_USER_BY_USERNAME, by_username),
        x_route(sandbox, "GET", "/2/users/{id}/tweets", config.GET_USER_TWEETS, user_tweets),
    ]


def _offset(token: str | None) -> int:
    if token is None:
        return 0
    if not token.startswith("b") or not token[1:].isdigit():
        raise errors.invalid_request(
            f"The `pagination_token` query parameter value [{token}] is not a valid pagination token.",
            {"pagination_token": [token]},
        )
    return int(token[1:])
