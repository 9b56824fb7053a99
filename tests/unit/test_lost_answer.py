"""createPost after a lost answer: the account is looked at, and only this request's post is taken for it.

X serves (respx) the account's newest posts as X shapes them: links shortened to t.co with
`entities.urls[].expanded_url`, a t.co link appended for attached media (with its `media_key`), and
`attachments.media_keys` ("<type>_<media id>"). Each served page is checked against X's spec (2.167).
"""

from __future__ import annotations

import time
from email.utils import formatdate
from typing import Any

import httpx
import pytest
import respx

from xcourier.tools.client import XClient
from xcourier.tools.errors import NotSentError, OutcomeUnknownError
from xcourier.tools.media import MediaLoader
from xcourier.tools.posts import CLOCK_ALLOWANCE, RecoveredPost, create_post

from .captured import PNG, image_entry
from .spec import validate_query, validate_response_body

pytestmark = pytest.mark.anyio

ME = {"data": {"id": "42", "username": "me", "name": "Me"}}
_EPOCH_MS = 1288834974657


def snowflake(epoch_seconds: float, sequence: int = 0) -> str:
    return str(((int(epoch_seconds * 1000) - _EPOCH_MS) << 22) | sequence)


def post(post_id: str, text: str, *, links: list[dict[str, Any]] | None = None, media: list[str] | None = None) -> dict:
    shown: dict[str, Any] = {"id": post_id, "text": text, "edit_history_tweet_ids": [post_id]}
    if links:
        shown["entities"] = {"urls": links}
    if media:
        shown["attachments"] = {"media_keys": media}
    return shown


def link(tco: str, expanded: str, text: str, *, media_key: str | None = None) -> dict[str, Any]:
    start = text.index(tco)
    entity: dict[str, Any] = {"start": start, "end": start + len(tco), "url": tco, "expanded_url": expanded}
    if media_key:
        entity["media_key"] = media_key
    return entity


def serve(x: respx.MockRouter, posts: list[dict], headers: dict[str, str] | None = None) -> respx.Route:
    """The post is sent and its answer lost; the account then shows `posts` (newest first, as X orders them)."""
    x.post("/2/tweets").mock(side_effect=httpx.ReadTimeout("timed out"))
    x.get("/2/users/me").respond(200, json=ME)
    page: dict[str, Any] = {"meta": {"result_count": len(posts)}}
    if posts:
        page = {"data": posts, "meta": {"result_count": len(posts), "newest_id": posts[0]["id"]}}
    validate_response_body("GET", "/2/users/{id}/tweets", page)
    return x.get("/2/users/42/tweets").respond(200, json=page, headers=headers or {})


def later(seconds: float = 1.0) -> float:
    """A moment after the call under test will have sent its post."""
    return time.time() + seconds


async def test_the_lookup_asks_for_what_tells_posts_apart(x, client: XClient):
    route = serve(x, [])

    with pytest.raises(OutcomeUnknownError):
        await create_post(client, MediaLoader(), text="hello")

    params = dict(route.calls.last.request.url.params)
    assert params == {"max_results": "10", "post.fields": "created_at,entities,attachments"}
    validate_query("GET", "/2/users/{id}/tweets", params)


async def test_a_server_that_refuses_post_fields_is_asked_with_tweet_fields(x, client: XClient):
    x.post("/2/tweets").mock(side_effect=httpx.ReadTimeout("timed out"))
    x.get("/2/users/me").respond(200, json=ME)
    new_id = snowflake(later())
    route = x.get("/2/users/42/tweets").mock(
        side_effect=[
            httpx.Response(400, json={"title": "Invalid Request", "detail": "The query parameters [post.fields] ..."}),
            httpx.Response(200, json={"data": [post(new_id, "hello")], "meta": {"result_count": 1}}),
        ]
    )

    result = await create_post(client, MediaLoader(), text="hello")

    assert isinstance(result, RecoveredPost) and result.data.id == new_id
    assert dict(route.calls.last.request.url.params) == {
        "max_results": "10",
        "tweet.fields": "created_at,entities,attachments",
    }


async def test_an_earlier_post_whose_link_differs_is_never_taken_for_the_lost_one(x, client: XClient):
    # The measured misreport: "report https://example.com/2" was reported created with the id of
    # an earlier "report https://example.com/1". Both read "report https://t.co/..." on X.
    earlier_text = "report https://t.co/AAAAAAAAAA"
    earlier = post(
        snowflake(time.time() - 60),
        earlier_text,
        links=[link("https://t.co/AAAAAAAAAA", "https://example.com/1", earlier_text)],
    )
    serve(x, [earlier])

    with pytest.raises(OutcomeUnknownError):
        await create_post(client, MediaLoader(), text="report https://example.com/2")


async def test_the_lost_post_is_found_by_its_expanded_link(x, client: XClient):
    earlier_text, new_text = "report https://t.co/AAAAAAAAAA", "report https://t.co/BBBBBBBBBB"
    new_id = snowflake(later())
    serve(
        x,
        [
            post(new_id, new_text, links=[link("https://t.co/BBBBBBBBBB", "https://example.com/2", new_text)]),
            post(
                snowflake(later(0.5)),
                earlier_text,
                links=[link("https://t.co/AAAAAAAAAA", "https://example.com/1", earlier_text)],
            ),
        ],
    )

    result = await create_post(client, MediaLoader(), text="report https://example.com/2")

    assert isinstance(result, RecoveredPost)
    assert (result.data.id, result.data.text) == (new_id, new_text)


async def test_a_same_text_post_made_before_the_request_was_sent_is_not_this_one(x, client: XClient):
    serve(x, [post(snowflake(time.time() - CLOCK_ALLOWANCE - 30), "same words")])

    with pytest.raises(OutcomeUnknownError):
        await create_post(client, MediaLoader(), text="same words")


async def test_two_posts_that_could_each_be_it_leave_the_outcome_unknown(x, client: XClient):
    serve(x, [post(snowflake(later(), 1), "twice?"), post(snowflake(later(), 0), "twice?")])

    with pytest.raises(OutcomeUnknownError):
        await create_post(client, MediaLoader(), text="twice?")


async def test_a_link_written_without_a_scheme_matches_its_expansion(x, client: XClient):
    text = "see https://t.co/CCCCCCCCCC & more"
    new_id = snowflake(later())
    # X expands a bare domain to http:// and sends & HTML-escaped.
    shown = "see https://t.co/CCCCCCCCCC &amp; more"
    serve(x, [post(new_id, shown, links=[link("https://t.co/CCCCCCCCCC", "http://example.com/x", text)])])

    result = await create_post(client, MediaLoader(), text="see example.com/x & more")

    assert isinstance(result, RecoveredPost) and result.data.id == new_id


async def test_a_media_only_post_is_recognised_by_its_media_key_not_by_being_media_only(x, client: XClient):
    x.post("/2/media/upload").respond(
        200, json={"data": {"id": "1100000000000000002", "media_key": "3_1100000000000000002"}}
    )
    other_tco, ours_tco = "https://t.co/DDDDDDDDDD", "https://t.co/EEEEEEEEEE"
    ours_id = snowflake(later())
    serve(
        x,
        [
            post(
                ours_id,
                ours_tco,
                links=[
                    link(
                        ours_tco,
                        f"https://x.com/me/status/{ours_id}/photo/1",
                        ours_tco,
                        media_key="3_1100000000000000002",
                    )
                ],
                media=["3_1100000000000000002"],
            ),
            post(
                snowflake(later(0.5)),
                other_tco,
                links=[
                    link(other_tco, "https://x.com/me/status/1/photo/1", other_tco, media_key="3_1100000000000000001")
                ],
                media=["3_1100000000000000001"],
            ),
        ],
    )

    result = await create_post(client, MediaLoader(), media=[image_entry(PNG)])

    assert isinstance(result, RecoveredPost) and result.data.id == ours_id


async def test_a_media_only_post_with_other_media_is_not_this_one(x, client: XClient):
    x.post("/2/media/upload").respond(
        200, json={"data": {"id": "1100000000000000002", "media_key": "3_1100000000000000002"}}
    )
    tco = "https://t.co/DDDDDDDDDD"
    serve(x, [post(snowflake(later()), tco, media=["3_1100000000000000001"])])

    with pytest.raises(OutcomeUnknownError):
        await create_post(client, MediaLoader(), media=[image_entry(PNG)])


async def test_the_media_link_x_appends_is_not_part_of_the_text_even_without_entities(x, client: XClient):
    x.post("/2/media/upload").respond(
        200, json={"data": {"id": "1100000000000000002", "media_key": "3_1100000000000000002"}}
    )
    ours_id = snowflake(later())
    serve(x, [post(ours_id, "look at this https://t.co/FFFFFFFFFF", media=["3_1100000000000000002"])])

    result = await create_post(client, MediaLoader(), text="look at this", media=[image_entry(PNG)])

    assert isinstance(result, RecoveredPost) and result.data.id == ours_id


async def test_a_t_co_link_x_says_nothing_about_is_not_guessed(x, client: XClient):
    serve(x, [post(snowflake(later()), "report https://t.co/BBBBBBBBBB")])

    with pytest.raises(OutcomeUnknownError):
        await create_post(client, MediaLoader(), text="report https://example.com/2")


async def test_x_s_clock_is_read_from_its_date_header(x, client: XClient):
    # This machine's clock runs 2 minutes ahead of X's: the new post's id is stamped 2 minutes
    # "before" the local send time. X's Date header says how far behind X is.
    behind = 120.0
    new_id = snowflake(time.time() - behind + 1)
    serve(x, [post(new_id, "clock skew")], headers={"date": formatdate(time.time() - behind, usegmt=True)})

    result = await create_post(client, MediaLoader(), text="clock skew")

    assert isinstance(result, RecoveredPost) and result.data.id == new_id


async def test_without_x_s_clock_a_post_stamped_long_before_the_send_is_not_taken(x, client: XClient):
    serve(x, [post(snowflake(time.time() - 120.0 + 1), "clock skew")])

    with pytest.raises(OutcomeUnknownError):
        await create_post(client, MediaLoader(), text="clock skew")


async def test_a_post_that_never_left_is_not_looked_for(x, client: XClient):
    x.post("/2/tweets").mock(side_effect=httpx.ConnectError("[Errno 111] Connection refused"))

    with pytest.raises(NotSentError):
        await create_post(client, MediaLoader(), text="hello")

    assert len(x.calls) == 1
