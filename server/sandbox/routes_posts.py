"""Posts: create (with replies, quotes and polls), delete, look up, like and repost and their undoing,
recent search."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from . import catalog, config, errors, plans
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


# CreatePostsPoll (spec 2.167): 2-4 options of 1-25 characters, 5-10080 minutes, nothing else.
_POLL_PROPERTIES = frozenset({"options", "duration_minutes", "reply_settings"})
# CreatePostsRequest.reply_settings (spec 2.167).
_REPLY_SETTINGS = ("following", "mentionedUsers", "subscribers", "verified")
# "You can only provide one of ...": X's API Playground (xdevplatform/playground,
# internal/playground/handlers_unified.go at fe224d5) answers a request with more than one of these
# with a 400 in these words; spec 2.159 documented the same ("Poll ... mutually exclusive from Media,
# Quote Tweet Id, and Card URI").
_EXCLUSIVE = ("poll", "quote_tweet_id", "direct_message_deep_link", "media", "card_uri")
_LOOKUP_PARAMS = EXPANSION_PARAMS


def _poll_from(body: dict[str, Any]) -> dict[str, Any] | None:
    poll = body.get("poll")
    if poll is None:
        return None
    if not isinstance(poll, dict) or set(poll) - _POLL_PROPERTIES:
        raise errors.invalid_request("$.poll: must be an object with options and duration_minutes", {"poll": []})
    options = poll.get("options")
    if (
        not isinstance(options, list)
        or not 2 <= len(options) <= 4
        or not all(isinstance(o, str) and 1 <= len(o) <= 25 for o in options)
    ):
        raise errors.invalid_request(
            "$.poll.options: must be 2 to 4 strings of 1 to 25 characters", {"poll.options": [str(options)[:50]]}
        )
    minutes = poll.get("duration_minutes")
    if not isinstance(minutes, int) or isinstance(minutes, bool) or not 5 <= minutes <= 10080:
        raise errors.invalid_request(
            "$.poll.duration_minutes: must be an integer from 5 to 10080", {"poll.duration_minutes": [str(minutes)]}
        )
    return {"options": list(options), "duration_minutes": minutes}


def _reply_settings_from(body: dict[str, Any]) -> str | None:
    value = body.get("reply_settings")
    if value is not None and value not in _REPLY_SETTINGS:
        raise errors.invalid_request(
            f"$.reply_settings: must be one of {', '.join(_REPLY_SETTINGS)}", {"reply_settings": [str(value)]}
        )
    return value


def _check_exclusive(body: dict[str, Any]) -> None:
    given = [name for name in _EXCLUSIVE if body.get(name) not in (None, "", {}, [])]
    if len(given) > 1:
        raise errors.invalid_request(
            "You can only provide one of poll or quote_tweet_id or direct_message_deep_link or media or card_uri.",
            {name: [] for name in given},
        )


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
        _check_exclusive(body)
        post = sandbox.create_post(
            user,
            text,
            _media_ids_from(body),
            reply_to=_reply_to_from(body),
            quote_id=None if quote is None else _id_value(quote, "quote_tweet_id"),
            poll=_poll_from(body),
            reply_settings=_reply_settings_from(body),
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

    async def unlike(request: Request, user: User) -> tuple[int, dict[str, Any]]:
        path_user = path_id(request.path_params["id"], "id")
        sandbox.unlike(user, path_user, path_id(request.path_params["tweet_id"], "tweet_id"))
        return 200, {"data": {"liked": False}}

    async def unretweet(request: Request, user: User) -> tuple[int, dict[str, Any]]:
        path_user = path_id(request.path_params["id"], "id")
        sandbox.unretweet(user, path_user, path_id(request.path_params["source_tweet_id"], "source_tweet_id"))
        return 200, {"data": {"retweeted": False}}

    async def lookup(request: Request, user: User) -> tuple[int, dict[str, Any]]:
        check_query_params(request, _LOOKUP_PARAMS)
        post_id = path_id(request.path_params["id"], "id")
        fields, expansions = tweet_fields(request), post_expansions(request)
        post = sandbox.live_post(post_id)
        if post is None:
            # X answers a missing post with 200 and a partial error (spec 2.167: GetPostsByIdResponse
            # carries `errors`), as it does an unknown username.
            return 200, {"errors": [errors.not_found_entry("tweet", "id", post_id)]}
        sandbox.charge_reads("post", [post.id], plans.POST_READ)
        rendered = sandbox.render_posts([post], fields, expansions)
        return 200, {**rendered, "data": rendered["data"][0]}

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
        x_route(sandbox, "GET", "/2/tweets/{id}", catalog.GET_TWEET, lookup),
        x_route(sandbox, "DELETE", "/2/tweets/{id}", config.DELETE_TWEET, delete),
        x_route(sandbox, "DELETE", "/2/users/{id}/likes/{tweet_id}", catalog.DELETE_LIKE, unlike),
        x_route(sandbox, "DELETE", "/2/users/{id}/retweets/{source_tweet_id}", catalog.DELETE_RETWEET, unretweet),
        x_route(sandbox, "POST", "/2/users/{id}/likes", config.POST_LIKES, like),
        x_route(sandbox, "POST", "/2/users/{id}/retweets", config.POST_RETWEETS, retweet),
    ]
