"""Every X endpoint the sandbox serves, success and error, checked against X's OpenAPI spec.

The spec checks themselves run in the client hooks (conftest.py) on every request and response of
every test; this scenario makes sure each served operation is exercised at least once here too."""

from __future__ import annotations

import httpx
import pytest

from .conftest import VALIDATED, template_of
from .helpers import ALICE_ID, CAROL_ID, DEMO_ID, GIF, admin_post, upload_png, upload_png_json
from .openapi_check import validate_request, validate_response


def test_every_served_operation_conforms_in_success_and_error(x: httpx.Client, client_for, admin: httpx.Client) -> None:
    VALIDATED.clear()
    x.get("/2/users/me")
    client_for(token="nope").get("/2/users/me")
    x.get("/2/users/by/username/alice")
    x.get("/2/users/by/username/nobody")
    x.get("/2/users/by/username/no-such-name!")
    x.get(f"/2/users/{ALICE_ID}/tweets", params={"tweet.fields": "created_at,author_id", "max_results": 5})
    x.get(f"/2/users/{ALICE_ID}/tweets", params={"post.fields": "created_at,paid_partnership", "max_results": 5})
    x.get(f"/2/users/{ALICE_ID}/tweets", params={"max_results": 1})
    x.get(f"/2/users/{CAROL_ID}/tweets")
    x.get("/2/tweets/search/recent", params={"query": "from:alice OR from:bob"})
    x.get("/2/tweets/search/recent", params={"query": "cats"})
    x.get("/2/tweets/search/recent", params={"query": "from:alice", "since_id": "1"})
    x.get("/2/tweets/search/recent", params={"query": "from:alice OR " * 60 + "from:bob"})
    post = x.post("/2/tweets", json={"text": "conformance"}).json()["data"]["id"]
    post_by_alice = admin_post(admin, "alice", "no summons here")
    x.post("/2/tweets", json={"text": "conformance"})
    x.post("/2/tweets", json={"text": "x" * 300})
    x.post(f"/2/users/{DEMO_ID}/likes", json={"tweet_id": post})  # refused on pay-per-use
    x.post("/2/tweets", json={"text": "reply", "reply": {"in_reply_to_tweet_id": post_by_alice}})
    x.post("/2/tweets", json={"text": "$ONE and $TWO"})
    admin.post("/_sandbox/plan", json={"plan": "enterprise"})
    x.post(f"/2/users/{DEMO_ID}/likes", json={"tweet_id": post})
    x.post(f"/2/users/{DEMO_ID}/likes", json={"tweet_id": "1"})
    x.post(f"/2/users/{DEMO_ID}/retweets", json={"tweet_id": post})
    x.post(f"/2/users/{ALICE_ID}/retweets", json={"tweet_id": post})
    x.delete(f"/2/tweets/{post}")
    x.delete(f"/2/tweets/{post}")
    x.post(f"/2/dm_conversations/with/{ALICE_ID}/messages", json={"text": "hi"})
    x.post(f"/2/dm_conversations/with/{CAROL_ID}/messages", json={"text": "hi"})
    upload_png(x)
    upload_png_json(x)
    x.post("/2/media/upload", files={"media": ("a", b"", "image/png")}, data={"media_category": "tweet_image"})
    media_id = x.post(
        "/2/media/upload/initialize",
        json={"media_type": "image/gif", "total_bytes": len(GIF), "media_category": "tweet_gif"},
    ).json()["data"]["id"]
    x.post(
        "/2/media/upload/initialize",
        json={"media_type": "image/gif", "total_bytes": 10**9, "media_category": "tweet_gif"},
    )
    x.post(
        f"/2/media/upload/{media_id}/append",
        files={"media": ("b", GIF, "application/octet-stream")},
        data={"segment_index": "0"},
    )
    x.post(
        f"/2/media/upload/{media_id}/append",
        files={"media": ("b", GIF, "application/octet-stream")},
        data={"segment_index": "5000"},
    )
    x.post(f"/2/media/upload/{media_id}/finalize")
    x.post(f"/2/media/upload/{media_id}/finalize")
    for _ in range(2):
        x.get("/2/media/upload", params={"command": "STATUS", "media_id": media_id})
    x.get("/2/media/upload", params={"command": "STATUS", "media_id": "1"})
    _issue_16_and_activity_operations(x, client_for, admin)
    admin.post("/_sandbox/plan", json={"plan": "pay-per-use"})
    admin.post("/_sandbox/credits", json={"usd": 0})
    x.post("/2/tweets", json={"text": "out of credits"})
    admin.post("/_sandbox/credits", json={"usd": None})
    admin.post("/_sandbox/usage-cap", json={"capped": True})
    x.get(f"/2/users/{ALICE_ID}/tweets")
    admin.post("/_sandbox/usage-cap", json={"capped": False})
    admin.post("/_sandbox/rate-limits", json={"endpoint": "GET /2/users/me", "limit": 0})
    x.get("/2/users/me")
    admin.post("/_sandbox/rate-limits", json={"endpoint": "POST /2/tweets", "limit": 0, "window": "24h-app"})
    x.post("/2/tweets", json={"text": "over the app's day"})

    operations = {(m, t) for m, t, _ in VALIDATED}
    served = {
        (m, t)
        for m, t in [
            ("GET", "/2/users/me"),
            ("GET", "/2/users/by/username/{username}"),
            ("GET", "/2/users/{id}/tweets"),
            ("GET", "/2/tweets/search/recent"),
            ("POST", "/2/tweets"),
            ("DELETE", "/2/tweets/{id}"),
            ("POST", "/2/users/{id}/likes"),
            ("POST", "/2/users/{id}/retweets"),
            ("POST", "/2/dm_conversations/with/{participant_id}/messages"),
            ("POST", "/2/media/upload"),
            ("GET", "/2/media/upload"),
            ("POST", "/2/media/upload/initialize"),
            ("POST", "/2/media/upload/{id}/append"),
            ("POST", "/2/media/upload/{id}/finalize"),
            ("DELETE", "/2/users/{id}/likes/{tweet_id}"),
            ("DELETE", "/2/users/{id}/retweets/{source_tweet_id}"),
            ("GET", "/2/tweets/{id}"),
            ("GET", "/2/users/{id}/mentions"),
            ("GET", "/2/users/{id}/bookmarks"),
            ("GET", "/2/users/{id}"),
            ("POST", "/2/activity/subscriptions"),
            ("GET", "/2/activity/subscriptions"),
            ("PUT", "/2/activity/subscriptions/{subscription_id}"),
            ("DELETE", "/2/activity/subscriptions/{subscription_id}"),
        ]
    }
    assert operations == served
    for operation in served:
        statuses = {s for m, t, s in VALIDATED if (m, t) == operation}
        assert any(s < 300 for s in statuses) and any(s >= 400 for s in statuses), (operation, statuses)
    assert {s for _, _, s in VALIDATED} >= {200, 201, 400, 401, 402, 403, 404, 429}


def _issue_16_and_activity_operations(x: httpx.Client, client_for, admin: httpx.Client) -> None:
    """Undo, reading and X Activity API operations, each answered once in success and once in error."""
    admin.post("/_sandbox/plan", json={"plan": "enterprise"})
    post = x.post("/2/tweets", json={"text": "conformance of the newer endpoints"}).json()["data"]["id"]
    x.post(f"/2/users/{DEMO_ID}/likes", json={"tweet_id": post})
    x.delete(f"/2/users/{DEMO_ID}/likes/{post}")
    x.delete(f"/2/users/{DEMO_ID}/likes/not-an-id")
    x.post(f"/2/users/{DEMO_ID}/retweets", json={"tweet_id": post})
    x.delete(f"/2/users/{DEMO_ID}/retweets/{post}")
    x.delete(f"/2/users/{DEMO_ID}/retweets/not-an-id")
    x.get(f"/2/tweets/{post}")
    x.get("/2/tweets/not-an-id")
    x.get(f"/2/users/{DEMO_ID}/mentions")
    x.get(f"/2/users/{DEMO_ID}/mentions", params={"max_results": 1000})
    x.get(f"/2/users/{DEMO_ID}/bookmarks")
    x.get(f"/2/users/{DEMO_ID}/bookmarks", params={"max_results": 1000})
    x.get(f"/2/users/{ALICE_ID}")
    x.get("/2/users/not-an-id")
    app = client_for(token=admin.post("/_sandbox/app-token").json()["access_token"])
    created = app.post("/2/activity/subscriptions", json={"event_type": "post.create", "filter": {"user_id": ALICE_ID}})
    app.post("/2/activity/subscriptions", json={"event_type": "post.create", "filter": {"user_id": ALICE_ID}})
    app.get("/2/activity/subscriptions")
    x.get("/2/activity/subscriptions", params={"max_results": 0})
    subscription = created.json()["data"]["subscription"]["subscription_id"]
    app.put(f"/2/activity/subscriptions/{subscription}", json={"tag": "conformance"})
    app.put("/2/activity/subscriptions/1", json={"tag": "conformance"})
    app.delete(f"/2/activity/subscriptions/{subscription}")
    app.delete(f"/2/activity/subscriptions/{subscription}")


def test_template_matching() -> None:
    assert template_of("GET", "/2/users/me") == "/2/users/me"
    assert template_of("GET", "/2/users/123/tweets") == "/2/users/{id}/tweets"
    assert template_of("POST", "/2/media/upload/123/append") == "/2/media/upload/{id}/append"


def test_checker_rejects_wrong_shapes() -> None:
    with pytest.raises(AssertionError, match=r"required|type"):
        validate_response("POST", "/2/tweets", 201, {"data": {"id": 5, "text": "x"}}, "application/json")
    with pytest.raises(AssertionError, match="resource_type"):
        validate_response(
            "DELETE",
            "/2/tweets/{id}",
            404,
            {"title": "Not Found Error", "type": "https://api.x.com/2/problems/resource-not-found"},
            "application/problem+json",
        )
    with pytest.raises(AssertionError, match="content types"):
        validate_response("GET", "/2/users/me", 200, {}, "text/html")
    with pytest.raises(AssertionError):
        validate_request("POST", "/2/users/{id}/retweets", {"tweet_id": "1", "extra": True})
    with pytest.raises(AssertionError):
        validate_request("POST", "/2/tweets", {"media": {"media_ids": ["1", "2", "3", "4", "5"]}})


def test_checker_holds_2_167_specifics() -> None:
    with pytest.raises(AssertionError, match="rest_id"):
        validate_response(
            "POST", "/2/users/{id}/retweets", 200, {"data": {"id": "1", "retweeted": True}}, "application/json"
        )
    with pytest.raises(AssertionError, match="media_type"):
        validate_request(
            "POST", "/2/media/upload", {"media": "AA==", "media_category": "tweet_image", "media_type": "x"}
        )
    old_host = {"title": "Invalid Request", "detail": "d", "type": "https://api.twitter.com/2/problems/invalid-request"}
    with pytest.raises(AssertionError):
        validate_response("POST", "/2/tweets", 400, old_host, "application/problem+json")
    documented = {"title": "Payment Required", "detail": "credits depleted", "status": 402}
    validate_response(
        "POST",
        "/2/tweets",
        402,
        {**documented, "type": "https://api.x.com/2/problems/credits-depleted"},
        "application/problem+json",
    )
