"""Logging in against the sandbox, with the test playing the browser."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
import httpx
import pytest

from xcourier.server.auth import oauth
from xcourier.server.auth.login import login
from xcourier.server.auth.sqlite_store import SQLiteTokenStore
from xcourier.server.auth.store import TokenStore
from xcourier.server.auth.tokenset import TokenSet
from xcourier.server.sandbox import CONFIDENTIAL_CLIENT_ID, CONFIDENTIAL_CLIENT_SECRET, PUBLIC_CLIENT_ID

Browser = Callable[[str], Awaitable[None]]


async def follow(url: str) -> None:
    """What a browser does: open the authorize page, follow its redirect to the callback."""
    async with httpx.AsyncClient() as http:
        authorize = await http.get(url)
        assert authorize.status_code in (302, 303), authorize.text
        await http.get(authorize.headers["location"])


async def log_in(
    app: oauth.OAuthApp,
    store: TokenStore,
    browser: Browser = follow,
    scopes: tuple[str, ...] = oauth.DEFAULT_SCOPES,
    timeout: float = 30.0,
) -> TokenSet:
    send, receive = anyio.create_memory_object_stream[str](1)

    async def browse() -> None:
        await browser(await receive.receive())

    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(browse)
            return await login(app, scopes, store, port=0, timeout=timeout, show_url=send.send_nowait)
    except BaseExceptionGroup as group:
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from None
        raise


@pytest.fixture
def public_app(sandbox) -> oauth.OAuthApp:
    return oauth.OAuthApp(client_id=PUBLIC_CLIENT_ID, api_base_url=sandbox.base_url)


@pytest.fixture
def confidential_app(sandbox) -> oauth.OAuthApp:
    return oauth.OAuthApp(
        client_id=CONFIDENTIAL_CLIENT_ID, client_secret=CONFIDENTIAL_CLIENT_SECRET, api_base_url=sandbox.base_url
    )


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "store" / "xcourier.db"


@pytest.fixture
def store(store_path: Path) -> SQLiteTokenStore:
    return SQLiteTokenStore(store_path)


@pytest.fixture
def grants(admin) -> Callable[[], dict[str, int]]:
    def read() -> dict[str, int]:
        return admin.http.get("/oauth/grants").raise_for_status().json()["grants"]

    return read
