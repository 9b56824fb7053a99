"""The sandbox's polls, reply settings, undo endpoints, post lookup, mentions, bookmarks and search operators,
each answer held against X's spec 2.167."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from xcourier.server.sandbox import Sandbox

from .helpers import ALICE_ID, BOB_ID, DEMO_ID, INVALID, admin_post, upload_png
from .openapi_check import validate_request, validate_response


def checked(response: httpx.Response, method: str, template: str) -> dict:
    validate_response(method, template, response.status_code, response.json(), response.headers["content-type"])
    return response.json()


def create(x: httpx.Client, body: dict, *, valid: bool = True) -> httpx.Response:
    if valid:
        validate_request("POST", "/2/tweets", body)
    return x.post("/2/tweets", json=body, extensions={} if valid else INVALID)


def test_a_poll_and_reply_settings_are_kept_and_shown(x: httpx.Client, sandbox: Sandbox) -> None:
    body = {
        "text": "Lunch?",
        "poll": {"options": ["Soup", "Salad"], "duration_minutes": 30},
        "reply_settings": "following",
    }
    response = create(x, body)
    assert response.status_code == 201
    post_id = response.json()["data"]["id"]
    shown = checked(
        x.get(f"/2/tweets/{post_id}", params={"tweet.fields": "reply_settings,attachments"}), "GET", "/2/tweets/{id}"
    )
    assert shown["data"]["reply_settings"] == "following"
    assert len(shown["data"]["attachments"]["poll_ids"]) == 1
    assert sandbox.posts[post_id].poll["options"] == ["Soup", "Salad"]


@pytest.mark.parametrize(
    "poll",
    [
        {"options": ["only"], "duration_minutes": 30},
        {"options": ["a", "b"], "duration_minutes": 4},
        {"options": ["a", "x" * 26], "duration_minutes": 30},
        {"options": ["a", "b"], "duration_minutes": 30, "colour": "red"},
    ],
)
def test_a_poll_outside_the_spec_is_a_400(x: httpx.Client, poll: dict) -> None:
    response = create(x, {"text": "q", "poll": poll}, valid=False)
    assert checked(response, "POST", "/2/tweets")["title"] == "Invalid Request"


def test_a_poll_with_media_is_refused_as_x_s_playground_refuses_it(x: httpx.Client) -> None:
    media_id = upload_png(x)
    body = {"text": "q", "poll": {"options": ["a", "b"], "duration_minutes": 30}, "media": {"media_ids": [media_id]}}
    response = create(x, body)
    assert response.status_code == 400
    assert "You can only provide one of poll or quote_tweet_id" in response.json()["errors"][0]["message"]


def test_an_unknown_reply_setting_is_a_400(x: httpx.Client) -> None:
    assert create(x, {"text": "hi", "reply_settings": "everyone"}, valid=False).status_code == 400


def test_unlike_and_unrepost_answer_as_the_spec_says_and_are_idempotent(
    admin: httpx.Client, client_for: Callable[..., httpx.Client], sandbox: Sandbox
) -> None:
    admin.post("/_sandbox/plan", json={"plan": "enterprise"}).raise_for_status()
    x = client_for()
    target = admin_post(admin, "alice", "undo me")
    x.post(f"/2/users/{DEMO_ID}/likes", json={"tweet_id": target}).raise_for_status()
    x.post(f"/2/users/{DEMO_ID}/retweets", json={"tweet_id": target}).raise_for_status()
    for _ in range(2):
        unliked = x.delete(f"/2/users/{DEMO_ID}/likes/{target}")
        unreposted = x.delete(f"/2/users/{DEMO_ID}/retweets/{target}")
        assert checked(unliked, "DELETE", "/2/users/{id}/likes/{tweet_id}") == {"data": {"liked": False}}
        assert checked(unreposted, "DELETE", "/2/users/{id}/retweets/{source_tweet_id}") == {
            "data": {"retweeted": False}
        }
    assert not sandbox.likes and not sandbox.retweets


def test_unlike_on_a_self_serve_plan_is_refused_like_a_like(x: httpx.Client, admin: httpx.Client) -> None:
    target = admin_post(admin, "alice", "no likes on pay-per-use")
    response = x.delete(f"/2/users/{DEMO_ID}/likes/{target}")
    assert checked(response, "DELETE", "/2/users/{id}/likes/{tweet_id}")["status"] == 403


def test_undoing_on_behalf_of_another_user_is_forbidden(x: httpx.Client, admin: httpx.Client) -> None:
    target = admin_post(admin, "bob", "not yours")
    assert x.delete(f"/2/users/{ALICE_ID}/retweets/{target}").status_code == 403


def test_post_lookup_answers_a_missing_post_with_a_partial_error(x: httpx.Client, admin: httpx.Client) -> None:
    found = checked(
        x.get(f"/2/tweets/{admin_post(admin, 'bob', 'look me up')}", params={"expansions": "author_id"}),
        "GET",
        "/2/tweets/{id}",
    )
    assert found["includes"]["users"][0]["username"] == "bob"
    missing = checked(x.get("/2/tweets/1"), "GET", "/2/tweets/{id}")
    assert missing["errors"][0]["resource_type"] == "tweet"


def test_mentions_are_the_posts_naming_the_user(x: httpx.Client, admin: httpx.Client) -> None:
    mention = admin_post(admin, "bob", "hi @xcourier_demo")
    admin_post(admin, "bob", "hi @alice")
    body = checked(x.get(f"/2/users/{DEMO_ID}/mentions", params={"max_results": 5}), "GET", "/2/users/{id}/mentions")
    assert [p["id"] for p in body["data"]] == [mention]


def test_bookmarks_page_newest_bookmark_first_and_are_private(
    x: httpx.Client, admin: httpx.Client, sandbox: Sandbox
) -> None:
    ids = [admin_post(admin, "bob", f"bookmark {n}") for n in range(3)]
    demo = sandbox.user_by_username("xcourier_demo")
    for post_id in ids:
        sandbox.bookmark(demo, post_id)
    first = checked(x.get(f"/2/users/{DEMO_ID}/bookmarks", params={"max_results": 2}), "GET", "/2/users/{id}/bookmarks")
    rest = checked(
        x.get(
            f"/2/users/{DEMO_ID}/bookmarks", params={"max_results": 2, "pagination_token": first["meta"]["next_token"]}
        ),
        "GET",
        "/2/users/{id}/bookmarks",
    )
    assert [p["id"] for p in first["data"] + rest["data"]] == ids[::-1]
    assert x.get(f"/2/users/{BOB_ID}/bookmarks").status_code == 403


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("from:alice #cats", ["alice #cats"]),
        ('"quiet morning" OR from:bob', ["bob replies", "bob dogs", "alice quiet morning"]),
        ("(from:alice OR from:bob) -has:links", ["bob replies", "bob dogs", "alice quiet morning", "alice #cats"]),
        ("to:alice is:reply", ["bob replies"]),
    ],
)
def test_search_understands_the_operators_xcourier_documents(
    x: httpx.Client, admin: httpx.Client, sandbox: Sandbox, query: str, expected: list[str]
) -> None:
    alice, bob = sandbox.user_by_username("alice"), sandbox.user_by_username("bob")
    cats = sandbox.create_post(alice, "alice #cats", None, via_api=False)
    sandbox.create_post(alice, "alice quiet morning", None, via_api=False)
    sandbox.create_post(alice, "alice link https://example.com", None, via_api=False)
    sandbox.create_post(bob, "bob dogs", None, via_api=False)
    sandbox.create_post(bob, "bob replies", None, reply_to=cats.id, via_api=False)
    body = checked(x.get("/2/tweets/search/recent", params={"query": query}), "GET", "/2/tweets/search/recent")
    found = [p["text"] for p in body.get("data", []) if p["text"].startswith(("alice ", "bob "))]
    assert found == expected


@pytest.mark.parametrize("query", ["from:", "lang:en cats", "(from:alice", "cats OR"])
def test_search_refuses_what_it_does_not_model(x: httpx.Client, query: str) -> None:
    response = x.get("/2/tweets/search/recent", params={"query": query})
    assert checked(response, "GET", "/2/tweets/search/recent")["title"] == "Invalid Request"
