"""Whether the X API a server acts on is an `xcourier sandbox`: asked of loopback http only, so X itself is
never probed, and anything but the sandbox's own answer counts as X."""

from __future__ import annotations

import httpx
import pytest
import respx

from xcourier.server.serve import is_xcourier_sandbox

pytestmark = pytest.mark.anyio


async def test_the_sandbox_is_recognised_by_its_admin_api(sandbox):
    assert await is_xcourier_sandbox(sandbox.base_url)


@respx.mock(assert_all_called=False)
async def test_x_itself_is_never_asked(respx_mock: respx.MockRouter):
    route = respx_mock.route()
    assert not await is_xcourier_sandbox("https://api.x.com")
    assert not await is_xcourier_sandbox("https://127.0.0.1:8443")  # https: a tunnel to X, perhaps
    assert not route.called


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(404, json={"title": "Not Found Error"}),
        httpx.Response(200, json={"data": {"id": "1"}}),
        httpx.Response(200, text="<html>"),
    ],
)
@respx.mock
async def test_any_other_answer_on_loopback_counts_as_x(response: httpx.Response, respx_mock: respx.MockRouter):
    respx_mock.get("http://127.0.0.1:8080/_sandbox/calls").mock(return_value=response)
    assert not await is_xcourier_sandbox("http://127.0.0.1:8080")


@respx.mock
async def test_nothing_listening_counts_as_x(respx_mock: respx.MockRouter):
    respx_mock.get("http://127.0.0.1:9/_sandbox/calls").mock(side_effect=httpx.ConnectError("refused"))
    assert not await is_xcourier_sandbox("http://127.0.0.1:9")
