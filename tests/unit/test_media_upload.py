"""Uploading to X: simple for small images, chunked for GIFs and large files, STATUS polling,
progress, dedup — the exact requests X receives (respx), and the same flow against the sandbox."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import respx

from xcourier.server.sandbox import SandboxServer
from xcourier.tools.client import StaticTokenProvider, XClient
from xcourier.tools.errors import InvalidInputError, ServerError
from xcourier.tools.media import (
    MAX_STATUS_CHECKS,
    SEGMENT_BYTES,
    SIMPLE_UPLOAD_MAX_BYTES,
    Attachment,
    MediaLoader,
    upload_all,
)
from xcourier.tools.messages import send_direct_message
from xcourier.tools.posts import create_post
from xcourier.tools.users import UserDirectory

from .captured import JPEG, OTHER_PNG, PNG, form_fields, image_entry, json_body, multipart_parts
from .spec import validate_request_body
from .test_media_types import ANIMATED

pytestmark = pytest.mark.anyio

MEDIA_ID = "1200000000000000001"
CREATED = {"data": {"id": "1445880548472328192", "text": "gif", "edit_history_tweet_ids": ["1445880548472328192"]}}
BIG_GIF = ANIMATED + b"\x00" * (2 * SEGMENT_BYTES + 12345)  # three segments, the last one short
BIG_JPEG = JPEG + b"\x00" * (SIMPLE_UPLOAD_MAX_BYTES + 10)  # just over the simple-upload threshold


def media_data(media_id: str = MEDIA_ID, **extra: object) -> dict[str, object]:
    return {"data": {"id": media_id, "media_key": f"16_{media_id}", "expires_after_secs": 86400, **extra}}


def pending(check_after: int, percent: int | None = None, state: str = "pending") -> dict[str, object]:
    info: dict[str, object] = {"state": state, "check_after_secs": check_after}
    if percent is not None:
        info["progress_percent"] = percent
    return media_data(processing_info=info)


class Recorded:
    def __init__(self) -> None:
        self.sleeps: list[float] = []
        self.progress: list[tuple[float, float, str]] = []

    async def sleep(self, seconds: float) -> None:  # no real waiting: tests stay fast and deterministic
        self.sleeps.append(seconds)

    async def report(self, done: float, total: float, message: str) -> None:
        self.progress.append((done, total, message))


@pytest.fixture
def recorded() -> Recorded:
    return Recorded()


def chunked_routes(x: respx.MockRouter, *status: dict[str, object], final: dict[str, object] | None = None):
    init = x.post("/2/media/upload/initialize").respond(200, json=media_data())
    append = x.post(f"/2/media/upload/{MEDIA_ID}/append").respond(200, json={"data": {"expires_at": 1767225600}})
    finalize = x.post(f"/2/media/upload/{MEDIA_ID}/finalize").respond(200, json=final or pending(5))
    # Only when STATUS answers are given: otherwise any STATUS request fails the test.
    polls = (
        x.get("/2/media/upload").mock(side_effect=[httpx.Response(200, json=body) for body in status])
        if status
        else None
    )
    return init, append, finalize, polls


def attachment(content: bytes, label: str = "dance.gif", mime_type: str = "image/gif") -> Attachment:
    return Attachment(label=label, content=content, mime_type=mime_type)


async def test_a_gif_goes_through_initialize_append_finalize_and_status(x, client: XClient, recorded: Recorded):
    init, append, finalize, polls = chunked_routes(
        x,
        pending(2, 40, "in_progress"),
        media_data(processing_info={"state": "succeeded", "progress_percent": 100}),
    )

    ids = await upload_all(client, [attachment(BIG_GIF)], "tweet", sleep=recorded.sleep)

    assert ids == [MEDIA_ID]
    body = json_body(init.calls.last.request)
    assert body == {"media_type": "image/gif", "total_bytes": len(BIG_GIF), "media_category": "tweet_gif"}
    validate_request_body("POST", "/2/media/upload/initialize", body)
    segments = [multipart_parts(call.request) for call in append.calls]
    assert [form_fields(call.request) for call in append.calls] == [{"segment_index": str(i)} for i in range(3)]
    assert [len(parts["media"].content) for parts in segments] == [SEGMENT_BYTES, SEGMENT_BYTES, 12345 + len(ANIMATED)]
    assert b"".join(parts["media"].content for parts in segments) == BIG_GIF
    for call in append.calls:
        validate_request_body(
            "POST",
            "/2/media/upload/{id}/append",
            {**form_fields(call.request), "media": "<binary>"},
            "multipart/form-data",
        )
    assert finalize.calls.last.request.content == b""
    assert [dict(call.request.url.params) for call in polls.calls] == [{"command": "STATUS", "media_id": MEDIA_ID}] * 2
    assert recorded.sleeps == [5, 2]  # honours check_after_secs from finalize, then from STATUS
    assert [call.request.url.path for call in x.calls] == [
        "/2/media/upload/initialize",
        *[f"/2/media/upload/{MEDIA_ID}/append"] * 3,
        f"/2/media/upload/{MEDIA_ID}/finalize",
        "/2/media/upload",
        "/2/media/upload",
    ]


async def test_a_post_with_a_gif_waits_for_processing_then_attaches_it(x, client: XClient, recorded: Recorded):
    # check_after_secs 0: create_post sleeps with anyio.sleep, and the test must not wait.
    chunked_routes(x, media_data(processing_info={"state": "succeeded"}), final=pending(0))
    tweets = x.post("/2/tweets").respond(201, json=CREATED)
    loader = MediaLoader()

    await create_post(client, loader, text="gif", media=[image_entry(ANIMATED, "dance.gif", "image/gif")])

    assert json_body(tweets.calls.last.request) == {"text": "gif", "media": {"media_ids": [MEDIA_ID]}}
    assert x.calls[-2].request.url.path == "/2/media/upload"  # STATUS said succeeded before the post


async def test_failed_processing_is_an_error_and_nothing_is_posted(x, client: XClient):
    chunked_routes(
        x,
        media_data(
            processing_info={"state": "failed", "error": {"code": 1, "name": "InvalidMedia", "message": "Invalid GIF"}}
        ),
        final=pending(0),
    )

    with pytest.raises(InvalidInputError) as info:
        await create_post(client, MediaLoader(), text="gif", media=[image_entry(ANIMATED, "dance.gif", "image/gif")])

    assert "dance.gif" in str(info.value)
    assert "Invalid GIF" in str(info.value)
    assert "nothing was posted" in str(info.value)
    assert "/2/tweets" not in [call.request.url.path for call in x.calls]


async def test_failed_state_straight_from_finalize_stops_without_polling(x, client: XClient):
    x.post("/2/media/upload/initialize").respond(200, json=media_data())
    x.post(f"/2/media/upload/{MEDIA_ID}/append").respond(200, json={"data": {}})
    x.post(f"/2/media/upload/{MEDIA_ID}/finalize").respond(
        200, json=media_data(processing_info={"state": "failed", "error": {"name": "InvalidMedia"}})
    )

    with pytest.raises(InvalidInputError, match="InvalidMedia"):
        await upload_all(client, [attachment(ANIMATED)], "tweet")


async def test_status_polling_is_bounded(x, client: XClient, recorded: Recorded):
    chunked_routes(x, *[pending(1)] * MAX_STATUS_CHECKS)

    with pytest.raises(ServerError, match="still processing"):
        await upload_all(client, [attachment(ANIMATED)], "tweet", sleep=recorded.sleep)

    assert len(recorded.sleeps) == MAX_STATUS_CHECKS


async def test_a_large_still_image_is_chunked_as_tweet_image_without_status_polls(x, client: XClient):
    init, append, _, _ = chunked_routes(x, final=media_data())  # no STATUS route: X reported no processing

    ids = await upload_all(client, [attachment(BIG_JPEG, "big.jpg", "image/jpeg")], "tweet")

    assert ids == [MEDIA_ID]
    assert json_body(init.calls.last.request)["media_category"] == "tweet_image"
    assert append.call_count == 2


async def test_a_small_image_uses_the_simple_upload(x, client: XClient):
    upload = x.post("/2/media/upload").respond(200, json=media_data())

    await upload_all(client, [attachment(PNG, "a.png", "image/png")], "dm")

    # Spec 2.167's one-shot body has no media_type (additionalProperties false): X reads the bytes.
    assert form_fields(upload.calls.last.request) == {"media_category": "dm_image"}
    validate_request_body(
        "POST",
        "/2/media/upload",
        {**form_fields(upload.calls.last.request), "media": "<binary>"},
        "multipart/form-data",
    )


async def test_progress_rises_to_the_total_through_upload_and_processing(x, client: XClient, recorded: Recorded):
    chunked_routes(x, pending(1, 50, "in_progress"), media_data(processing_info={"state": "succeeded"}))

    await upload_all(client, [attachment(BIG_GIF)], "tweet", progress=recorded.report, sleep=recorded.sleep)

    done = [d for d, _, _ in recorded.progress]
    totals = {t for _, t, _ in recorded.progress}
    assert totals == {2.0 * len(BIG_GIF)}  # bytes sent plus an equal share for X's processing
    assert done == sorted(set(done))  # strictly increasing, as MCP requires
    assert done[:3] == [SEGMENT_BYTES, 2 * SEGMENT_BYTES, len(BIG_GIF)]
    assert done[3] == len(BIG_GIF) * 1.5  # progress_percent 50
    assert done[-1] == 2 * len(BIG_GIF)
    assert "processing" in recorded.progress[3][2]


async def test_progress_for_simple_uploads_counts_each_file(x, client: XClient, recorded: Recorded):
    x.post("/2/media/upload").mock(
        side_effect=[httpx.Response(200, json=media_data("1")), httpx.Response(200, json=media_data("2"))]
    )

    await upload_all(
        client,
        [attachment(PNG, "a.png", "image/png"), attachment(OTHER_PNG, "b.png", "image/png")],
        "tweet",
        progress=recorded.report,
    )

    total = float(len(PNG) + len(OTHER_PNG))
    assert [(d, t) for d, t, _ in recorded.progress] == [(len(PNG), total), (total, total)]


async def test_identical_bytes_are_uploaded_once_even_when_chunked(x, client: XClient, recorded: Recorded):
    init, append, _, _ = chunked_routes(x, final=media_data())
    tweets = x.post("/2/tweets").respond(201, json=CREATED)
    media = [image_entry(BIG_JPEG, "a.jpg", "image/jpeg"), image_entry(BIG_JPEG, "copy.jpg", "image/jpeg")]

    await create_post(client, MediaLoader(), text="twice", media=media, progress=recorded.report)

    assert init.call_count == 1
    assert append.call_count == 2
    assert json_body(tweets.calls.last.request)["media"] == {"media_ids": [MEDIA_ID]}
    assert recorded.progress[-1][0] == recorded.progress[-1][1] == 2.0 * len(BIG_JPEG)


async def test_a_dm_can_carry_one_gif(x, client: XClient, users: UserDirectory):
    x.get("/2/users/by/username/Bob_99").respond(200, json={"data": {"id": "42", "name": "Bob", "username": "Bob_99"}})
    init, _, _, _ = chunked_routes(x, media_data(processing_info={"state": "succeeded"}), final=pending(0))
    send = x.post("/2/dm_conversations/with/42/messages").respond(
        201, json={"data": {"dm_conversation_id": "1-42", "dm_event_id": "7"}}
    )

    await send_direct_message(
        client, users, MediaLoader(), "Bob_99", "look", media=[image_entry(ANIMATED, "a.gif", "image/gif")]
    )

    assert json_body(init.calls.last.request)["media_category"] == "dm_gif"
    assert json_body(send.calls.last.request) == {"text": "look", "attachments": [{"media_id": MEDIA_ID}]}


# ---- against the sandbox: X's emulator, sharing no code with the client -------------------------


@pytest.fixture
async def sandbox_client(sandbox: SandboxServer) -> AsyncIterator[XClient]:
    token, _ = sandbox.sandbox.mint_token()
    async with XClient(StaticTokenProvider(token), base_url=sandbox.base_url) as xclient:
        yield xclient


async def test_a_gif_post_through_the_sandbox(sandbox: SandboxServer, sandbox_client: XClient, recorded: Recorded):
    loader = MediaLoader()
    entries = [image_entry(BIG_GIF, "dance.gif", "image/gif")]
    attachments = [await loader.load(entry, i) for i, entry in enumerate(entries)]

    ids = await upload_all(sandbox_client, attachments, "tweet", progress=recorded.report, sleep=recorded.sleep)
    result = await sandbox_client.request("POST", "/2/tweets", json={"text": "dancing", "media": {"media_ids": ids}})

    posts = {p["id"]: p for p in sandbox.sandbox.snapshot()["posts"]}
    assert posts[result["data"]["id"]]["media_keys"] == [f"16_{ids[0]}"]  # an animated-GIF media key
    assert recorded.sleeps == [1, 1]  # pending -> in_progress -> succeeded, check_after_secs 1 each
    assert recorded.progress[-1][0] == recorded.progress[-1][1]


async def test_large_and_small_images_through_the_sandbox(sandbox: SandboxServer, sandbox_client: XClient):
    result = await create_post(
        sandbox_client,
        MediaLoader(),
        media=[image_entry(BIG_JPEG, "big.jpg", "image/jpeg"), image_entry(PNG, "small.png")],
    )

    posts = {p["id"]: p for p in sandbox.sandbox.snapshot()["posts"]}
    assert [key[:2] for key in posts[result.data.id]["media_keys"]] == ["3_", "3_"]


async def test_the_sandbox_refuses_a_gif_on_the_simple_upload(sandbox_client: XClient):
    with pytest.raises(InvalidInputError, match="chunked upload"):
        await sandbox_client.request(
            "POST",
            "/2/media/upload",
            files={"media": ("a.gif", ANIMATED, "image/gif")},
            data={"media_category": "tweet_image"},
        )


async def test_the_sandbox_refuses_a_still_image_under_a_gif_category(sandbox_client: XClient):
    init = await sandbox_client.request(
        "POST",
        "/2/media/upload/initialize",
        json={"media_type": "image/gif", "total_bytes": len(PNG), "media_category": "tweet_gif"},
    )
    media_id = init["data"]["id"]
    await sandbox_client.request(
        "POST",
        "/2/media/upload/{id}/append",
        path_params={"id": media_id},
        files={"media": ("blob", PNG, "application/octet-stream")},
        data={"segment_index": "0"},
    )

    with pytest.raises(InvalidInputError, match="tweet_gif takes GIFs"):
        await sandbox_client.request("POST", "/2/media/upload/{id}/finalize", path_params={"id": media_id})
