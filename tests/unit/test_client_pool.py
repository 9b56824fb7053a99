"""The X client's pooled httpx client: made by the first request, one per XClient, closed by aclose.

Making an httpx.AsyncClient imports httpcore and h11 (~15 ms): a stdio server that is spawned, lists its
tools and exits must not pay that, so XClient makes its pool when it first talks to X.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any, ClassVar

import anyio
import httpx
import pytest
import respx

from xcourier.tools import client as client_module
from xcourier.tools.client import RetryPolicy, StaticTokenProvider, XClient, tls_context

from .captured import BASE_URL, TOKEN

pytestmark = pytest.mark.anyio

ME = {"data": {"id": "1", "username": "me", "name": "Me"}}


class CountingAsyncClient(client_module._CookielessClient):
    """XClient's httpx client, recording how often, and with what, XClient made one."""

    made: ClassVar[list[dict[str, Any]]] = []

    def __init__(self, **kwargs: Any) -> None:
        CountingAsyncClient.made.append(kwargs)
        super().__init__(**kwargs)


@pytest.fixture
def made(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    CountingAsyncClient.made = []
    monkeypatch.setattr(client_module, "_CookielessClient", CountingAsyncClient)
    return CountingAsyncClient.made


def new_client() -> XClient:
    return XClient(StaticTokenProvider(TOKEN), base_url=BASE_URL, retry=RetryPolicy(attempts=1))


def test_making_a_client_imports_no_http_transport():
    # A fresh interpreter: this test process has long imported httpcore.
    program = (
        "import sys\n"
        "from xcourier.tools.client import StaticTokenProvider, XClient\n"
        "XClient(StaticTokenProvider('t'))\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('httpcore', 'h11')))\n"
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith("XCOURIER_")}
    out = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == "[]"


async def test_concurrent_first_calls_share_one_pooled_client(x: respx.MockRouter, made: list[dict[str, Any]]):
    me = x.get("/2/users/me").respond(200, json=ME)
    client = new_client()
    assert made == []
    answers: list[dict[str, Any]] = []

    async def call() -> None:
        answers.append(await client.request("GET", "/2/users/me"))

    async with anyio.create_task_group() as group:
        for _ in range(8):
            group.start_soon(call)
    await client.aclose()

    assert answers == [ME] * 8
    assert me.call_count == 8
    assert len(made) == 1


async def test_the_pooled_client_uses_the_process_s_one_tls_context(x: respx.MockRouter, made: list[dict[str, Any]]):
    x.get("/2/users/me").respond(200, json=ME)
    async with new_client() as client:
        await client.request("GET", "/2/users/me")
    assert made[0]["verify"] is tls_context()
    assert made[0]["headers"] == {"User-Agent": "xcourier"}


async def test_the_pooled_client_sends_the_bearer_token_and_user_agent(x: respx.MockRouter):
    me = x.get("/2/users/me").respond(200, json=ME)
    async with new_client() as client:
        await client.request("GET", "/2/users/me")
    request = me.calls.last.request
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["User-Agent"] == "xcourier"


async def test_closing_an_unused_client_makes_no_pool(made: list[dict[str, Any]]):
    client = new_client()
    await client.aclose()
    assert made == []


async def test_aclose_closes_the_pool_it_made(x: respx.MockRouter):
    x.get("/2/users/me").respond(200, json=ME)
    client = new_client()
    await client.request("GET", "/2/users/me")
    pool = client._http
    assert pool is not None and not pool.is_closed
    await client.aclose()
    assert pool.is_closed


async def test_a_closed_client_refuses_calls_instead_of_opening_a_new_pool(made: list[dict[str, Any]]):
    client = new_client()
    await client.aclose()
    with pytest.raises(RuntimeError, match="This XClient is closed; make a new one"):
        await client.request("POST", "/2/tweets", json={"text": "hi"})
    assert made == []


async def test_a_borrowed_client_is_used_and_left_open(x: respx.MockRouter, made: list[dict[str, Any]]):
    me = x.get("/2/users/me").respond(200, json=ME)
    async with httpx.AsyncClient() as borrowed:
        made.clear()  # the borrowed one is the caller's, made above
        client = XClient(StaticTokenProvider(TOKEN), base_url=BASE_URL, http=borrowed)
        await client.request("GET", "/2/users/me")
        await client.aclose()
        assert not borrowed.is_closed
    assert me.call_count == 1
    assert made == []


async def test_cookies_x_sets_are_never_kept_nor_sent(x: respx.MockRouter):
    # Bearer tokens authenticate every call; a cookie kept from one answer would ride along on later
    # requests, whoever's token they carry (hosted mode shares the pool between users).
    x.get("/2/users/me").mock(
        return_value=httpx.Response(200, json=ME, headers={"set-cookie": "guest_id=v1%3A1; Path=/"})
    )
    async with new_client() as xclient:
        await xclient.request("GET", "/2/users/me")
        await xclient.request("GET", "/2/users/me")
    sent = [call.request for call in x.calls]
    assert len(sent) == 2
    assert all("cookie" not in request.headers for request in sent)
