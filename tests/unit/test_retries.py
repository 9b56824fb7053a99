"""Which calls are retried after a 5xx or a transport error, how often, and how long it may take."""

from __future__ import annotations

import httpx
import pytest
import respx

from xcourier.tools.client import RetryPolicy, StaticTokenProvider, XClient
from xcourier.tools.errors import NotSentError, RateLimitedError, ServerError, TransportError

pytestmark = pytest.mark.anyio

BASE_URL = "https://api.x.com"


def policy(slept: list[float], **kwargs) -> RetryPolicy:
    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    return RetryPolicy(sleep=sleep, jitter=lambda: 0.5, **kwargs)


async def test_a_get_is_retried_with_growing_delays_then_succeeds():
    slept: list[float] = []
    with respx.mock(base_url=BASE_URL, assert_all_called=True) as x:
        route = x.get("/2/users/me").mock(
            side_effect=[httpx.Response(503), httpx.ConnectError("down"), httpx.Response(200, json={"data": {}})]
        )
        async with XClient(StaticTokenProvider("t"), retry=policy(slept)) as client:
            assert await client.request("GET", "/2/users/me") == {"data": {}}
    assert route.call_count == 3
    assert slept == [0.5, 1.0]  # base 0.5 s, doubling, jitter factor 1.0 here


async def test_a_post_is_never_retried_unless_marked_idempotent():
    slept: list[float] = []
    with respx.mock(base_url=BASE_URL) as x:
        tweets = x.post("/2/tweets").mock(return_value=httpx.Response(503))
        likes = x.post("/2/users/1/likes").mock(
            side_effect=[httpx.Response(503), httpx.Response(200, json={"data": {"liked": True}})]
        )
        async with XClient(StaticTokenProvider("t"), retry=policy(slept)) as client:
            with pytest.raises(ServerError):
                await client.request("POST", "/2/tweets", json={"text": "x"})
            await client.request("POST", "/2/users/{id}/likes", path_params={"id": "1"}, json={}, idempotent=True)
    assert (tweets.call_count, likes.call_count) == (1, 2)


async def test_retries_stop_at_the_attempt_limit_and_the_total_delay_bound():
    slept: list[float] = []
    with respx.mock(base_url=BASE_URL) as x:
        route = x.get("/2/users/me").mock(return_value=httpx.Response(500))
        async with XClient(StaticTokenProvider("t"), retry=policy(slept, attempts=10, max_total_delay=3.0)) as client:
            with pytest.raises(ServerError):
                await client.request("GET", "/2/users/me")
    # 0.5 + 1.0 fit in 3 s; the next 2.0 would not.
    assert slept == [0.5, 1.0] and route.call_count == 3


async def test_a_429_is_not_retried_and_nothing_is_retried_in_a_spent_window():
    slept: list[float] = []
    spent = {"x-rate-limit-limit": "1", "x-rate-limit-remaining": "0", "x-rate-limit-reset": "4102444800"}
    with respx.mock(base_url=BASE_URL) as x:
        limited = x.get("/2/users/me").mock(return_value=httpx.Response(429, headers=spent, json={"title": "Too Many"}))
        failing = x.get("/2/users/by/username/a").mock(
            side_effect=[
                httpx.Response(200, headers=spent, json={"data": {"id": "1", "username": "a"}}),
                httpx.ConnectError("down"),
            ]
        )
        async with XClient(StaticTokenProvider("t"), retry=policy(slept)) as client:
            with pytest.raises(RateLimitedError):
                await client.request("GET", "/2/users/me")
            await client.request("GET", "/2/users/by/username/{username}", path_params={"username": "a"})
            with pytest.raises(NotSentError):
                await client.request("GET", "/2/users/by/username/{username}", path_params={"username": "a"})
    assert (limited.call_count, failing.call_count, slept) == (1, 2, [])


# X's 24-hour windows beside the 15-minute one (header names as X's live API sends them; see tools/errors.py).
DAY_SPENT = {
    "x-rate-limit-limit": "50",
    "x-rate-limit-remaining": "49",
    "x-rate-limit-reset": "4102444800",
    "x-user-limit-24hour-limit": "1000",
    "x-user-limit-24hour-remaining": "0",
    "x-user-limit-24hour-reset": "4102531200",
}


async def test_nothing_is_retried_while_a_24_hour_window_is_spent_even_with_15_minute_calls_left():
    slept: list[float] = []
    with respx.mock(base_url=BASE_URL) as x:
        likes = x.post("/2/users/1/likes").mock(
            side_effect=[httpx.Response(200, headers=DAY_SPENT, json={"data": {"liked": True}}), httpx.Response(503)]
        )
        async with XClient(StaticTokenProvider("t"), retry=policy(slept)) as client:
            await client.request("POST", "/2/users/{id}/likes", path_params={"id": "1"}, json={}, idempotent=True)
            with pytest.raises(ServerError):
                await client.request("POST", "/2/users/{id}/likes", path_params={"id": "1"}, json={}, idempotent=True)
            window = client.rate_limits["POST /2/users/{id}/likes"].spent_window()
    assert (likes.call_count, slept) == (2, [])
    assert window is not None and (window.name, window.reset_at) == ("24-hour per-user", 4102531200.0)


async def test_a_retry_that_cannot_connect_after_an_attempt_that_reached_x_is_not_called_not_sent():
    slept: list[float] = []
    with respx.mock(base_url=BASE_URL) as x:
        x.post("/2/users/1/retweets").mock(
            side_effect=[httpx.ReadTimeout("timed out"), httpx.ConnectError("[Errno 111] Connection refused")]
        )
        async with XClient(StaticTokenProvider("t"), retry=policy(slept, attempts=2)) as client:
            with pytest.raises(TransportError) as info:
                await client.request(
                    "POST", "/2/users/{id}/retweets", path_params={"id": "1"}, json={}, idempotent=True
                )
    # The first attempt may have reposted: "nothing was sent" would be untrue.
    assert not isinstance(info.value, NotSentError)
    assert "earlier attempt reached X" in str(info.value)


async def test_a_call_that_never_reached_x_stays_not_sent_after_its_retries():
    slept: list[float] = []
    with respx.mock(base_url=BASE_URL) as x:
        route = x.get("/2/users/me").mock(side_effect=httpx.ConnectError("[Errno 111] Connection refused"))
        async with XClient(StaticTokenProvider("t"), retry=policy(slept)) as client:
            with pytest.raises(NotSentError):
                await client.request("GET", "/2/users/me")
    assert route.call_count == 3


async def test_a_post_that_could_not_connect_is_not_retried():
    slept: list[float] = []
    with respx.mock(base_url=BASE_URL) as x:
        route = x.post("/2/tweets").mock(side_effect=httpx.ConnectError("[Errno 111] Connection refused"))
        async with XClient(StaticTokenProvider("t"), retry=policy(slept)) as client:
            with pytest.raises(NotSentError):
                await client.request("POST", "/2/tweets", json={"text": "x"})
    assert (route.call_count, slept) == (1, [])


# -- several users' logins behind one client (hosted mode's poller): rate limits per login --------------

TIMELINE = "GET /2/users/{id}/tweets"
FUTURE = "4102444800"
USER_SPENT = {"x-rate-limit-limit": "900", "x-rate-limit-remaining": "0", "x-rate-limit-reset": FUTURE}
APP_SPENT = {
    "x-rate-limit-limit": "900",
    "x-rate-limit-remaining": "800",
    "x-rate-limit-reset": FUTURE,
    "x-app-limit-24hour-limit": "10000",
    "x-app-limit-24hour-remaining": "0",
    "x-app-limit-24hour-reset": "4102531200",
}
FRESH = {"x-rate-limit-limit": "900", "x-rate-limit-remaining": "899", "x-rate-limit-reset": FUTURE}


class Pool:
    """A LoginPool of fixed tokens, preferring the first login (as the poller prefers the newest subscriber)."""

    def __init__(self, **tokens: str) -> None:
        self.tokens = tokens

    def logins(self) -> list[str]:
        return list(self.tokens)

    async def login_token(self, login: str) -> str:
        return self.tokens[login]

    async def refresh_login(self, login: str, rejected: str) -> str | None:
        return None


def answering(by_token: dict[str, httpx.Response]) -> tuple[list[str], object]:
    """X's answers by the bearer token sent, and the tokens in the order X saw them."""
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        token = request.headers["Authorization"].removeprefix("Bearer ")
        seen.append(token)
        return by_token[token]

    return seen, answer


async def timeline(client: XClient) -> dict:
    return await client.request("GET", "/2/users/{id}/tweets", path_params={"id": "9"})


async def test_a_login_that_spent_its_own_budget_hands_the_call_to_the_next_login():
    seen, answer = answering(
        {
            "carol": httpx.Response(429, headers=USER_SPENT, json={"title": "Too Many Requests"}),
            "alice": httpx.Response(200, headers=FRESH, json={"data": []}),
        }
    )
    with respx.mock(base_url=BASE_URL) as x:
        x.get("/2/users/9/tweets").mock(side_effect=answer)
        async with XClient(Pool(carol="carol", alice="alice"), retry=policy([])) as client:
            assert await timeline(client) == {"data": []}
            assert await timeline(client) == {"data": []}
            budget = client.rate_limit_for(TIMELINE)
    # One 429 teaches the client that carol's login is spent; from then on it goes straight to alice's.
    assert seen == ["carol", "alice", "alice"]
    assert budget is not None and budget.remaining == 899


async def test_only_when_every_login_is_spent_does_the_client_say_wait_without_calling_x():
    seen, answer = answering(
        {
            "carol": httpx.Response(429, headers=USER_SPENT, json={"title": "Too Many Requests"}),
            "alice": httpx.Response(
                429, headers={**USER_SPENT, "x-rate-limit-reset": "4102444000"}, json={"title": "Too Many"}
            ),
        }
    )
    with respx.mock(base_url=BASE_URL) as x:
        x.get("/2/users/9/tweets").mock(side_effect=answer)
        async with XClient(Pool(carol="carol", alice="alice"), retry=policy([])) as client:
            with pytest.raises(RateLimitedError):
                await timeline(client)
            with pytest.raises(RateLimitedError) as info:
                await timeline(client)
    assert seen == ["carol", "alice"]  # the second call never reached X
    assert info.value.reset_at == 4102444000.0  # the login that frees up first


async def test_a_spent_app_window_stops_every_login_of_the_app():
    seen, answer = answering(
        {
            "carol": httpx.Response(429, headers=APP_SPENT, json={"title": "Too Many Requests"}),
            "alice": httpx.Response(200, headers=FRESH, json={"data": []}),
        }
    )
    with respx.mock(base_url=BASE_URL) as x:
        x.get("/2/users/9/tweets").mock(side_effect=answer)
        async with XClient(Pool(carol="carol", alice="alice"), retry=policy([])) as client:
            with pytest.raises(RateLimitedError):
                await timeline(client)
            with pytest.raises(RateLimitedError) as info:
                await timeline(client)
    # X counts x-app-limit-24hour-* for the whole app: alice's login is no way round it.
    assert seen == ["carol"]
    assert info.value.window is not None and info.value.window.name == "24-hour per-app"
