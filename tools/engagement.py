"""likePost, repostPost and their undoing (unlikePost, unrepostPost): actions taken as the authenticated user."""

from __future__ import annotations

from . import validation
from .client import XClient
from .models import (
    LikeAnswer,
    LikedData,
    LikePostResult,
    RepostAnswer,
    RepostData,
    RepostPostResult,
    UnlikeAnswer,
    UnlikedData,
    UnlikePostResult,
    UnrepostAnswer,
    UnrepostedData,
    UnrepostPostResult,
    parse_response,
)
from .users import UserDirectory

LIKES = "/2/users/{id}/likes"
RETWEETS = "/2/users/{id}/retweets"
UNLIKE = "/2/users/{id}/likes/{tweet_id}"
UNREPOST = "/2/users/{id}/retweets/{source_tweet_id}"


async def like_post(client: XClient, users: UserDirectory, tweet_id: str) -> LikePostResult:
    """POST /2/users/{me}/likes."""
    post_id = validation.post_id(tweet_id, "tweet_id")
    me = await users.me()
    response = await client.request(
        "POST", LIKES, path_params={"id": me.id}, json={"tweet_id": post_id}, idempotent=True
    )
    answer = parse_response(LikeAnswer, response, f"POST {LIKES}")
    # X refuses a like it didn't make with an error status, so a 2xx without `liked` is a like.
    liked = answer.data.liked if answer.data is not None and answer.data.liked is not None else True
    return LikePostResult(data=LikedData(liked=liked))


async def repost_post(client: XClient, users: UserDirectory, tweet_id: str) -> RepostPostResult:
    """POST /2/users/{me}/retweets."""
    post_id = validation.post_id(tweet_id, "tweet_id")
    me = await users.me()
    response = await client.request(
        "POST", RETWEETS, path_params={"id": me.id}, json={"tweet_id": post_id}, idempotent=True
    )
    data = parse_response(RepostAnswer, response, f"POST {RETWEETS}").data
    # The answer's id is the reposted post's (spec 2.167: "The ID of the reposted Post."), which is
    # the tweet_id this call sent; a 2xx without `retweeted` means X did it, as for likes.
    reposted_id = data.id if data is not None and data.id is not None else post_id
    retweeted = data.retweeted if data is not None and data.retweeted is not None else True
    return RepostPostResult(data=RepostData(id=reposted_id, retweeted=retweeted))


async def unlike_post(client: XClient, users: UserDirectory, tweet_id: str) -> UnlikePostResult:
    """DELETE /2/users/{me}/likes/{tweet_id}. Undoing a like that isn't there is harmless: X answers
    liked=false either way (spec 2.167, unlikePost), so a lost answer is simply retried."""
    post_id = validation.post_id(tweet_id, "tweet_id")
    me = await users.me()
    response = await client.request("DELETE", UNLIKE, path_params={"id": me.id, "tweet_id": post_id})
    answer = parse_response(UnlikeAnswer, response, f"DELETE {UNLIKE}")
    # X refuses with an error status, so a 2xx without `liked` means the like is gone.
    liked = answer.data.liked if answer.data is not None and answer.data.liked is not None else False
    return UnlikePostResult(data=UnlikedData(liked=liked))


async def unrepost_post(client: XClient, users: UserDirectory, tweet_id: str) -> UnrepostPostResult:
    """DELETE /2/users/{me}/retweets/{source_tweet_id}: the post that was reposted, not the repost's own id."""
    post_id = validation.post_id(tweet_id, "tweet_id")
    me = await users.me()
    response = await client.request("DELETE", UNREPOST, path_params={"id": me.id, "source_tweet_id": post_id})
    answer = parse_response(UnrepostAnswer, response, f"DELETE {UNREPOST}")
    retweeted = answer.data.retweeted if answer.data is not None and answer.data.retweeted is not None else False
    return UnrepostPostResult(data=UnrepostedData(retweeted=retweeted))
