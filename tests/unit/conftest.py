"""Fixtures for the tools/ unit tests: a respx-mocked X that no request can escape."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import respx

from xcourier.tools.client import RetryPolicy, StaticTokenProvider, XClient
from xcourier.tools.media import MediaLoader
from xcourier.tools.users import UserDirectory

from .captured import BASE_URL, TOKEN


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def x() -> Iterator[respx.MockRouter]:
    """X API v2 as respx routes: every route must be called, every request must match a route."""
    with respx.mock(base_url=BASE_URL, assert_all_called=True, assert_all_mocked=True) as router:
        yield router


@pytest.fixture
async def client(x: respx.MockRouter) -> AsyncIterator[XClient]:
    # One attempt: these tests pin single request/response pairs; retries have their own tests.
    async with XClient(StaticTokenProvider(TOKEN), base_url=BASE_URL, retry=RetryPolicy(attempts=1)) as xclient:
        yield xclient


@pytest.fixture
def users(client: XClient) -> UserDirectory:
    return UserDirectory(client)


@pytest.fixture
def media_root(tmp_path: Path) -> Path:
    root = tmp_path / "media"
    root.mkdir()
    return root


@pytest.fixture
def loader(media_root: Path) -> MediaLoader:
    return MediaLoader(roots=[media_root])
