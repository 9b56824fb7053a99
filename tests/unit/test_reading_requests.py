"""The reading toolset: the exact requests X receives (query parameters held against spec 2.167), and how
its answers (generated from the spec) are read."""

from __future__ import annotations

import pytest
import respx

from xcourier.tools import reading
from xcourier.tools.client import XClient
from xcourier.tools.errors import InvalidInputError, UserNotFoundError
from xcourier.tools.users import UserDirectory

from .captured import TOKEN, bearer
from .spec import maximal_body, minimal_body, validate_query, validate_response_body

pytestmark = pytest.mark.anyio

ME_ID = "2244994945"
ME = {"data": {"id": ME_ID, "name": "X Dev", "username": "XDevelopers"}}
BOB_ID = "1700000000000000003"
POST_ID = "1460323737035677698"
FIELDS = {
    "post.fields": "created_at,conversation_id,public_metrics",
    "expansions": "author_id",
    "user.fields": "username",
}


def page(*ids: str, next_token: str | None = None) -> dict:
    body = {
        "data": [{"id": i, "text": f"post {i}", "author_id": BOB_ID, "edit_history_tweet_ids": [i]} for i in ids],
        "includes": {"users": [{"id": BOB_ID, "username": "bob", "name": "Bob"}]},
        "meta": {"result_count": len(ids), "newest_id": ids[0] if ids else None},
    }
    if next_token:
        body["meta"]["next_token"] = next_token
    return body


def query_of(route: respx.Route) -> dict[str, str]:
    return dict(route.calls.last.request.url.params)


async def test_get_post_asks_for_the_post_and_its_author(x, client: XClient):
    answer = {
        "data": {"id": POST_ID, "text": "hi", "author_id": BOB_ID, "edit_history_tweet_ids": [POST_ID]},
        "includes": {"users": [{"id": BOB_ID, "username": "bob", "name": "Bob"}]},
    }
    validate_response_body("GET", "/2/tweets/{id}", answer)
    route = x.get(f"/2/tweets/{POST_ID}").respond(200, json=answer)

    result = await reading.get_post(client, POST_ID)

    assert bearer(route.calls.last.request) == f"Bearer {TOKEN}"
    assert query_of(route) == FIELDS
    validate_query("GET", "/2/tweets/{id}", query_of(route))
    assert (result.data.author_username, result.data.url) == ("bob", f"https://x.com/bob/status/{POST_ID}")


async def test_get_post_reads_the_spec_s_fullest_answer(x, client: XClient):
    x.get(f"/2/tweets/{POST_ID}").respond(200, json=maximal_body("GET", "/2/tweets/{id}"))
    result = await reading.get_post(client, POST_ID)
    assert result.data.id.isdigit()


async def test_get_user_asks_for_the_public_profile_fields(x, client: XClient):
    answer = {"data": {"id": BOB_ID, "username": "bob", "name": "Bob", "description": "I post things"}}
    validate_response_body("GET", "/2/users/by/username/{username}", answer)
    route = x.get("/2/users/by/username/bob").respond(200, json=answer)

    result = await reading.get_user(client, "@bob")

    assert query_of(route) == {"user.fields": "created_at,description,location,public_metrics,protected,url,verified"}
    validate_query("GET", "/2/users/by/username/{username}", query_of(route))
    assert result.data.description == "I post things"


async def test_get_user_for_an_unknown_name_says_there_is_no_such_user(x, client: XClient):
    x.get("/2/users/by/username/ghost").respond(
        200,
        json={
            "errors": [
                {
                    "detail": "Could not find user with username: [ghost].",
                    "title": "Not Found Error",
                    "type": "https://api.x.com/2/problems/resource-not-found",
                }
            ]
        },
    )
    with pytest.raises(UserNotFoundError, match="There is no X user @ghost"):
        await reading.get_user(client, "ghost")


async def test_get_user_posts_sends_one_page_request_with_the_caller_s_cursor(x, client: XClient):
    x.get("/2/users/by/username/bob").respond(200, json={"data": {"id": BOB_ID, "username": "bob"}})
    route = x.get(f"/2/users/{BOB_ID}/tweets").respond(200, json=page("9", "8", next_token="tok2"))

    result = await reading.get_user_posts(
        client, UserDirectory(client), "bob", since_id="5", max_results=5, pagination_token="tok1"
    )

    assert query_of(route) == {**FIELDS, "since_id": "5", "max_results": "5", "pagination_token": "tok1"}
    validate_query("GET", "/2/users/{id}/tweets", query_of(route))
    assert ([p.id for p in result.posts], result.next_token, result.newest_id) == (["9", "8"], "tok2", "9")


async def test_search_sends_the_query_and_its_options(x, client: XClient):
    route = x.get("/2/tweets/search/recent").respond(200, json=page("7"))

    result = await reading.search_recent(
        client, " #cats -is:retweet ", since_id="3", max_results=10, next_token="n1", sort_order="recency"
    )

    assert query_of(route) == {
        "query": "#cats -is:retweet",
        **FIELDS,
        "since_id": "3",
        "max_results": "10",
        "next_token": "n1",
        "sort_order": "recency",
    }
    validate_query("GET", "/2/tweets/search/recent", query_of(route))
    assert result.posts[0].author_username == "bob"


async def test_mentions_and_bookmarks_read_the_signed_in_user_s_own(x, client: XClient):
    x.get("/2/users/me").respond(200, json=ME)
    mentions = x.get(f"/2/users/{ME_ID}/mentions").respond(200, json=page("6"))
    bookmarks = x.get(f"/2/users/{ME_ID}/bookmarks").respond(200, json=minimal_body("GET", "/2/users/{id}/bookmarks"))
    users = UserDirectory(client)

    await reading.get_mentions(client, users, max_results=5)
    empty = await reading.get_bookmarks(client, users, max_results=1, pagination_token="b1")

    assert query_of(mentions) == {**FIELDS, "max_results": "5"}
    validate_query("GET", "/2/users/{id}/mentions", query_of(mentions))
    assert query_of(bookmarks) == {**FIELDS, "max_results": "1", "pagination_token": "b1"}
    validate_query("GET", "/2/users/{id}/bookmarks", query_of(bookmarks))
    assert (empty.posts, empty.result_count, empty.next_token) == ([], 0, None)


async def test_a_page_with_an_unusable_post_keeps_the_others(x, client: XClient):
    body = page("9")
    body["data"].append({"id": "not-digits", "text": "?"})
    x.get("/2/tweets/search/recent").respond(200, json=body)
    result = await reading.search_recent(client, "cats")
    assert [p.id for p in result.posts] == ["9"]


@pytest.mark.parametrize(
    ("call", "says"),
    [
        (lambda c: reading.search_recent(c, "  "), "`query` is empty"),
        (lambda c: reading.search_recent(c, "a" * 513), "at most 512"),
        (lambda c: reading.search_recent(c, "cats", max_results=5), "from 10 to 100"),
        (lambda c: reading.search_recent(c, "cats", sort_order="oldest"), "recency or relevancy"),
        (lambda c: reading.get_post(c, "12ab"), "`id` must be a post id"),
        (lambda c: reading.get_user(c, "not a name"), "`username` must be an X username"),
    ],
)
async def test_bad_input_is_refused_before_x(x, client: XClient, call, says):
    with pytest.raises(InvalidInputError, match=says):
        await call(client)
