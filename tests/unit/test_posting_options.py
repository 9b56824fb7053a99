"""createPost's replies, quotes, polls and reply settings; createThread; unlikePost and unrepostPost: the exact
requests X receives, held against spec 2.167."""

from __future__ import annotations

import httpx
import pytest
import respx

from xcourier.tools.client import XClient
from xcourier.tools.engagement import unlike_post, unrepost_post
from xcourier.tools.errors import QUOTES_NEED_ENTERPRISE, ForbiddenError, InvalidInputError
from xcourier.tools.media import MediaLoader
from xcourier.tools.models import Poll, ThreadPost
from xcourier.tools.posts import PostOptions, create_post, create_thread
from xcourier.tools.users import UserDirectory

from .captured import PNG, TOKEN, bearer, image_entry, json_body
from .spec import validate_request_body, validate_response_body

pytestmark = pytest.mark.anyio

ME_ID = "2244994945"
ME = {"data": {"id": ME_ID, "name": "X Dev", "username": "XDevelopers"}}
POST_ID = "1445880548472328192"
TARGET = "1228393702244134912"


def created(post_id: str, text: str = "hello") -> httpx.Response:
    return httpx.Response(201, json={"data": {"id": post_id, "text": text, "edit_history_tweet_ids": [post_id]}})


async def post_with(x: respx.MockRouter, client: XClient, loader: MediaLoader, text: str, **options) -> dict:
    route = x.post("/2/tweets").mock(return_value=created(POST_ID, text))
    await create_post(client, loader, text=text, options=PostOptions(**options))
    body = json_body(route.calls.last.request)
    validate_request_body("POST", "/2/tweets", body)
    return body


async def test_a_reply_sends_reply_in_reply_to_tweet_id(x, client: XClient, loader: MediaLoader):
    body = await post_with(x, client, loader, "a reply", reply_to=TARGET)
    assert body == {"text": "a reply", "reply": {"in_reply_to_tweet_id": TARGET}}


@pytest.mark.parametrize(
    "quote",
    [TARGET, f"https://x.com/XDevelopers/status/{TARGET}", f"twitter.com/i/web/status/{TARGET}?s=20"],
)
async def test_a_quote_sends_quote_tweet_id_from_an_id_or_a_url(x, client: XClient, loader: MediaLoader, quote):
    body = await post_with(x, client, loader, "look at this", quote=quote)
    assert body == {"text": "look at this", "quote_tweet_id": TARGET}


async def test_a_poll_and_reply_settings_are_sent_as_the_spec_names_them(x, client: XClient, loader: MediaLoader):
    poll = Poll(options=[" Tea ", "Coffee"], duration_minutes=60)
    body = await post_with(x, client, loader, "Morning drink?", poll=poll, reply_settings="mentionedUsers")
    assert body == {
        "text": "Morning drink?",
        "poll": {"options": ["Tea", "Coffee"], "duration_minutes": 60},
        "reply_settings": "mentionedUsers",
    }


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"poll": Poll(options=["a", "b"], duration_minutes=60), "quote": TARGET}, "poll and quote"),
        ({"poll": Poll(options=["a", "a"], duration_minutes=60)}, "two poll options are the same"),
        ({"poll": Poll(options=["a", "b"], duration_minutes=10081)}, "got 10081"),
        ({"reply_settings": "everyone"}, "`reply_settings` is one of following, mentionedUsers"),
        ({"quote": "https://x.com/a/statuses/x1"}, "`quote` must be a post id"),
    ],
)
async def test_invalid_options_never_reach_x(x, client: XClient, loader: MediaLoader, options, says):
    with pytest.raises(InvalidInputError, match=says):
        await create_post(client, loader, text="q?", options=PostOptions(**options))


async def test_media_and_a_quote_are_refused_together(x, client: XClient, loader: MediaLoader):
    with pytest.raises(InvalidInputError, match="quote and media"):
        await create_post(client, loader, text="both", media=[image_entry(PNG)], options=PostOptions(quote=TARGET))


async def test_a_refused_quote_is_read_as_the_2026_rule(x, client: XClient, loader: MediaLoader):
    x.post("/2/tweets").respond(
        403,
        json={
            "title": "Client Forbidden",
            "detail": "This endpoint is not available on your plan.",
            "type": "https://api.x.com/2/problems/client-forbidden",
            "reason": "client-not-enrolled",
            "status": 403,
        },
    )
    with pytest.raises(ForbiddenError) as refused:
        await create_post(client, loader, text="quote", options=PostOptions(quote=TARGET))
    assert refused.value.reason == QUOTES_NEED_ENTERPRISE


async def test_a_thread_posts_each_reply_to_the_post_before(x, client: XClient, loader: MediaLoader):
    route = x.post("/2/tweets").mock(side_effect=[created("11"), created("12"), created("13")])
    users = UserDirectory(client)
    thread = await create_thread(
        client, loader, users, [ThreadPost(text="one"), ThreadPost(text="two"), ThreadPost(text="three")]
    )
    bodies = [json_body(call.request) for call in route.calls]
    for body in bodies:
        validate_request_body("POST", "/2/tweets", body)
    assert bodies == [
        {"text": "one"},
        {"text": "two", "reply": {"in_reply_to_tweet_id": "11"}},
        {"text": "three", "reply": {"in_reply_to_tweet_id": "12"}},
    ]
    assert (thread.last_id, thread.stopped_at) == ("13", None)


async def test_a_thread_continued_from_a_post_replies_to_it_first(x, client: XClient, loader: MediaLoader):
    route = x.post("/2/tweets").mock(return_value=created("21"))
    await create_thread(client, loader, UserDirectory(client), [ThreadPost(text="more")], continue_from=TARGET)
    assert json_body(route.calls.last.request) == {"text": "more", "reply": {"in_reply_to_tweet_id": TARGET}}


async def test_a_thread_stops_at_the_first_refused_post_and_sends_nothing_after(x, client: XClient, loader):
    duplicate = {"detail": "You are not allowed to create a Tweet with duplicate content.", "status": 403}
    route = x.post("/2/tweets").mock(side_effect=[created("31"), httpx.Response(403, json=duplicate)])
    thread = await create_thread(client, loader, UserDirectory(client), [ThreadPost(text=t) for t in ("a", "b", "c")])
    assert route.call_count == 2
    assert ([c.data.id for c in thread.created], thread.stopped_at) == (["31"], 1)
    assert isinstance(thread.error, ForbiddenError)


async def test_unlike_deletes_the_like_on_the_user_s_own_path(x, client: XClient, users: UserDirectory):
    x.get("/2/users/me").respond(200, json=ME)
    answer = {"data": {"liked": False}}
    validate_response_body("DELETE", "/2/users/{id}/likes/{tweet_id}", answer)
    route = x.delete(f"/2/users/{ME_ID}/likes/{TARGET}").respond(200, json=answer)

    result = await unlike_post(client, users, TARGET)

    request = route.calls.last.request
    assert (request.method, request.content, bearer(request)) == ("DELETE", b"", f"Bearer {TOKEN}")
    assert not request.url.query
    assert result.model_dump() == {"data": {"liked": False}}


async def test_unrepost_deletes_the_repost_by_the_source_post_id(x, client: XClient, users: UserDirectory):
    x.get("/2/users/me").respond(200, json=ME)
    answer = {"data": {"retweeted": False}}
    validate_response_body("DELETE", "/2/users/{id}/retweets/{source_tweet_id}", answer)
    route = x.delete(f"/2/users/{ME_ID}/retweets/{TARGET}").respond(200, json=answer)

    result = await unrepost_post(client, users, TARGET)

    assert route.calls.last.request.method == "DELETE"
    assert result.model_dump() == {"data": {"retweeted": False}}


async def test_an_undo_answer_without_data_means_it_is_undone(x, client: XClient, users: UserDirectory):
    x.get("/2/users/me").respond(200, json=ME)
    x.delete(f"/2/users/{ME_ID}/retweets/{TARGET}").respond(200, json={})
    assert (await unrepost_post(client, users, TARGET)).data.retweeted is False
