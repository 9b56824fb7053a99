"""What X bills for reads and media uploads, as the spend guard counts it.

X's rules (docs.x.com/x-api/getting-started/pricing): reads are billed per resource returned,
the same resource once per UTC day; Owned Reads ($0.001) when {id} is the authenticated user;
media uploads per request as X's playground bills them. Each test drives a real XClient against
respx, with the meter hook installed, an in-memory store and a clock moved by hand.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import respx

from xcourier.server.audit import DEFAULT_PRICES, AuditLog, Guards, Meter, metering
from xcourier.server.auth.memory_store import MemoryTokenStore
from xcourier.server.cli import _prices
from xcourier.server.settings import SettingsError
from xcourier.tools import billing
from xcourier.tools.client import RetryPolicy, StaticTokenProvider, XClient
from xcourier.tools.errors import NotFoundError
from xcourier.tools.users import UserDirectory

from ..clock import Clock
from .captured import BASE_URL, TOKEN

pytestmark = pytest.mark.anyio

ME = "1000"
ALICE = "2000"
NOON = datetime(2026, 8, 20, 12, 0, tzinfo=UTC).timestamp()
NEXT_DAY = datetime(2026, 8, 21, 0, 0, 1, tzinfo=UTC).timestamp()


def page(*ids: str) -> dict[str, Any]:
    return {
        "data": [{"id": i, "text": f"post {i}", "edit_history_tweet_ids": [i]} for i in ids],
        "meta": {"result_count": len(ids)},
    }


class Account:
    """One account's audit, meter and client, all on one store and one clock."""

    def __init__(self, store: MemoryTokenStore, clock: Clock, *, owner_id: str | None = None) -> None:
        self.audit = AuditLog(store, "someone", clock=clock)
        self.meter = Meter(self.audit, DEFAULT_PRICES, owner_id=owner_id)
        self.client = XClient(
            StaticTokenProvider(TOKEN), base_url=BASE_URL, retry=RetryPolicy(attempts=1), meter=self.meter
        )

    async def entries(self) -> list[tuple[str, float, bool]]:
        return [(e.tool, round(e.cost, 6), e.write) for e in await self.audit.since(3 * 24 * 3600)]

    async def spent(self) -> float:
        return round(sum(e.cost for e in await self.audit.since(3 * 24 * 3600)), 6)


@pytest.fixture
def store() -> MemoryTokenStore:
    return MemoryTokenStore()


@pytest.fixture
def clock() -> Clock:
    clock = Clock()
    clock.now = NOON
    return clock


@pytest.fixture
async def account(x: respx.MockRouter, store: MemoryTokenStore, clock: Clock) -> AsyncIterator[Account]:
    account = Account(store, clock)
    yield account
    await account.client.aclose()


async def timeline(client: XClient, user_id: str) -> dict[str, Any]:
    return await client.request("GET", "/2/users/{id}/tweets", path_params={"id": user_id})


# -- the rules, as pure functions ---------------------------------------------------------------


def test_each_post_returned_is_one_post_read_and_includes_of_the_same_kind_count_too():
    body = {**page("1", "2"), "includes": {"tweets": [{"id": "3"}], "users": [{"id": "9"}]}}
    found = billing.charges("GET", "/2/tweets/search/recent", {}, body, owner_id=None)
    assert found == [billing.Charge("post_read", "post", i) for i in ("1", "2", "3")]


def test_a_user_lookup_is_one_user_read():
    body = {"data": {"id": ALICE, "username": "alice", "name": "Alice"}}
    found = billing.charges("GET", "/2/users/by/username/{username}", {"username": "alice"}, body, owner_id=ME)
    assert found == [billing.Charge("user_read", "user", ALICE)]


def test_the_authenticated_users_own_timeline_is_an_owned_read_and_others_are_not():
    own = billing.charges("GET", "/2/users/{id}/tweets", {"id": ME}, page("1"), owner_id=ME)
    other = billing.charges("GET", "/2/users/{id}/tweets", {"id": ALICE}, page("1"), owner_id=ME)
    unknown = billing.charges("GET", "/2/users/{id}/tweets", {"id": ME}, page("1"), owner_id=None)
    assert [c.price for c in own + other + unknown] == ["owned_read", "post_read", "post_read"]


@pytest.mark.parametrize(
    "endpoint",
    [
        ("POST", "/2/media/upload"),
        ("POST", "/2/media/upload/initialize"),
        ("POST", "/2/media/upload/{id}/append"),
        ("POST", "/2/media/upload/{id}/finalize"),
    ],
)
def test_every_media_upload_request_is_billed_once(endpoint):
    method, path = endpoint
    assert billing.charges(method, path, {"id": "7"}, {}, owner_id=ME) == [billing.Charge("media_upload")]


@pytest.mark.parametrize(
    "endpoint",
    [("GET", "/2/media/upload"), ("POST", "/2/tweets"), ("DELETE", "/2/tweets/{id}"), ("POST", "/2/users/{id}/likes")],
)
def test_status_polls_and_writes_are_not_metered_here(endpoint):
    # Writes are priced per call by their tool; the playground bills no STATUS poll.
    method, path = endpoint
    assert billing.charges(method, path, {"id": "7"}, {"data": {"id": "8"}}, owner_id=ME) == []


def test_an_answer_without_data_costs_nothing():
    assert billing.charges("GET", "/2/users/{id}/tweets", {"id": ALICE}, {"meta": {}}, owner_id=None) == []


# -- the meter on the X client ------------------------------------------------------------------


async def test_a_timeline_page_is_billed_per_post_in_one_read_entry(x, account):
    x.get(f"/2/users/{ALICE}/tweets").respond(200, json=page("11", "12", "13"))
    await timeline(account.client, ALICE)
    assert await account.entries() == [("GET /2/users/{id}/tweets", 0.015, False)]
    [entry] = await account.audit.since(3600)
    assert entry.billed == {"post": ["11", "12", "13"]}


async def test_the_same_post_is_billed_once_per_utc_day(x, account, clock):
    x.get(f"/2/users/{ALICE}/tweets").mock(
        side_effect=[
            httpx.Response(200, json=page("11", "12")),
            httpx.Response(200, json=page("11", "12", "13")),
            httpx.Response(200, json=page("11", "12", "13")),
        ]
    )
    await timeline(account.client, ALICE)
    clock.now = NOON + 11 * 3600  # 23:00 UTC, the same day
    await timeline(account.client, ALICE)
    assert await account.spent() == pytest.approx(0.015)  # 13 is new; 11 and 12 were billed at noon
    clock.now = NEXT_DAY  # past midnight UTC: X bills them all again
    await timeline(account.client, ALICE)
    assert await account.spent() == pytest.approx(0.015 + 0.015)


async def test_what_was_billed_today_stays_billed_across_a_restart(x, store, clock):
    x.get(f"/2/users/{ALICE}/tweets").respond(200, json=page("11", "12"))
    first = Account(store, clock)
    await timeline(first.client, ALICE)
    await first.client.aclose()
    restarted = Account(store, clock)  # a new process on the same store: nothing in memory
    await timeline(restarted.client, ALICE)
    await restarted.client.aclose()
    assert await restarted.spent() == pytest.approx(0.010)


async def test_own_posts_are_owned_reads_once_the_meter_knows_who_the_token_is(x, account):
    x.get("/2/users/me").respond(200, json={"data": {"id": ME, "username": "me", "name": "Me"}})
    x.get(f"/2/users/{ME}/tweets").respond(200, json=page("21", "22"))
    users = UserDirectory(account.client)
    await users.me()
    await timeline(account.client, ME)
    assert await account.entries() == [
        ("GET /2/users/me", 0.010, False),
        ("GET /2/users/{id}/tweets", 0.002, False),
    ]


async def test_a_cached_user_lookup_never_reaches_x_and_is_billed_once(x, account):
    lookup = x.get("/2/users/by/username/alice").respond(
        200, json={"data": {"id": ALICE, "username": "alice", "name": "Alice"}}
    )
    users = UserDirectory(account.client)
    await users.by_username("alice")
    await users.by_username("alice")
    assert lookup.call_count == 1
    assert await account.spent() == pytest.approx(0.010)


async def test_an_error_answer_is_not_billed(x, account):
    x.get("/2/users/by/username/nobody").respond(
        404, json={"title": "Not Found Error", "detail": "Could not find user", "type": "about:blank", "status": 404}
    )
    with pytest.raises(NotFoundError):
        await account.client.request("GET", "/2/users/by/username/{username}", path_params={"username": "nobody"})
    assert await account.entries() == []


async def test_a_chunked_upload_is_billed_per_request_and_its_status_polls_are_free(x, account):
    x.post("/2/media/upload/initialize").respond(200, json={"data": {"id": "77"}})
    x.post("/2/media/upload/77/append").respond(204)
    x.post("/2/media/upload/77/finalize").respond(200, json={"data": {"id": "77"}})
    x.get("/2/media/upload", params={"command": "STATUS"}).respond(200, json={"data": {"id": "77"}})
    async with metering("createPost"):
        await account.client.request("POST", "/2/media/upload/initialize", json={"media_type": "image/gif"})
        for segment in range(2):
            await account.client.request(
                "POST", "/2/media/upload/{id}/append", path_params={"id": "77"}, data={"segment_index": str(segment)}
            )
        await account.client.request("POST", "/2/media/upload/{id}/finalize", path_params={"id": "77"})
        await account.client.request("GET", "/2/media/upload", params={"command": "STATUS", "media_id": "77"})
    [entry] = await account.audit.since(3600)
    assert (entry.tool, entry.cost, entry.write) == ("createPost", pytest.approx(0.040), False)
    assert "4 media upload(s)" in entry.detail


async def test_a_media_upload_price_comes_from_the_price_table(x, store, clock):
    x.post("/2/media/upload").respond(200, json={"data": {"id": "5"}})
    audit = AuditLog(store, "someone", clock=clock)
    meter = Meter(audit, {**DEFAULT_PRICES, "media_upload": 0.0})
    async with XClient(StaticTokenProvider(TOKEN), base_url=BASE_URL, meter=meter) as client:
        await client.request("POST", "/2/media/upload", files={"media": b"GIF89a"})
    [entry] = await audit.since(3600)
    assert entry.cost == 0.0 and "1 media upload(s)" in entry.detail


async def test_a_metered_block_is_one_entry_and_a_write_recorded_in_it_takes_its_reads_in(x, account):
    x.get("/2/users/by/username/alice").respond(200, json={"data": {"id": ALICE, "username": "alice", "name": "A"}})
    x.get(f"/2/users/{ALICE}/tweets").respond(200, json=page("31", "32"))
    async with metering("newPost watcher"):
        await UserDirectory(account.client).by_username("alice")
        await timeline(account.client, ALICE)
    async with metering("sendDirectMessage"):
        await account.audit.record("sendDirectMessage", "ok", cost=0.015, ids={"recipient": "alice"})
    assert await account.entries() == [("newPost watcher", 0.020, False), ("sendDirectMessage", 0.015, True)]


async def test_reads_before_a_failed_write_are_still_billed(x, account):
    x.get("/2/users/by/username/alice").respond(200, json={"data": {"id": ALICE, "username": "alice", "name": "A"}})
    async with metering("sendDirectMessage"):
        await UserDirectory(account.client).by_username("alice")
        await account.audit.record("sendDirectMessage", "error", cost=0.015, ids={"recipient": "alice"})
    [entry] = await account.audit.since(3600)
    assert (entry.outcome, entry.cost, entry.write) == ("error", pytest.approx(0.010), True)
    assert entry.detail == "read from X: 1 user read(s)"


async def test_a_failing_store_never_turns_a_successful_call_into_an_error(x, clock):
    class FullDisk(MemoryTokenStore):
        async def append_audit(self, at: float, record: dict[str, Any]) -> None:
            raise OSError("disk full")

    x.get(f"/2/users/{ALICE}/tweets").respond(200, json=page("41"))
    account = Account(FullDisk(), clock)
    try:
        assert (await timeline(account.client, ALICE))["data"][0]["id"] == "41"
    finally:
        await account.client.aclose()


# -- the spend guard ----------------------------------------------------------------------------


async def test_reads_are_refused_once_the_budget_is_used_up_and_resume_when_it_frees(x, account, clock):
    x.get(f"/2/users/{ALICE}/tweets").respond(200, json=page("51", "52"))
    guards = Guards(account.audit, max_writes_per_hour=None, daily_budget=0.01)
    assert await guards.read_refusal() is None
    await timeline(account.client, ALICE)
    refusal = await guards.read_refusal()
    assert refusal is not None and "--daily-budget 0.01 USD is used up" in refusal.reason
    assert refusal.until == pytest.approx(NOON + 24 * 3600)
    assert "2026-08-21 12:00 UTC" in refusal.reason
    clock.now = refusal.until + 1
    assert await guards.read_refusal() is None


async def test_totals_show_what_reads_cost(x, account):
    x.get(f"/2/users/{ALICE}/tweets").respond(200, json=page("61"))
    await timeline(account.client, ALICE)
    await account.audit.record("createPost", "ok", cost=0.015, ids={"post_id": "62"})
    totals = await Guards(account.audit, max_writes_per_hour=None, daily_budget=1.0).totals()
    assert totals["spent_last_24h_usd"] == pytest.approx(0.020)
    assert totals["spent_on_reads_last_24h_usd"] == pytest.approx(0.005)


# -- [pricing] ----------------------------------------------------------------------------------


def test_pricing_accepts_the_read_and_media_keys():
    assert dict(_prices({"media_upload": 0.02, "owned_read": 0, "post_read": 0.004})) == {
        "media_upload": 0.02,
        "owned_read": 0.0,
        "post_read": 0.004,
    }


@pytest.mark.parametrize("value", [True, -0.01, "cheap"])
def test_pricing_refuses_what_is_not_a_price(value):
    with pytest.raises(SettingsError, match=r"\[pricing\] media_upload = .*expected a price in USD"):
        _prices({"media_upload": value})
