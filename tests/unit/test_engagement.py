"""likePost and repostPost: /2/users/me once per client, then the action on the user's own path."""

from __future__ import annotations

import anyio
import httpx
import pytest
import respx
from anyio import wait_all_tasks_blocked

from xcourier.tools.client import XClient
from xcourier.tools.engagement import like_post, repost_post
from xcourier.tools.errors import ServerError
from xcourier.tools.users import UserDirectory

from .captured import BASE_URL, TOKEN, bearer, json_body
from .spec import validate_request_body

pytestmark = pytest.mark.anyio

ME_ID = "2244994945"
ME = {"data": {"id": ME_ID, "name": "X Dev", "username": "XDevelopers"}}
POST_ID = "1228393702244134912"


class GatedTokens:
    """Hands out the token only once the gate opens, so concurrent callers pile up at the same await."""

    def __init__(self) -> None:
        self.gate = anyio.Event()

    async def access_token(self) -> str:
        await self.gate.wait()
        return TOKEN

    async def refresh_after_unauthorized(self, rejected: str) -> str | None:
        return None


async def test_like_fetches_me_then_posts_the_tweet_id(x, client: XClient, users: UserDirectory):
    me = x.get("/2/users/me").respond(200, json=ME)
    likes = x.post(f"/2/users/{ME_ID}/likes").respond(200, json={"data": {"liked": True}})

    result = await like_post(client, users, POST_ID)

    assert me.call_count == 1
    assert not me.calls.last.request.url.query
    assert bearer(me.calls.last.request) == f"Bearer {TOKEN}"
    request = likes.calls.last.request
    assert request.method == "POST"
    assert bearer(request) == f"Bearer {TOKEN}"
    assert not request.url.query
    assert json_body(request) == {"tweet_id": POST_ID}
    validate_request_body("POST", "/2/users/{id}/likes", json_body(request))
    assert result.data.liked is True


async def test_repost_fetches_me_then_posts_the_tweet_id(x, client: XClient, users: UserDirectory):
    x.get("/2/users/me").respond(200, json=ME)
    retweets = x.post(f"/2/users/{ME_ID}/retweets").respond(200, json={"data": {"id": POST_ID, "retweeted": True}})

    result = await repost_post(client, users, POST_ID)

    request = retweets.calls.last.request
    assert request.method == "POST"
    assert bearer(request) == f"Bearer {TOKEN}"
    assert json_body(request) == {"tweet_id": POST_ID}
    validate_request_body("POST", "/2/users/{id}/retweets", json_body(request))
    assert (result.data.id, result.data.retweeted) == (POST_ID, True)


async def test_repost_response_with_rest_id_surfaces_as_id(x, client: XClient, users: UserDirectory):
    x.get("/2/users/me").respond(200, json=ME)
    x.post(f"/2/users/{ME_ID}/retweets").respond(200, json={"data": {"rest_id": POST_ID, "retweeted": True}})

    result = await repost_post(client, users, POST_ID)

    assert result.data.id == POST_ID
    assert result.model_dump() == {"data": {"id": POST_ID, "retweeted": True}}


async def test_like_fetches_me_once_per_client(x, client: XClient, users: UserDirectory):
    me = x.get("/2/users/me").respond(200, json=ME)
    likes = x.post(f"/2/users/{ME_ID}/likes").respond(200, json={"data": {"liked": True}})
    retweets = x.post(f"/2/users/{ME_ID}/retweets").respond(200, json={"data": {"id": POST_ID, "retweeted": True}})

    await like_post(client, users, POST_ID)
    await like_post(client, users, "1")
    await repost_post(client, users, POST_ID)

    assert me.call_count == 1
    assert (likes.call_count, retweets.call_count) == (2, 1)


async def test_concurrent_first_likes_share_one_me_request():
    tokens = GatedTokens()
    with respx.mock(base_url=BASE_URL, assert_all_called=True, assert_all_mocked=True) as x:
        me = x.get("/2/users/me").respond(200, json=ME)
        likes = x.post(f"/2/users/{ME_ID}/likes").respond(200, json={"data": {"liked": True}})
        async with XClient(tokens, base_url=BASE_URL) as client:
            users = UserDirectory(client)
            async with anyio.create_task_group() as tasks:
                for post_id in ("1", "2", "3", "4", "5"):
                    tasks.start_soon(like_post, client, users, post_id)
                await wait_all_tasks_blocked()  # all five are waiting: one on the token, four on the lock
                tokens.gate.set()

    assert me.call_count == 1
    assert sorted(json_body(call.request)["tweet_id"] for call in likes.calls) == ["1", "2", "3", "4", "5"]


async def test_a_failed_me_lookup_is_not_cached(x, client: XClient, users: UserDirectory):
    me = x.get("/2/users/me").mock(side_effect=[httpx.Response(503), httpx.Response(200, json=ME)])
    x.post(f"/2/users/{ME_ID}/likes").respond(200, json={"data": {"liked": True}})

    with pytest.raises(ServerError):
        await like_post(client, users, POST_ID)
    await like_post(client, users, POST_ID)

    assert me.call_count == 2
