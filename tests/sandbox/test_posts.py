from __future__ import annotations

import re

import httpx

from .helpers import ALICE_ID, DEMO_ID, admin_post


def test_create_post_returns_201_with_id_text_and_edit_history(x: httpx.Client) -> None:
    response = x.post("/2/tweets", json={"text": "Hello, sandbox"})
    assert response.status_code == 201
    data = response.json()["data"]
    assert re.fullmatch(r"[0-9]{19}", data["id"])
    assert data == {"id": data["id"], "text": "Hello, sandbox", "edit_history_tweet_ids": [data["id"]]}


def test_new_ids_increase(x: httpx.Client) -> None:
    first = x.post("/2/tweets", json={"text": "one"}).json()["data"]["id"]
    second = x.post("/2/tweets", json={"text": "two"}).json()["data"]["id"]
    assert int(second) > int(first)


def test_duplicate_text_by_same_user_is_403(x: httpx.Client) -> None:
    assert x.post("/2/tweets", json={"text": "same words"}).status_code == 201
    response = x.post("/2/tweets", json={"text": "same words"})
    assert response.status_code == 403
    assert response.json() == {
        "detail": "You are not allowed to create a Tweet with duplicate content.",
        "type": "about:blank",
        "title": "Forbidden",
        "status": 403,
    }


def test_same_text_by_another_user_is_fine(x: httpx.Client, admin: httpx.Client) -> None:
    admin_post(admin, "alice", "shared words")
    assert x.post("/2/tweets", json={"text": "shared words"}).status_code == 201


def test_duplicate_check_forgets_deleted_posts(x: httpx.Client) -> None:
    post_id = x.post("/2/tweets", json={"text": "again"}).json()["data"]["id"]
    x.delete(f"/2/tweets/{post_id}")
    assert x.post("/2/tweets", json={"text": "again"}).status_code == 201


def test_280_weighted_characters_is_the_limit(x: httpx.Client) -> None:
    assert x.post("/2/tweets", json={"text": "a" * 280}).status_code == 201
    response = x.post("/2/tweets", json={"text": "b" * 281})
    assert response.status_code == 400
    assert "too long" in response.json()["errors"][0]["message"]


def test_text_twitter_text_would_parse_for_minutes_is_refused_unparsed(x: httpx.Client, monkeypatch) -> None:
    import twitter_text

    def never(_text: str) -> None:
        raise AssertionError("parse_tweet ran on over-long text")

    monkeypatch.setattr(twitter_text, "parse_tweet", never)
    response = x.post("/2/tweets", json={"text": "a." * 2049})
    assert response.status_code == 400
    assert "too long" in response.json()["errors"][0]["message"]


def test_cjk_counts_double_and_urls_count_23(x: httpx.Client) -> None:
    assert x.post("/2/tweets", json={"text": "字" * 141}).status_code == 400
    assert x.post("/2/tweets", json={"text": "字" * 140}).status_code == 201
    url_text = "https://example.com/" + "a" * 200 + " " + "c" * 250
    assert x.post("/2/tweets", json={"text": url_text}).status_code == 201


def test_post_without_text_or_media_is_400(x: httpx.Client) -> None:
    response = x.post("/2/tweets", json={})
    assert response.status_code == 400
    assert response.json()["type"] == "https://api.x.com/2/problems/invalid-request"


def test_non_json_body_is_400(x: httpx.Client) -> None:
    response = x.post("/2/tweets", content=b"not json", headers={"content-type": "text/plain"})
    assert response.status_code == 400


def test_delete_own_post(x: httpx.Client, admin: httpx.Client) -> None:
    post_id = x.post("/2/tweets", json={"text": "to delete"}).json()["data"]["id"]
    assert x.delete(f"/2/tweets/{post_id}").json() == {"data": {"deleted": True}}
    posts = {p["id"]: p for p in admin.get("/_sandbox/state").json()["posts"]}
    assert posts[post_id]["deleted"] is True


def test_deleting_someone_elses_post_is_403(x: httpx.Client, admin: httpx.Client) -> None:
    post_id = admin_post(admin, "alice", "mine, not yours")
    assert x.delete(f"/2/tweets/{post_id}").status_code == 403


def test_deleting_a_nonexistent_post_is_404_resource_not_found(x: httpx.Client) -> None:
    response = x.delete("/2/tweets/123456789")
    assert response.status_code == 404
    body = response.json()
    assert body["type"] == "https://api.x.com/2/problems/resource-not-found"
    assert body["resource_type"] == "tweet"


def test_like_a_post_and_liking_twice_stays_liked(x: httpx.Client, admin: httpx.Client) -> None:
    admin.post("/_sandbox/plan", json={"plan": "enterprise"}).raise_for_status()
    post_id = admin_post(admin, "alice", "like me")
    for _ in range(2):
        response = x.post(f"/2/users/{DEMO_ID}/likes", json={"tweet_id": post_id})
        assert response.status_code == 200
        assert response.json() == {"data": {"liked": True}}
    assert admin.get("/_sandbox/state").json()["likes"] == [{"user_id": DEMO_ID, "tweet_id": post_id}]


def test_liking_on_behalf_of_another_user_is_403(x: httpx.Client, admin: httpx.Client) -> None:
    post_id = admin_post(admin, "bob", "like me")
    assert x.post(f"/2/users/{ALICE_ID}/likes", json={"tweet_id": post_id}).status_code == 403


def test_liking_a_nonexistent_post_is_404(x: httpx.Client, admin: httpx.Client) -> None:
    admin.post("/_sandbox/plan", json={"plan": "enterprise"}).raise_for_status()
    response = x.post(f"/2/users/{DEMO_ID}/likes", json={"tweet_id": "42"})
    assert response.status_code == 404
    assert response.json()["resource_type"] == "tweet"


def test_repost_returns_the_source_id(x: httpx.Client, admin: httpx.Client) -> None:
    post_id = admin_post(admin, "alice", "repost me")
    for _ in range(2):
        response = x.post(f"/2/users/{DEMO_ID}/retweets", json={"tweet_id": post_id})
        assert response.status_code == 200
        assert response.json() == {"data": {"id": post_id, "rest_id": post_id, "retweeted": True}}
    assert admin.get("/_sandbox/state").json()["retweets"] == [{"user_id": DEMO_ID, "tweet_id": post_id}]


def test_repost_of_deleted_post_is_404(x: httpx.Client, client_for) -> None:
    alice = client_for("alice")
    post_id = alice.post("/2/tweets", json={"text": "gone soon"}).json()["data"]["id"]
    alice.delete(f"/2/tweets/{post_id}")
    assert x.post(f"/2/users/{DEMO_ID}/retweets", json={"tweet_id": post_id}).status_code == 404


def test_repost_on_behalf_of_another_user_is_403(x: httpx.Client, admin: httpx.Client) -> None:
    post_id = admin_post(admin, "alice", "repost me")
    assert x.post(f"/2/users/{ALICE_ID}/retweets", json={"tweet_id": post_id}).status_code == 403
