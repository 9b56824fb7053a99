"""Client ID Metadata Documents under attack: slow URLs named on purpose must not block everyone's sign-in.

The registry runs with the real fetcher (SSRF rules, timeout, size cap); only the network is played here,
by a transport in which one site never answers, and a resolver giving every name a public address.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import anyio
import httpx
import pytest

from xcourier.server.auth.memory_store import MemoryTokenStore
from xcourier.server.hosted.clients import MAX_FETCHES_PER_SITE, ClientRegistry
from xcourier.tools.fetch import RemoteFetcher

pytestmark = pytest.mark.anyio

GOOD = "https://good.example/client.json"


async def public_address(host: str, port: int) -> Sequence[str]:
    return ["93.184.216.34"]


class Network:
    """evil.example (any sub-domain) accepts the connection and never answers; good.example serves its document."""

    def __init__(self) -> None:
        self.evil_requests = 0
        self.evil_in_flight = 0
        self.most_evil_in_flight = 0

    async def handle(self, request: httpx.Request) -> httpx.Response:
        host = request.headers["host"]
        if host.endswith("evil.example"):
            self.evil_requests += 1
            self.evil_in_flight += 1
            self.most_evil_in_flight = max(self.most_evil_in_flight, self.evil_in_flight)
            try:
                await anyio.sleep_forever()
            finally:
                self.evil_in_flight -= 1
        document = {"client_id": GOOD, "redirect_uris": ["http://127.0.0.1:9/callback"], "client_name": "good"}
        return httpx.Response(200, content=json.dumps(document).encode())


async def test_slow_client_metadata_urls_from_one_site_do_not_block_other_sign_ins():
    network = Network()
    async with httpx.AsyncClient(transport=httpx.MockTransport(network.handle)) as http:
        fetcher = RemoteFetcher(http=http, resolve=public_address, timeout=0.5)
        registry = ClientRegistry(MemoryTokenStore(), fetcher)
        found: dict[str, object] = {}

        async def look_up(url: str) -> None:
            found[url] = await registry.get(url)

        # The attack: twelve slow URLs at once, on sub-domains of one site (sub-domains cost nothing).
        slow = [f"https://a{i}.evil.example/client.json" for i in range(12)]
        async with anyio.create_task_group() as tasks:
            for url in slow:
                tasks.start_soon(look_up, url)
            await anyio.wait_all_tasks_blocked()
            # Meanwhile a real client signs in: its document is fetched at once.
            good = await registry.get(GOOD)
            assert good is not None and good.client_id == GOOD

        assert network.most_evil_in_flight == MAX_FETCHES_PER_SITE  # not all eight fetch slots
        assert network.evil_requests == MAX_FETCHES_PER_SITE
        assert all(found[url] is None for url in slow)

        # The site failed to answer: for a while no URL on it is fetched at all.
        assert await registry.get("https://fresh.evil.example/client.json") is None
        assert network.evil_requests == MAX_FETCHES_PER_SITE
