"""Posts: create, delete, like, repost, recent search."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from . import config, errors, plans
from .endpoint import check_query_params, id_param, int_param, json_body, path_id, x_route
from .fields import EXPANSION_PARAMS, post_expansions, time_param, tweet_fields
from .pagination import in_time_window, paginate
from .state import Sandbox, User

_SEARCH_PARAMS = (
    "query",
    "start_time",
    "end_time",
    "since_id",
    "until_id",
    "max_results",
    "next_token",
    "pagination_token",
    "sort_order",
    *EXPANSION_PARAMS,
)


# CreatePostsRequest in spec 2.167 (additionalProperties false): any other property is refused.
_CREATE_PROPERTIES = frozenset(
    {
        "card_uri",
        "community_id",
        "direct_message_deep_link",
        "edit_options",
        "for_super_followers_only",
        "geo",
        "made_with_ai",
        "media",
        "nullcast",
        "paid_partnership",
        "poll",
        "quote_tweet_id",
        "reply",
        "reply_settings",
        "share_with_followers",
        "text",
    }
)


def _id_value(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.isdigit() or len(value) > 19:
        raise errors.invalid_request(f"$.{where}: must be a string of 1 to 19 digits", {where: [str(value)]})
    return value


def _tweet_id_from(body: dict[str, Any]) -> str:
    return _id_value(body.get("tweet_id"), "tweet_id")


def _reply_to_from(body: dict[str, Any]) -> str | None:
    reply = body.get("reply")
    if reply is None:
        return None
    if not isinstance(reply, dict):
        raise errors.invalid_request("$.reply: must be an object", {"reply": [str(reply)]})
    return _id_value(reply.get("in_reply_to_tweet_id"), "reply.in_reply_to_tweet_id")


def _media_ids_from(body: dict[str, Any]) -> list[str] | None:
    media = body.get("media")
    if media is None:
        return None
    ids = media.get("media_ids") if isinstance(media, dict) else None
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
        raise errors.invalid_request(
            "$.media.media_ids: must be an array of 1 to 4 media id strings", {"media.media_ids": []}
        )
    return ids


def routes(sandbox: Sandbox) -> list[Route]:
    async def create(request: Request, user: User) -> tuple[int, dict[str, Any]]:
        body = await json_body(request)
        extra = sorted(set(body) - _CREATE_PROPERTIES)
        if extra:
            raise errors.invalid_request(
                f"$.{extra[0]}: is not defined in the schema and the schema does not allow additional properties",
                {name: [] for name in extra},
            )
        text = body.get("text")
        if text is not None and not isinstance(text, str):
            raise errors.invalid_request("$.text: must be a string", {"text": [str(text)]})
        quote = body.get("quote_tweet_id")
        post = sandbox.create_post(
            user,
            text,
            _media_ids_from(body),
            reply_to=_reply_to_from(body),
            quote_id=None if quote is None else _id_value(quote, "quote_tweet_id"),
        )
        return 201, {"data": post.render(set())}

    async def delete(request: Request, user: User) -> tuple[int, dict[str, Any]]:
        sandbox.delete_post(user, path_id(request.path_params["id"], "id"))
        return 200, {"data": {"deleted": True}}

    async def like(request: Request, user: User) -> tuple[int, dict[str, Any]]:
        path_user = path_id(request.path_params["id"], "id")
        sandbox.like(user, path_user, _tweet_id_from(await json_body(request)))
        return 200, {"data": {"liked": True}}

    async def retweet(request: Request, user: User) -> tuple[int, dict[str, Any]]:
        path_user = path_id(request.path_params["id"], "id")
        tweet_id = _tweet_id_from(await json_body(request))
        sandbox.retweet(user, path_user, tweet_id)
        # Spec 2.167's RepostPostResponseData requires `rest_id` and `retweeted`; X answered `id`
        # before 2.167 and clients in the field read it, so the sandbox sends both (valid under 2.167).
        return 200, {"data": {"id": tweet_id, "rest_id": tweet_id, "retweeted": True}}

    async def search(request: Request, user: User) -> tuple[int, dict[str, Any]]:
        check_query_params(request, _SEARCH_PARAMS)
        query = request.query_params.get("query")
        if not query:
            raise errors.invalid_request("The `query` query parameter can not be empty", {"query": [""]})
        max_results = int_param(request, "max_results", 10, 100, 10)
        since_id, until_id = id_param(request, "since_id"), id_param(request, "until_id")
        start, end = time_param(request, "start_time"), time_param(request, "end_time")
        fields, expansions = tweet_fields(request), post_expansions(request)
        sandbox.check_search_since_id(since_id)
        token_name = "next_token" if "next_token" in request.query_params else "pagination_token"
        posts = in_time_window(sandbox.search_recent(query), start, end)
        page = paginate(
            posts,
            since_id=since_id,
            until_id=until_id,
            max_results=max_results,
            token=request.query_params.get(token_name),
            token_parameter=token_name,
            with_previous=False,
        )
        sandbox.charge_reads("post", [p.id for p in page.posts], plans.POST_READ)
        return 200, {**sandbox.render_posts(page.posts, fields, expansions), "meta": page.meta}

    return [
        x_route(sandbox, "POST", "/2/tweets", config.POST_TWEETS, create),
        x_route(sandbox, "GET", "/2/tweets/search/recent", config.GET_SEARCH_RECENT, search),
        x_route(sandbox, "DELETE", "/2/tweets/{id}", config.DELETE_TWEET, delete),
        x_route(sandbox, "POST", "/2/users/{id}/likes", config.POST_LIKES, like),
        x_route(sandbox, "POST", "/2/users/{id}/retweets", config.POST_RETWEETS, retweet),
    ]
