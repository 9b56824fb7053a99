"""tools/list is a contract: any change to it shows up as a diff of tests/snapshots/tools_list.json.

Refresh on purpose with: XCOURIER_UPDATE_SNAPSHOTS=1 pytest tests/mcp/test_schema_snapshot.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from mcp import Client

pytestmark = pytest.mark.anyio

SNAPSHOT = Path(__file__).parent.parent / "snapshots" / "tools_list.json"


async def test_tools_list_matches_the_snapshot(mcp_server):
    async with Client(mcp_server, mode="legacy") as client:
        tools = (await client.list_tools()).tools
    current = [tool.model_dump(mode="json", by_alias=True, exclude_none=True) for tool in tools]
    rendered = json.dumps(current, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    if os.environ.get("XCOURIER_UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.write_text(rendered, encoding="utf-8")
    assert SNAPSHOT.exists(), "no snapshot yet: run with XCOURIER_UPDATE_SNAPSHOTS=1 and review the file"
    assert rendered == SNAPSHOT.read_text(encoding="utf-8"), (
        "tools/list changed. If intended, refresh the snapshot with XCOURIER_UPDATE_SNAPSHOTS=1 and review the diff."
    )
