"""The capabilities a client is told about are the ones xcourier has: tools, resources (subscribable),
and no prompts, in both protocol generations."""

from __future__ import annotations

import pytest
from mcp import Client

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_no_prompts_capability_is_advertised(mcp_server, mode: str):
    async with Client(mcp_server, mode=mode) as client:
        capabilities = client.server_capabilities
        assert capabilities is not None
        assert capabilities.prompts is None
        assert capabilities.tools is not None
        assert capabilities.resources is not None and capabilities.resources.subscribe is True
        assert (await client.list_prompts()).prompts == []  # asked anyway: an empty list, not an error
