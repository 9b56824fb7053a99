from __future__ import annotations

import httpx

from .helpers import ALICE_ID, CAROL_ID, DEMO_ID, admin_post


def test_timeline_defaults_to_id_text_and_edit_history(x: httpx.Client) -> None:
    body = x.get(f"/2/users/{ALICE_ID}/tweets").json()
    assert body["meta"]["result_count"] == 3
    for post in body["data"]:
        assert set(post) == {"id", "text", "edit_history_tweet_ids"}
        assert post["edit_history_tweet_ids"] == [post["id"]]


def test_timeline_adds_created_at_and_author_id_when_asked(x: httpx.Client) -> None:
    body = x.get(f"/2/users/{ALICE_ID}/tweets", params={"tweet.fields": "created_at,author_id"}).json()
    post = body["data"][0]
    assert post["author_id"] == ALICE_ID
    assert post["created_at"].endswith(".000Z") and len(post["created_at"]) == 24


def test_unknown_tweet_field_is_400(x: httpx.Client) -> None:
    assert x.get(f"/2/users/{ALICE_ID}/tweets", params={"tweet.fields": "nonsense"}).status_code == 400


def test_timeline_pages_through_150_posts_newest_first(x: httpx.Client, admin: httpx.Client) -> None:
    created = [admin_post(admin, "xcourier_demo", f"post number {i}") for i in range(150)]
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        params = {"max_results": 100}
        if token:
            params["pagination_token"] = token
        body = x.get(f"/2/users/{DEMO_ID}/tweets", params=params).json()
        pages += 1
        seen += [p["id"] for p in body["data"]]
        assert body["meta"]["newest_id"] == body["data"][0]["id"]
        assert body["meta"]["oldest_id"] == body["data"][-1]["id"]
        token = body["meta"].get("next_token")
        if token is None:
            break
    assert pages == 2
    assert seen == list(reversed(created))
    assert seen == sorted(seen, key=int, reverse=True)


def test_previous_token_leads_back_to_the_newer_page(x: httpx.Client, admin: httpx.Client) -> None:
    for i in range(12):
        admin_post(admin, "xcourier_demo", f"p{i}")
    first = x.get(f"/2/users/{DEMO_ID}/tweets", params={"max_results": 5}).json()
    assert "previous_token" not in first["meta"]
    second = x.get(
        f"/2/users/{DEMO_ID}/tweets", params={"max_results": 5, "pagination_token": first["meta"]["next_token"]}
    ).json()
    back = x.get(
        f"/2/users/{DEMO_ID}/tweets",
        params={"max_results": 5, "pagination_token": second["meta"]["previous_token"]},
    ).json()
    assert back["data"] == first["data"]


def test_since_id_returns_only_newer_posts(x: httpx.Client, admin: httpx.Client) -> None:
    old = admin_post(admin, "alice", "before")
    new = admin_post(admin, "alice", "after")
    body = x.get(f"/2/users/{ALICE_ID}/tweets", params={"since_id": old}).json()
    assert [p["id"] for p in body["data"]] == [new]
    assert body["meta"] == {"result_count": 1, "newest_id": new, "oldest_id": new}


def test_until_id_returns_only_older_posts(x: httpx.Client) -> None:
    all_posts = x.get(f"/2/users/{ALICE_ID}/tweets").json()["data"]
    body = x.get(f"/2/users/{ALICE_ID}/tweets", params={"until_id": all_posts[0]["id"]}).json()
    assert [p["id"] for p in body["data"]] == [p["id"] for p in all_posts[1:]]


def test_no_posts_gives_result_count_zero_and_no_data(x: httpx.Client) -> None:
    body = x.get(f"/2/users/{CAROL_ID}/tweets").json()
    assert body == {"meta": {"result_count": 0}}


def test_max_results_outside_5_to_100_is_400_invalid_request(x: httpx.Client) -> None:
    for value in ("4", "101", "abc"):
        response = x.get(f"/2/users/{ALICE_ID}/tweets", params={"max_results": value})
        assert response.status_code == 400
        body = response.json()
        assert body["title"] == "Invalid Request"
        assert body["detail"] == "One or more parameters to your request was invalid."
        assert body["errors"][0]["parameters"] == {"max_results": [value]}


def test_garbage_pagination_token_is_400(x: httpx.Client) -> None:
    response = x.get(f"/2/users/{ALICE_ID}/tweets", params={"pagination_token": "zz!"})
    assert response.status_code == 400


def test_unknown_query_parameter_is_400(x: httpx.Client) -> None:
    assert x.get(f"/2/users/{ALICE_ID}/tweets", params={"sinceid": "1"}).status_code == 400


def test_deleted_posts_vanish_from_the_timeline(x: httpx.Client) -> None:
    post_id = x.post("/2/tweets", json={"text": "short-lived"}).json()["data"]["id"]
    assert x.delete(f"/2/tweets/{post_id}").json() == {"data": {"deleted": True}}
    ids = [p["id"] for p in x.get(f"/2/users/{DEMO_ID}/tweets").json().get("data", [])]
    assert post_id not in ids


def test_timeline_of_unknown_user_is_200_with_not_found_error(x: httpx.Client) -> None:
    body = x.get("/2/users/1234/tweets").json()
    assert body["errors"][0]["resource_type"] == "user"
