"""Video end to end: an MCP client calls createPost / sendDirectMessage / createThread with an mp4 on the
sandbox; the video is uploaded in segments, X (the sandbox) processes it while progress notifications
arrive, and only then is the post or message made. Processing failures and oversized files are
reported as errors, with nothing posted."""

from __future__ import annotations

import base64
import struct
from collections.abc import AsyncIterator
from typing import Any

import pytest
from mcp import Client

from xcourier.server.app import build_server
from xcourier.server.inventory import select_tools
from xcourier.server.runtime import Runtime
from xcourier.tools.client import RetryPolicy
from xcourier.tools.media import MAX_VIDEO_BYTES, VIDEO_SEGMENT_BYTES

pytestmark = pytest.mark.anyio

MB = 1024 * 1024
MODES = ["legacy", "auto"]
MEDIA_CALLS = (
    "POST /2/media/upload/initialize",
    "POST /2/media/upload/{id}/append",
    "POST /2/media/upload/{id}/finalize",
    "GET /2/media/upload",
)


def mp4(size: int) -> bytes:
    """A minimal ISO base media file: an ftyp box (brand isom), then one mdat box filling the rest."""
    ftyp = struct.pack(">I4s4sI", 24, b"ftyp", b"isom", 0x200) + b"isom" + b"mp41"
    return ftyp + struct.pack(">I4s", size - len(ftyp), b"mdat") + b"\x01" * (size - len(ftyp) - 8)


def text_of(result: Any) -> str:
    return "\n".join(block.text for block in result.content if block.type == "text")


class Waits:
    """Stands in for the client's sleep: records each wait X asked for, waits for none."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.seconds.append(seconds)


class Progress:
    def __init__(self) -> None:
        self.seen: list[tuple[float, float | None, str | None]] = []

    async def __call__(self, progress: float, total: float | None, message: str | None) -> None:
        self.seen.append((progress, total, message))


@pytest.fixture
def waits(runtime: Runtime) -> Waits:
    recorder = Waits()
    runtime.client.retry = RetryPolicy(sleep=recorder.sleep)  # the sleep injection STATUS polling goes through
    return recorder


@pytest.fixture(params=MODES)
async def client(request: pytest.FixtureRequest, runtime: Runtime, waits: Waits) -> AsyncIterator[Client]:
    runtime.tools = select_tools(toolsets=("posting", "messages"))
    async with Client(build_server(runtime), mode=request.param) as connected:
        yield connected


def video_file(runtime: Runtime, name: str, size: int) -> dict[str, str]:
    path = runtime.media.roots[0] / name
    path.write_bytes(mp4(size))
    return {"url": str(path), "name": name}


def media_calls(admin: Any) -> dict[str, int]:
    calls = admin.calls()
    return {name: calls.get(name, 0) for name in MEDIA_CALLS}


async def test_a_local_mp4_is_uploaded_processed_and_posted_with_progress(client, admin, runtime, sandbox, waits):
    progress = Progress()

    result = await client.call_tool(
        "createPost",
        {"text": "a clip", "media": [video_file(runtime, "clip.mp4", 9 * MB)]},
        progress_callback=progress,
    )

    assert result.is_error is False, text_of(result)
    post = sandbox.sandbox.posts[result.structured_content["data"]["id"]]
    (key,) = post.media_keys
    assert key.startswith("7_")  # X's media key prefix for a video
    assert sandbox.sandbox.media[key[2:]].category == "tweet_video"
    assert media_calls(admin) == {
        "POST /2/media/upload/initialize": 1,
        "POST /2/media/upload/{id}/append": -(-9 * MB // VIDEO_SEGMENT_BYTES),
        "POST /2/media/upload/{id}/finalize": 1,
        "GET /2/media/upload": 4,  # pending -> 25% -> 50% -> 75% -> succeeded
    }
    assert waits.seconds == [1, 1, 1, 1]  # each check_after_secs the sandbox asked for
    done = [p for p, _, _ in progress.seen]
    assert done == sorted(done) and progress.seen[-1][0] == progress.seen[-1][1] == 2 * 9 * MB
    messages = [m or "" for _, _, m in progress.seen]
    assert any(m.startswith("Uploading clip.mp4: ") for m in messages)
    assert [m for m in messages if m.startswith("X is processing")] == [
        f"X is processing clip.mp4 ({p}%)" for p in (25, 50, 75)
    ]


async def test_a_failed_processing_is_reported_and_nothing_is_posted(client, admin, runtime, sandbox):
    admin.http.post(
        "/media/processing", json={"fail_next": 1, "failure": "InvalidMedia: file is invalid"}
    ).raise_for_status()
    before = admin.calls().get("POST /2/tweets", 0)

    result = await client.call_tool("createPost", {"text": "broken", "media": [video_file(runtime, "bad.mp4", MB)]})

    assert result.is_error is True
    said = text_of(result)
    assert "bad.mp4: X could not process the upload (file is invalid); nothing was posted" in said
    assert "H.264" in said  # says what X needs
    assert admin.calls().get("POST /2/tweets", 0) == before


async def test_a_513_mb_video_is_refused_before_it_is_read_or_sent(client, admin, runtime):
    path = runtime.media.roots[0] / "huge.mp4"
    with path.open("wb") as handle:  # sparse: 513 MB declared, no disk used, never read
        handle.write(mp4(64))
        handle.truncate(MAX_VIDEO_BYTES + MB)
    huge = {"url": str(path), "name": "huge.mp4"}

    result = await client.call_tool("createPost", {"text": "too big", "media": [huge]})

    assert result.is_error is True
    assert "huge.mp4: 513.0 MB is over X's 512 MB limit for videos" in text_of(result)
    assert media_calls(admin) == dict.fromkeys(MEDIA_CALLS, 0)


async def test_a_video_and_an_image_on_one_post_are_refused_before_anything_is_sent(client, admin, runtime):
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 32).decode()
    media = [video_file(runtime, "clip.mp4", 5000), {"url": f"data:image/png;base64,{png}", "name": "dot.png"}]

    result = await client.call_tool("createPost", {"text": "both", "media": media})

    assert result.is_error is True
    assert "Post the video on its own" in text_of(result)
    assert media_calls(admin) == dict.fromkeys(MEDIA_CALLS, 0)


async def test_a_dm_carries_a_video_uploaded_as_dm_video(client, runtime, sandbox):
    clip = {"url": "data:video/mp4;base64," + base64.b64encode(mp4(200_000)).decode(), "name": "clip.mp4"}

    result = await client.call_tool("sendDirectMessage", {"username": "alice", "text": "watch", "media": [clip]})

    assert result.is_error is False, text_of(result)
    (dm,) = sandbox.sandbox.dms
    (media_id,) = dm.attachments
    assert sandbox.sandbox.media[media_id].category == "dm_video"
    assert sandbox.sandbox.media[media_id].size == 200_000


async def test_a_thread_uploads_and_processes_its_video_before_the_first_post(client, admin, runtime, sandbox):
    posts = [{"text": "first"}, {"text": "the clip", "media": [video_file(runtime, "clip.mp4", 5000)]}]

    result = await client.call_tool("createThread", {"posts": posts})

    assert result.is_error is False, text_of(result)
    first, second = (sandbox.sandbox.posts[p["id"]] for p in result.structured_content["data"]["posts"])
    assert second.in_reply_to is first and second.media_keys[0].startswith("7_")
    order = [r["endpoint"] for r in admin.http.get("/requests").json()["requests"]]
    last_status = max(i for i, endpoint in enumerate(order) if endpoint == "GET /2/media/upload")
    assert order.index("POST /2/tweets") > last_status  # processed before the first post was made
