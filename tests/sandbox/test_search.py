from __future__ import annotations

import httpx

from .helpers import ALICE_ID, BOB_ID, admin_post


def _ids(body: dict) -> list[str]:
    return [p["id"] for p in body.get("data", [])]


def test_search_from_or_query_returns_both_authors_newest_first(x: httpx.Client) -> None:
    body = x.get(
        "/2/tweets/search/recent", params={"query": "from:alice OR from:bob", "tweet.fields": "author_id"}
    ).json()
    assert body["meta"]["result_count"] == 6
    assert {p["author_id"] for p in body["data"]} == {ALICE_ID, BOB_ID}
    assert _ids(body) == sorted(_ids(body), key=int, reverse=True)


def test_search_accepts_parentheses_and_any_case(x: httpx.Client) -> None:
    body = x.get("/2/tweets/search/recent", params={"query": "(FROM:Alice)"}).json()
    assert body["meta"]["result_count"] == 3


def test_search_for_unknown_user_is_empty(x: httpx.Client) -> None:
    assert x.get("/2/tweets/search/recent", params={"query": "from:nobody"}).json() == {"meta": {"result_count": 0}}


def test_search_rejects_other_operators(x: httpx.Client) -> None:
    """Operators the sandbox does not model (X has them) and malformed queries get a 400 naming the
    problem, so a client that depends on them finds out instead of reading a wrong answer."""
    for query in ("lang:en hello", "from:alice place:berlin", "(from:alice", "from:"):
        response = x.get("/2/tweets/search/recent", params={"query": query})
        assert response.status_code == 400, query


def test_search_since_id(x: httpx.Client, admin: httpx.Client) -> None:
    pivot = admin_post(admin, "bob", "pivot")
    newer = admin_post(admin, "alice", "newer")
    body = x.get("/2/tweets/search/recent", params={"query": "from:alice OR from:bob", "since_id": pivot}).json()
    assert _ids(body) == [newer]


def test_search_max_results_is_10_to_100(x: httpx.Client) -> None:
    assert x.get("/2/tweets/search/recent", params={"query": "from:alice", "max_results": 9}).status_code == 400
    assert x.get("/2/tweets/search/recent", params={"query": "from:alice", "max_results": 10}).status_code == 200


def test_search_pages_with_next_token(x: httpx.Client, admin: httpx.Client) -> None:
    for i in range(15):
        admin_post(admin, "alice", f"n{i}")
    first = x.get("/2/tweets/search/recent", params={"query": "from:alice", "max_results": 10}).json()
    second = x.get(
        "/2/tweets/search/recent",
        params={"query": "from:alice", "max_results": 10, "next_token": first["meta"]["next_token"]},
    ).json()
    assert len(first["data"]) == 10 and len(second["data"]) == 8
    assert "next_token" not in second["meta"]
    assert set(_ids(first)).isdisjoint(_ids(second))


def test_search_only_covers_the_last_seven_days(x: httpx.Client, sandbox) -> None:
    sandbox.advance_clock(8 * 24 * 3600)
    token, _ = sandbox.mint_token()
    response = x.get(
        "/2/tweets/search/recent", params={"query": "from:alice"}, headers={"authorization": f"Bearer {token}"}
    )
    assert response.json() == {"meta": {"result_count": 0}}
