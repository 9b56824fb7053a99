"""The X plans the sandbox plays, and each 2026 rule as X answers it (status, problem, headers)."""

from __future__ import annotations

import httpx
import pytest

from xcourier.server.sandbox import Sandbox, SandboxConfig, SandboxServer
from xcourier.server.sandbox.ids import snowflake_for

from .helpers import ALICE_ID, DEMO_ID, INVALID, admin_post

SELF_SERVE = ("pay-per-use", "basic", "pro")
CLIENT_FORBIDDEN = "https://api.x.com/2/problems/client-forbidden"


def on_plan(admin: httpx.Client, plan: str) -> None:
    assert admin.post("/_sandbox/plan", json={"plan": plan}).json()["plan"] == plan


def test_a_new_sandbox_plays_pay_per_use_and_a_reset_restores_the_configured_plan(admin: httpx.Client) -> None:
    assert admin.get("/_sandbox/plan").json()["plan"] == "pay-per-use"
    on_plan(admin, "enterprise")
    admin.post("/_sandbox/reset").raise_for_status()
    assert admin.get("/_sandbox/plan").json()["plan"] == "pay-per-use"
    assert Sandbox(SandboxConfig(plan="pro")).billing()["plan"] == "pro"


def test_an_unknown_plan_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match="pay-per-use, basic, pro, enterprise"):
        SandboxServer(plan="free")


def test_the_admin_api_refuses_an_unknown_plan(admin: httpx.Client) -> None:
    response = admin.post("/_sandbox/plan", json={"plan": "free"})
    assert response.status_code == 400 and "enterprise" in response.json()["error"]


# ---- likes and quotes --------------------------------------------------------------------------


@pytest.mark.parametrize("plan", SELF_SERVE)
def test_a_like_is_refused_on_self_serve_plans(x: httpx.Client, admin: httpx.Client, plan: str) -> None:
    on_plan(admin, plan)
    post = admin_post(admin, "alice", "like me")
    response = x.post(f"/2/users/{DEMO_ID}/likes", json={"tweet_id": post})
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert (body["type"], body["title"], body["required_enrollment"]) == (
        CLIENT_FORBIDDEN,
        "Client Forbidden",
        "Enterprise",
    )
    assert "2026-04-20" in body["detail"] and plan in body["detail"]
    assert admin.get("/_sandbox/state").json()["likes"] == []


def test_a_like_works_on_enterprise(x: httpx.Client, admin: httpx.Client) -> None:
    on_plan(admin, "enterprise")
    post = admin_post(admin, "alice", "like me")
    assert x.post(f"/2/users/{DEMO_ID}/likes", json={"tweet_id": post}).json() == {"data": {"liked": True}}


def test_a_quote_post_is_refused_on_self_serve_and_works_on_enterprise(x: httpx.Client, admin: httpx.Client) -> None:
    post = admin_post(admin, "alice", "quote me")
    refused = x.post("/2/tweets", json={"text": "look at this", "quote_tweet_id": post})
    assert refused.status_code == 403 and refused.json()["type"] == CLIENT_FORBIDDEN
    on_plan(admin, "enterprise")
    quoted = x.post("/2/tweets", json={"text": "look at this", "quote_tweet_id": post})
    assert quoted.status_code == 201
    timeline = x.get(f"/2/users/{DEMO_ID}/tweets", params={"tweet.fields": "referenced_tweets"}).json()["data"]
    assert timeline[0]["referenced_tweets"] == [{"type": "quoted", "id": post}]


# ---- replies and cashtags ----------------------------------------------------------------------

NOT_SUMMONED = (
    "Reply to this conversation is not allowed because you have not been mentioned or otherwise engaged "
    "by the author of the post you are replying to."
)


def reply(x: httpx.Client, to: str, text: str = "a reply") -> httpx.Response:
    return x.post("/2/tweets", json={"text": text, "reply": {"in_reply_to_tweet_id": to}})


@pytest.mark.parametrize("plan", SELF_SERVE)
def test_an_unsummoned_reply_is_refused_on_self_serve_plans(x: httpx.Client, admin: httpx.Client, plan: str) -> None:
    on_plan(admin, plan)
    response = reply(x, admin_post(admin, "alice", "nobody called"))
    assert response.status_code == 403
    assert response.json() == {"title": "Forbidden", "detail": NOT_SUMMONED, "type": "about:blank", "status": 403}


def test_a_reply_is_allowed_when_the_author_mentioned_the_account(x: httpx.Client, admin: httpx.Client) -> None:
    response = reply(x, admin_post(admin, "alice", "what do you think, @XCourier_Demo?"))
    assert response.status_code == 201


def test_a_reply_is_allowed_when_the_author_quoted_one_of_its_posts(x: httpx.Client, admin: httpx.Client) -> None:
    own = x.post("/2/tweets", json={"text": "my take"}).json()["data"]["id"]
    quoting = admin.post("/_sandbox/posts", json={"username": "alice", "text": "hmm", "quote_tweet_id": own})
    assert quoting.status_code == 201
    assert reply(x, quoting.json()["data"]["id"]).status_code == 201


def test_replying_to_ones_own_post_and_any_reply_on_enterprise_are_allowed(
    x: httpx.Client, admin: httpx.Client
) -> None:
    own = x.post("/2/tweets", json={"text": "thread 1/2"}).json()["data"]["id"]
    answer = reply(x, own, "thread 2/2")
    assert answer.status_code == 201
    fields = {"tweet.fields": "in_reply_to_user_id,conversation_id,referenced_tweets"}
    shown = x.get(f"/2/users/{DEMO_ID}/tweets", params=fields).json()["data"][0]
    assert shown["in_reply_to_user_id"] == DEMO_ID and shown["conversation_id"] == own
    assert shown["referenced_tweets"] == [{"type": "replied_to", "id": own}]
    on_plan(admin, "enterprise")
    assert reply(x, admin_post(admin, "alice", "nobody called")).status_code == 201


def test_a_reply_to_a_deleted_post_is_403(x: httpx.Client, client_for) -> None:
    alice = client_for("alice")
    gone = alice.post("/2/tweets", json={"text": "@xcourier_demo soon gone"}).json()["data"]["id"]
    alice.delete(f"/2/tweets/{gone}")
    response = reply(x, gone)
    assert response.status_code == 403
    assert response.json()["detail"] == "You attempted to reply to a Tweet that is deleted or not visible to you."


def test_more_than_one_cashtag_is_refused_on_self_serve_plans_only(x: httpx.Client, admin: httpx.Client) -> None:
    assert x.post("/2/tweets", json={"text": "buying $AAPL today, US$5 each"}).status_code == 201
    refused = x.post("/2/tweets", json={"text": "$AAPL or $MSFT?"})
    assert refused.status_code == 403
    assert refused.json()["detail"] == "Posts are limited to a maximum of one cashtag."
    on_plan(admin, "enterprise")
    assert x.post("/2/tweets", json={"text": "$AAPL or $MSFT?"}).status_code == 201


def test_an_unknown_create_property_is_400_as_2_167_allows_none(x: httpx.Client) -> None:
    response = x.post("/2/tweets", json={"text": "hi", "tweet_mode": "extended"}, extensions=INVALID)
    assert response.status_code == 400
    assert response.json()["errors"][0]["parameters"] == {"tweet_mode": []}


# ---- pay-per-use credits and the usage cap --------------------------------------------------


def credits(admin: httpx.Client) -> float | None:
    return admin.get("/_sandbox/plan").json()["credits_usd"]


def test_out_of_credits_is_402_credits_depleted(x: httpx.Client, admin: httpx.Client) -> None:
    admin.post("/_sandbox/credits", json={"usd": 0}).raise_for_status()
    response = x.post("/2/tweets", json={"text": "no money"})
    assert response.status_code == 402
    assert response.json() == {
        "title": "Payment Required",
        "detail": "credits depleted",
        "type": "https://api.x.com/2/problems/credits-depleted",
        "status": 402,
    }
    assert x.get("/2/users/me").status_code == 402
    assert admin.get("/_sandbox/state").json()["posts"][-1]["text"] != "no money"


def test_credits_are_spent_at_x_prices_until_they_run_out(x: httpx.Client, admin: httpx.Client) -> None:
    admin.post("/_sandbox/credits", json={"usd": 0.25}).raise_for_status()
    x.post("/2/tweets", json={"text": "plain post"})
    assert credits(admin) == pytest.approx(0.235)
    x.post("/2/tweets", json={"text": "read https://example.com"})
    assert credits(admin) == pytest.approx(0.035)
    x.get("/2/users/by/username/alice")
    x.get("/2/users/by/username/alice")  # the same resource, billed once a UTC day
    assert credits(admin) == pytest.approx(0.025)
    x.get(f"/2/users/{ALICE_ID}/tweets")  # 3 posts at $0.005
    assert credits(admin) == pytest.approx(0.010)
    x.get(f"/2/users/{DEMO_ID}/tweets")  # owned reads: 2 posts at $0.001
    assert credits(admin) == pytest.approx(0.008)
    x.post("/2/tweets", json={"text": "this one takes the balance below zero"})
    assert credits(admin) == pytest.approx(-0.007)
    assert x.post("/2/tweets", json={"text": "refused"}).status_code == 402


def test_unmetered_by_default_and_not_billed_off_pay_per_use(x: httpx.Client, admin: httpx.Client) -> None:
    assert credits(admin) is None
    x.post("/2/tweets", json={"text": "free"})
    on_plan(admin, "basic")
    admin.post("/_sandbox/credits", json={"usd": 0}).raise_for_status()
    assert x.post("/2/tweets", json={"text": "basic pays a subscription"}).status_code == 201


def test_a_usage_cap_is_429_usage_capped(x: httpx.Client, admin: httpx.Client) -> None:
    admin.post("/_sandbox/usage-cap", json={"capped": True}).raise_for_status()
    response = x.get("/2/users/me")
    assert response.status_code == 429
    body = response.json()
    assert (body["type"], body["title"], body["period"]) == (
        "https://api.x.com/2/problems/usage-capped",
        "UsageCapExceeded",
        "Monthly",
    )
    admin.post("/_sandbox/usage-cap", json={"capped": False}).raise_for_status()
    assert x.get("/2/users/me").status_code == 200


def test_the_monthly_post_read_cap_stops_post_reads_only(x: httpx.Client, admin: httpx.Client) -> None:
    assert admin.get("/_sandbox/plan").json()["post_read_cap"] == 3_000_000
    admin.post("/_sandbox/usage-cap", json={"post_read_cap": 3}).raise_for_status()
    assert x.get(f"/2/users/{ALICE_ID}/tweets").status_code == 200
    assert admin.get("/_sandbox/plan").json()["post_reads_this_month"] == 3
    capped = x.get("/2/tweets/search/recent", params={"query": "from:bob"})
    assert capped.status_code == 429 and capped.json()["type"].endswith("/usage-capped")
    assert x.get("/2/users/me").status_code == 200
    on_plan(admin, "enterprise")
    assert admin.get("/_sandbox/plan").json()["post_read_cap"] is None


# ---- 24-hour windows ---------------------------------------------------------------------------


def test_24_hour_headers_are_sent_where_x_has_24_hour_limits(x: httpx.Client, admin: httpx.Client) -> None:
    on_plan(admin, "enterprise")
    like = x.post(f"/2/users/{DEMO_ID}/likes", json={"tweet_id": admin_post(admin, "bob", "like")})
    assert like.headers["x-user-limit-24hour-limit"] == "1000"
    assert like.headers["x-user-limit-24hour-remaining"] == "999"
    assert "x-app-limit-24hour-limit" not in like.headers
    dm = x.post(f"/2/dm_conversations/with/{ALICE_ID}/messages", json={"text": "hi"})
    assert dm.headers["x-user-limit-24hour-limit"] == dm.headers["x-app-limit-24hour-limit"] == "1440"
    post = x.post("/2/tweets", json={"text": "counted per app"})
    assert post.headers["x-app-limit-24hour-limit"] == "10000"
    assert "x-user-limit-24hour-limit" not in post.headers
    me = x.get("/2/users/me")
    assert not any(h.startswith(("x-user-limit-24hour", "x-app-limit-24hour")) for h in me.headers)


def test_a_spent_24_hour_window_is_429_until_its_own_reset(
    x: httpx.Client, admin: httpx.Client, sandbox, client_for
) -> None:
    admin.post(
        "/_sandbox/rate-limits",
        json={"endpoint": "POST /2/dm_conversations/with/{participant_id}/messages", "limit": 1, "window": "24h-user"},
    ).raise_for_status()
    first = x.post(f"/2/dm_conversations/with/{ALICE_ID}/messages", json={"text": "one"})
    assert first.status_code == 201
    spent = x.post(f"/2/dm_conversations/with/{ALICE_ID}/messages", json={"text": "two"})
    assert spent.status_code == 429
    assert spent.headers["x-user-limit-24hour-remaining"] == "0"
    assert spent.headers["x-rate-limit-remaining"] == "14"  # the 15-minute window is not what is spent
    reset = int(spent.headers["x-user-limit-24hour-reset"])
    assert 86_000 < reset - sandbox.now() <= 86_401
    admin.post("/_sandbox/clock", json={"advance": 901}).raise_for_status()
    assert x.post(f"/2/dm_conversations/with/{ALICE_ID}/messages", json={"text": "three"}).status_code == 429
    admin.post("/_sandbox/clock", json={"advance": 86_400}).raise_for_status()
    later = client_for()  # the first token expired with the day
    assert later.post(f"/2/dm_conversations/with/{ALICE_ID}/messages", json={"text": "four"}).status_code == 201


def test_a_per_app_window_is_shared_by_every_user(client_for, admin: httpx.Client) -> None:
    admin.post("/_sandbox/rate-limits", json={"endpoint": "POST /2/tweets", "limit": 1, "window": "24h-app"})
    assert client_for("alice").post("/2/tweets", json={"text": "mine"}).status_code == 201
    spent = client_for("bob").post("/2/tweets", json={"text": "mine too"})
    assert spent.status_code == 429 and spent.headers["x-app-limit-24hour-remaining"] == "0"


def test_media_limits_are_x_published_values(x: httpx.Client) -> None:
    init = x.post(
        "/2/media/upload/initialize", json={"media_type": "image/gif", "total_bytes": 10, "media_category": "tweet_gif"}
    )
    assert init.headers["x-rate-limit-limit"] == "1875"
    media_id = init.json()["data"]["id"]
    status = x.get("/2/media/upload", params={"command": "STATUS", "media_id": media_id})
    assert status.headers["x-rate-limit-limit"] == "1000"


# ---- recent search -----------------------------------------------------------------------------


def long_query(length: int) -> str:
    terms = " OR ".join(["from:alice"] * (length // 14 + 1))
    return terms[: terms.rfind(" OR ", 0, length)] if len(terms) > length else terms


def test_queries_over_512_characters_are_400_on_self_serve_and_fine_up_to_4096_on_enterprise(
    x: httpx.Client, admin: httpx.Client
) -> None:
    query = long_query(600)
    assert 512 < len(query) <= 600
    refused = x.get("/2/tweets/search/recent", params={"query": query})
    assert refused.status_code == 400 and "512" in refused.json()["errors"][0]["message"]
    assert x.get("/2/tweets/search/recent", params={"query": long_query(512)}).status_code == 200
    on_plan(admin, "enterprise")
    assert x.get("/2/tweets/search/recent", params={"query": query}).status_code == 200
    assert x.get("/2/tweets/search/recent", params={"query": "from:bob OR " * 373 + "from:bob"}).status_code == 400


def test_a_since_id_older_than_7_days_is_400_with_x_wording(x: httpx.Client, sandbox) -> None:
    old = str(snowflake_for(sandbox.now() - 8 * 86_400))
    response = x.get("/2/tweets/search/recent", params={"query": "from:alice", "since_id": old})
    assert response.status_code == 400
    message = response.json()["errors"][0]["message"]
    assert message.startswith("'since_id' must be a tweet id created after ")
    floor = int(message.rsplit(" ", 1)[1])
    assert x.get("/2/tweets/search/recent", params={"query": "from:alice", "since_id": str(floor)}).status_code == 200


def test_post_fields_is_accepted_beside_tweet_fields(x: httpx.Client) -> None:
    both = x.get(f"/2/users/{ALICE_ID}/tweets", params={"post.fields": "created_at", "tweet.fields": "author_id"})
    first = both.json()["data"][0]
    assert {"created_at", "author_id"} <= set(first)
    searched = x.get("/2/tweets/search/recent", params={"query": "from:alice", "post.fields": "author_id"})
    assert searched.json()["data"][0]["author_id"] == ALICE_ID
    bad = x.get(f"/2/users/{ALICE_ID}/tweets", params={"post.fields": "nonsense"})
    assert bad.status_code == 400 and "post.fields" in bad.json()["errors"][0]["parameters"]


def test_the_author_id_expansion_puts_the_author_on_each_post_and_in_includes(
    x: httpx.Client, admin: httpx.Client
) -> None:
    admin.post("/_sandbox/credits", json={"usd": 1}).raise_for_status()
    body = x.get(
        "/2/tweets/search/recent", params={"query": "from:alice OR from:bob", "expansions": "author_id"}
    ).json()
    assert {post["author_id"] for post in body["data"]} == {ALICE_ID, "1700000000000000003"}
    assert sorted(u["username"] for u in body["includes"]["users"]) == ["alice", "bob"]
    # 6 posts at $0.005 and 2 included users at $0.010.
    assert credits(admin) == pytest.approx(1 - 0.03 - 0.02)
    bad = x.get("/2/tweets/search/recent", params={"query": "from:bob", "expansions": "nonsense"})
    assert bad.status_code == 400
