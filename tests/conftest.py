"""Shared fixtures: one sandbox per test session on loopback, reset before each test that uses it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from xcourier.server.app import build_server
from xcourier.server.runtime import Runtime
from xcourier.server.sandbox import SandboxServer
from xcourier.server.settings import Settings


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[SandboxServer]:
    with SandboxServer() as server:
        yield server


@pytest.fixture
def sandbox(sandbox_server: SandboxServer) -> SandboxServer:
    sandbox_server.sandbox.reset()
    return sandbox_server


class Admin:
    """The sandbox's admin API, as a test (or a user) reaches it: over HTTP."""

    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(base_url=base_url + "/_sandbox", timeout=10)

    def calls(self) -> dict[str, int]:
        return self.http.get("/calls").raise_for_status().json()["calls"]

    def x_calls(self) -> int:
        return sum(self.calls().values())

    def state(self) -> dict:
        return self.http.get("/state").raise_for_status().json()

    def post_as(self, username: str, text: str) -> dict:
        return self.http.post("/posts", json={"username": username, "text": text}).raise_for_status().json()

    def fault(self, endpoint: str, kind: str, **extra: object) -> None:
        self.http.post("/faults", json={"endpoint": endpoint, "kind": kind, **extra}).raise_for_status()

    def rate_limit(self, endpoint: str, limit: int) -> None:
        self.http.post("/rate-limits", json={"endpoint": endpoint, "limit": limit}).raise_for_status()


@pytest.fixture
def admin(sandbox: SandboxServer) -> Iterator[Admin]:
    client = Admin(sandbox.base_url)
    yield client
    client.http.close()


@pytest.fixture
async def runtime(sandbox: SandboxServer, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Runtime]:
    media_root = tmp_path_factory.mktemp("media")
    async with Runtime.open(Settings(sandbox=True, media_roots=(media_root,)), sandbox_server=sandbox) as rt:
        yield rt


@pytest.fixture
def mcp_server(runtime: Runtime):
    return build_server(runtime)
