"""tools/activity.py: the exact requests X receives, and how the stream reader reads what X sends."""

from __future__ import annotations

import json

import httpx
import pytest
import respx

from xcourier.server import watcher as watcher_module
from xcourier.server.watcher import Watched
from xcourier.tools.activity import (
    ActivityClient,
    Backoff,
    LineTooLongError,
    StreamEndedError,
    StreamStalledError,
    backfill_for,
    read_stream,
)
from xcourier.tools.client import StaticTokenProvider, XClient
from xcourier.tools.errors import ForbiddenError, RateLimitedError, ServerError, TransportError
from xcourier.tools.timeline import Post

pytestmark = pytest.mark.anyio
BASE = "https://api.x.com"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@respx.mock
async def test_create_sends_event_type_filter_and_tag_with_the_app_token() -> None:
    route = respx.post(f"{BASE}/2/activity/subscriptions").respond(
        200, json={"data": {"subscription": {"subscription_id": "11", "event_type": "post.create"}}}
    )
    async with XClient(StaticTokenProvider("app-token"), base_url=BASE) as app:
        created = await ActivityClient(app).create("post.create", "42", "xcourier:abc")
    request = route.calls.last.request
    assert request.headers["authorization"] == "Bearer app-token"
    assert json.loads(request.content) == {
        "event_type": "post.create",
        "filter": {"user_id": "42"},
        "tag": "xcourier:abc",
    }
    assert created.subscription_id == "11"


@respx.mock
async def test_create_also_reads_the_subscription_directly_under_data_as_the_quickstart_shows() -> None:
    respx.post(f"{BASE}/2/activity/subscriptions").respond(200, json={"data": {"subscription_id": "12"}})
    async with XClient(StaticTokenProvider("t"), base_url=BASE) as app:
        assert (await ActivityClient(app).create("post.delete", "42", None)).subscription_id == "12"


@respx.mock
async def test_list_all_follows_next_token_and_skips_unusable_items() -> None:
    route = respx.get(f"{BASE}/2/activity/subscriptions").mock(
        side_effect=[
            httpx.Response(
                200, json={"data": [{"subscription_id": "1"}, {"tag": "no id"}], "meta": {"next_token": "n" * 16}}
            ),
            httpx.Response(200, json={"data": [{"subscription_id": "2", "filter": {"user_id": "9"}}], "meta": {}}),
        ]
    )
    async with XClient(StaticTokenProvider("t"), base_url=BASE) as app:
        found = await ActivityClient(app).list_all()
    assert [s.subscription_id for s in found] == ["1", "2"] and found[1].filter.user_id == "9"
    assert route.calls[1].request.url.params["pagination_token"] == "n" * 16
    assert route.calls[0].request.url.params["max_results"] == "1000"


@respx.mock
async def test_retag_puts_only_the_tag_and_protected_asks_for_the_field() -> None:
    put = respx.put(f"{BASE}/2/activity/subscriptions/7").respond(200, json={"data": {}})
    lookup = respx.get(f"{BASE}/2/users/5").respond(200, json={"data": {"id": "5", "protected": True}})
    async with XClient(StaticTokenProvider("t"), base_url=BASE) as app:
        client = ActivityClient(app)
        await client.retag("7", "xcourier:new")
        assert await client.protected("5") is True
    assert json.loads(put.calls.last.request.content) == {"tag": "xcourier:new"}
    assert lookup.calls.last.request.url.params["user.fields"] == "protected"


def _stream(*chunks: bytes) -> httpx.AsyncByteStream:
    class Chunks(httpx.AsyncByteStream):
        async def __aiter__(self):
            for chunk in chunks:
                yield chunk

    return Chunks()


@respx.mock
async def test_the_reader_skips_keep_alives_joins_split_lines_and_asks_for_the_backfill() -> None:
    event = json.dumps({"data": {"event_type": "post.create", "filter": {"user_id": "1"}, "payload": {"id": "9"}}})
    raw = event.encode() + b"\r\n"
    route = respx.get(f"{BASE}/2/activity/stream").respond(200, stream=_stream(b"\r\n", raw[:10], raw[10:], b"\r\n"))
    seen: list[str] = []
    async with httpx.AsyncClient() as http:
        with pytest.raises(StreamEndedError):
            async for got in read_stream(http, f"{BASE}/2/activity/stream", "app", backfill_minutes=3):
                seen.append(got.payload["id"])
    assert seen == ["9"]
    assert route.calls.last.request.url.params["backfill_minutes"] == "3"
    assert route.calls.last.request.headers["authorization"] == "Bearer app"


@respx.mock
async def test_a_line_without_end_is_refused_rather_than_buffered(monkeypatch) -> None:
    monkeypatch.setattr("xcourier.tools.activity.MAX_LINE_BYTES", 100)
    respx.get(f"{BASE}/2/activity/stream").respond(200, stream=_stream(b"x" * 60, b"x" * 60))
    async with httpx.AsyncClient() as http:
        with pytest.raises(LineTooLongError):
            async for _ in read_stream(http, f"{BASE}/2/activity/stream", "app"):
                pass


@respx.mock
async def test_a_read_timeout_is_a_stall_and_an_http_error_is_xs_error() -> None:
    respx.get(f"{BASE}/2/activity/stream").mock(
        side_effect=[
            httpx.ReadTimeout("quiet"),
            httpx.Response(403, json={"title": "Forbidden", "detail": "no", "type": "about:blank", "status": 403}),
        ]
    )
    async with httpx.AsyncClient() as http:
        with pytest.raises(StreamStalledError):
            async for _ in read_stream(http, f"{BASE}/2/activity/stream", "app"):
                pass
        with pytest.raises(ForbiddenError):
            async for _ in read_stream(http, f"{BASE}/2/activity/stream", "app"):
                pass


def test_backoff_follows_xs_disconnection_guide() -> None:
    backoff = Backoff(jitter=lambda: 0.5)  # 0.5: no jitter either way
    network = TransportError("cut", endpoint="GET /2/activity/stream")
    assert [backoff.next_delay(network) for _ in range(3)] == [0.0, 0.5, 0.75]
    backoff.reset()
    server = ServerError("503", endpoint="GET /2/activity/stream", status=503)
    assert [backoff.next_delay(server) for _ in range(3)] == [5.0, 10.0, 20.0]
    backoff.reset()
    assert backoff.next_delay(RateLimitedError("429", endpoint="GET /2/activity/stream", status=429)) == 60.0


def test_backfill_covers_gaps_up_to_five_minutes_only() -> None:
    assert backfill_for(0) == 1 and backfill_for(61) == 2 and backfill_for(300) == 5
    assert backfill_for(301) is None


def _post(post_id: int) -> Post:
    return Post(id=str(post_id), text="t", author_id="42")


def test_a_watched_users_resource_keeps_the_newest_posts_in_id_order_however_they_came() -> None:
    watched = Watched(username="u", user_id="42", cursor="1")
    watched.remember([_post(i) for i in (40, 12, 33)])
    watched.remember([_post(i) for i in range(100, 80, -1)])
    assert [int(p.id) for p in watched.recent] == list(range(81, 101))


def test_the_ids_delivered_above_the_cursor_are_bounded_and_the_cursor_passes_the_oldest(monkeypatch) -> None:
    monkeypatch.setattr(watcher_module, "MAX_SEEN", 3)
    watched = Watched(username="u", user_id="42", cursor="10")
    watched.seen = {"11", "15", "12", "20", "30"}
    assert watched.advance("5")  # backwards is refused; the bound still moves it up
    assert watched.cursor == "12" and watched.seen == {"15", "20", "30"}
    assert not watched.advance("11")
    assert watched.cursor == "12"
