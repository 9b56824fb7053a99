"""A 401 gets exactly one retry, with the token the provider hands out after it; never a loop."""

from __future__ import annotations

import httpx
import pytest
import respx

from xcourier.tools.client import XClient
from xcourier.tools.errors import ForbiddenError, UnauthorizedError
from xcourier.tools.media import MediaLoader
from xcourier.tools.posts import create_post

from .captured import BASE_URL, PNG, TOKEN, bearer, image_entry, json_body, multipart_parts

pytestmark = pytest.mark.anyio

CREATED = {"data": {"id": "1445880548472328192", "text": "hello", "edit_history_tweet_ids": ["1445880548472328192"]}}
UNAUTHORIZED = httpx.Response(
    401, json={"title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"}
)


class RefreshingTokens:
    """A provider that answers a 401 with `refreshed` (None: it has nothing better)."""

    def __init__(self, refreshed: str | None) -> None:
        self.current = TOKEN
        self.refreshed = refreshed
        self.rejected: list[str] = []

    async def access_token(self) -> str:
        return self.current

    async def refresh_after_unauthorized(self, rejected: str) -> str | None:
        self.rejected.append(rejected)
        if self.refreshed is not None:
            self.current = self.refreshed
        return self.refreshed


@pytest.fixture
def x():
    with respx.mock(base_url=BASE_URL, assert_all_called=True, assert_all_mocked=True) as router:
        yield router


async def create(tokens: RefreshingTokens, **kwargs):
    async with XClient(tokens, base_url=BASE_URL) as client:
        return await create_post(client, MediaLoader(), **kwargs)


async def test_401_retries_once_with_the_refreshed_token(x):
    tokens = RefreshingTokens("new-token")
    route = x.post("/2/tweets").mock(side_effect=[UNAUTHORIZED, httpx.Response(201, json=CREATED)])

    result = await create(tokens, text="hello")

    assert route.call_count == 2
    assert [bearer(call.request) for call in route.calls] == [f"Bearer {TOKEN}", "Bearer new-token"]
    assert [json_body(call.request) for call in route.calls] == [{"text": "hello"}, {"text": "hello"}]
    assert tokens.rejected == [TOKEN]
    assert result.data.id == "1445880548472328192"


async def test_401_retry_resends_the_upload_with_the_same_bytes(x):
    tokens = RefreshingTokens("new-token")
    upload = x.post("/2/media/upload").mock(
        side_effect=[UNAUTHORIZED, httpx.Response(200, json={"data": {"id": "1100000000000000001"}})]
    )
    x.post("/2/tweets").respond(201, json=CREATED)

    await create(tokens, media=[image_entry(PNG)])

    assert [bearer(call.request) for call in upload.calls] == [f"Bearer {TOKEN}", "Bearer new-token"]
    assert [multipart_parts(call.request)["media"].content for call in upload.calls] == [PNG, PNG]


async def test_401_without_a_new_token_is_unauthorized_after_one_request(x):
    tokens = RefreshingTokens(None)
    route = x.post("/2/tweets").mock(return_value=UNAUTHORIZED)

    with pytest.raises(UnauthorizedError):
        await create(tokens, text="hello")

    assert route.call_count == 1
    assert tokens.rejected == [TOKEN]


async def test_401_when_the_provider_returns_the_same_token_is_not_retried(x):
    tokens = RefreshingTokens(TOKEN)
    route = x.post("/2/tweets").mock(return_value=UNAUTHORIZED)

    with pytest.raises(UnauthorizedError):
        await create(tokens, text="hello")

    assert route.call_count == 1


async def test_second_401_after_the_retry_is_unauthorized_without_a_third_request(x):
    tokens = RefreshingTokens("new-token")
    route = x.post("/2/tweets").mock(side_effect=[UNAUTHORIZED, UNAUTHORIZED, httpx.Response(201, json=CREATED)])

    with pytest.raises(UnauthorizedError) as info:
        await create(tokens, text="hello")

    assert route.call_count == 2
    assert tokens.rejected == [TOKEN]
    assert info.value.status == 401
    assert "new-token" not in repr(info.value) and TOKEN not in repr(info.value)


async def test_non_401_failures_do_not_ask_for_a_new_token(x):
    tokens = RefreshingTokens("new-token")
    x.post("/2/tweets").respond(403, json={"title": "Forbidden", "detail": "Forbidden", "type": "about:blank"})

    with pytest.raises(ForbiddenError):
        await create(tokens, text="hello")

    assert tokens.rejected == []
