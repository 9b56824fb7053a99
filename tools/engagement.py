"""likePost and repostPost: actions taken as the authenticated user."""

from __future__ import annotations

from . import validation
from .client import XClient
from .models import LikePostResult, RepostPostResult, parse_response
from .users import UserDirectory


async def like_post(client: XClient, users: UserDirectory, tweet_id: str) -> LikePostResult:
    """POST /2/users/{me}/likes."""
    post_id = validation.post_id(tweet_id, "tweet_id")
    me = await users.me()
    response = await client.request(
        "POST", "/2/users/{id}/likes", path_params={"id": me.id}, json={"tweet_id": post_id}, idempotent=True
    )
    return parse_response(LikePostResult, response, "POST /2/users/{id}/likes")


async def repost_post(client: XClient, users: UserDirectory, tweet_id: str) -> RepostPostResult:
    """POST /2/users/{me}/retweets."""
    post_id = validation.post_id(tweet_id, "tweet_id")
    me = await users.me()
    response = await client.request(
        "POST", "/2/users/{id}/retweets", path_params={"id": me.id}, json={"tweet_id": post_id}, idempotent=True
    )
    return parse_response(RepostPostResult, response, "POST /2/users/{id}/retweets")
