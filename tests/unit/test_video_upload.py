"""Video: how a file becomes an mp4/mov attachment (magic bytes, 512 MB, one per post), how it is read
(in segments, never whole), and the exact chunked request sequence X receives (respx), each request
held against spec 2.167, with STATUS polling that honours check_after_secs and is bounded."""

from __future__ import annotations

import base64
import os
import struct
from pathlib import Path

import httpx
import pytest
import respx

from xcourier.tools import media as media_module
from xcourier.tools.client import RetryPolicy, XClient
from xcourier.tools.errors import InvalidInputError, ServerError
from xcourier.tools.media import (
    MAX_PROCESSING_WAIT_SECS,
    MAX_VIDEO_BYTES,
    VIDEO_SEGMENT_BYTES,
    Base64Video,
    FileVideo,
    MediaLoader,
    load_all,
    sniff_mime_type,
    upload_all,
)
from xcourier.tools.messages import send_direct_message
from xcourier.tools.models import FileEntry
from xcourier.tools.posts import create_post
from xcourier.tools.users import UserDirectory

from .captured import PNG, data_uri, form_fields, json_body, multipart_parts
from .spec import validate_query, validate_request_body, validate_response_body

pytestmark = pytest.mark.anyio

MB = 1024 * 1024
MEDIA_ID = "1880028106020515840"
CREATED = {"data": {"id": "1445880548472328192", "text": "clip", "edit_history_tweet_ids": ["1445880548472328192"]}}


def mp4(size: int = 4096, brand: bytes = b"isom") -> bytes:
    """A minimal ISO base media file: an ftyp box (major brand, minor version, compatible brands), then
    one mdat box filling the rest."""
    ftyp = struct.pack(">I4s4sI", 24, b"ftyp", brand, 0x200) + b"isom" + b"mp41"
    return ftyp + struct.pack(">I4s", size - len(ftyp), b"mdat") + b"\x01" * (size - len(ftyp) - 8)


def sparse_mp4(path: Path, size: int) -> Path:
    """A file of `size` bytes that starts like an mp4 and takes no disk space (a hole after the header)."""
    with path.open("wb") as handle:
        handle.write(mp4(64))
        handle.truncate(size)
    return path


def media(**extra: object) -> dict[str, object]:
    return {"data": {"id": MEDIA_ID, "media_key": f"7_{MEDIA_ID}", "expires_after_secs": 86400, **extra}}


def info(state: str, check_after: int | None = None, percent: int | None = None) -> dict[str, object]:
    processing: dict[str, object] = {"state": state}
    if check_after is not None:
        processing["check_after_secs"] = check_after
    if percent is not None:
        processing["progress_percent"] = percent
    return media(processing_info=processing)


class Recorded:
    def __init__(self) -> None:
        self.sleeps: list[float] = []
        self.progress: list[tuple[float, float, str]] = []

    async def sleep(self, seconds: float) -> None:  # no real waiting
        self.sleeps.append(seconds)

    async def report(self, done: float, total: float, message: str) -> None:
        self.progress.append((done, total, message))


@pytest.fixture
def recorded() -> Recorded:
    return Recorded()


def video_routes(x: respx.MockRouter, *status: dict[str, object], final: dict[str, object] | None = None):
    init = x.post("/2/media/upload/initialize").respond(200, json=media())
    append = x.post(f"/2/media/upload/{MEDIA_ID}/append").respond(200, json={"data": {"expires_at": 1767225600}})
    finalize = x.post(f"/2/media/upload/{MEDIA_ID}/finalize").respond(200, json=final or info("pending", check_after=1))
    polls = x.get("/2/media/upload").mock(side_effect=[httpx.Response(200, json=body) for body in status])
    return init, append, finalize, polls


def entry(content: bytes, name: str = "clip.mp4", mime_type: str = "video/mp4") -> FileEntry:
    return FileEntry(name=name, url=data_uri(content, mime_type), mimeType=mime_type)


async def load(content: bytes, name: str = "clip.mp4", mime_type: str = "video/mp4"):
    return await MediaLoader().load(entry(content, name, mime_type), 0)


# ---- recognising a video ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        pytest.param(mp4(64, b"isom"), "video/mp4", id="isom"),
        pytest.param(mp4(64, b"mp42"), "video/mp4", id="mp42"),
        pytest.param(mp4(64, b"qt  "), "video/quicktime", id="quicktime-ftyp"),
        pytest.param(struct.pack(">I4s", 8, b"moov") + b"\x00" * 8, "video/quicktime", id="quicktime-classic"),
        pytest.param(mp4(64, b"heic"), None, id="heif-image"),
        pytest.param(mp4(64, b"M4A "), None, id="m4a-audio"),
        pytest.param(b"\x00\x00\x00\x18ftyp", None, id="truncated"),
    ],
)
def test_a_video_is_known_by_its_first_box_not_its_name(head: bytes, expected: str | None):
    assert sniff_mime_type(head) == expected


async def test_an_mp4_becomes_a_video_attachment_read_from_a_source():
    attachment = await load(mp4(10_000))

    assert attachment.mime_type == "video/mp4" and attachment.is_video
    assert attachment.content == b""  # nothing held beside the source
    assert attachment.size == 10_000
    assert attachment.category("tweet") == "tweet_video" and attachment.category("dm") == "dm_video"


async def test_a_mov_declared_as_mp4_is_reconciled_by_the_bytes():
    attachment = await load(mp4(4096, b"qt  "), "clip.mp4", "video/mp4")

    assert attachment.mime_type == "video/quicktime"


@pytest.mark.parametrize(
    ("content", "mime_type", "says"),
    [
        pytest.param(mp4(4096), "image/png", ("'image/png'", "video/mp4"), id="video-declared-as-image"),
        pytest.param(PNG, "video/mp4", ("'video/mp4'", "image/png"), id="image-declared-as-video"),
        pytest.param(mp4(4096, b"heic"), "video/mp4", ("not a supported image or video",), id="heif-named-mp4"),
        pytest.param(b"RIFF\x00\x00\x00\x00AVI LIST", "video/mp4", ("MP4 or MOV",), id="avi-named-mp4"),
    ],
)
async def test_a_video_whose_bytes_and_hints_disagree_is_refused(content: bytes, mime_type: str, says: tuple[str]):
    with pytest.raises(InvalidInputError) as refused:
        await load(content, "clip.mp4", mime_type)

    assert all(part in str(refused.value) for part in says), str(refused.value)


@pytest.mark.parametrize(
    ("others", "says"),
    [
        pytest.param([entry(PNG, "a.png", "image/png")], "cannot share it with 1 other attachment", id="with-image"),
        pytest.param([entry(mp4(5000))], "exactly one GIF or one video", id="two-videos"),
    ],
)
async def test_a_video_goes_on_a_post_alone(others: list[FileEntry], says: str):
    with pytest.raises(InvalidInputError) as refused:
        await load_all(MediaLoader(), [entry(mp4()), *others], 4, "A post")

    assert says in str(refused.value) and "Post the video on its own" in str(refused.value)


# ---- reading without holding it ---------------------------------------------------------------------


async def test_a_local_video_over_512_mb_is_refused_before_it_is_read(media_root: Path, monkeypatch):
    path = sparse_mp4(media_root / "huge.mp4", MAX_VIDEO_BYTES + MB)  # 513 MB declared, no disk used
    reads: list[int] = []
    original = os.pread
    monkeypatch.setattr(os, "pread", lambda fd, n, offset: reads.append(n) or original(fd, n, offset))

    with pytest.raises(InvalidInputError) as refused:
        await MediaLoader(roots=[media_root]).load(FileEntry(url=str(path)), 0)

    assert "513.0 MB is over X's 512 MB limit for videos" in str(refused.value)
    assert reads == []  # only the 16-byte head was looked at


async def test_a_local_video_of_exactly_512_mb_is_accepted_and_read_in_segments(media_root: Path):
    path = sparse_mp4(media_root / "big.mp4", MAX_VIDEO_BYTES)

    attachment = await MediaLoader(roots=[media_root]).load(FileEntry(url=str(path)), 0)
    source = attachment.source
    assert isinstance(source, FileVideo) and attachment.size == MAX_VIDEO_BYTES
    first = await anext(source.segments(VIDEO_SEGMENT_BYTES, "big.mp4"))
    attachment.close()

    assert len(first) == VIDEO_SEGMENT_BYTES and first.startswith(mp4(64)[:24])


async def test_a_local_video_that_shrinks_after_the_check_is_not_uploaded(x, client: XClient, media_root: Path):
    path = media_root / "clip.mp4"
    path.write_bytes(mp4(6 * MB))
    attachment = await MediaLoader(roots=[media_root]).load(FileEntry(url=str(path)), 0)
    os.truncate(path, 5 * MB)  # the same file, shorter, after it was checked
    x.post("/2/media/upload/initialize").respond(200, json=media())
    x.post(f"/2/media/upload/{MEDIA_ID}/append").respond(200, json={"data": {"expires_at": 1767225600}})

    with pytest.raises(InvalidInputError) as refused:
        await upload_all(client, [attachment], "tweet")

    assert "changed while it was being uploaded" in str(refused.value)
    assert "/finalize" not in " ".join(str(call.request.url) for call in x.calls)


@pytest.mark.parametrize("offset", [0, 1, 2, 3, 4097, 9_999])
async def test_a_base64_video_is_decoded_one_piece_at_a_time_exactly(offset: int):
    content = mp4(10_000)
    source = (await load(content)).source
    assert isinstance(source, Base64Video)

    assert await source.read(offset, 1234) == content[offset : offset + 1234]


async def test_a_base64_video_with_a_bad_character_is_refused_before_upload():
    url = data_uri(mp4(4096), "video/mp4")
    broken = url[:-40] + "!" + url[-39:]

    with pytest.raises(InvalidInputError) as refused:
        await MediaLoader().load(FileEntry(name="clip.mp4", url=broken), 0)

    assert "not valid base64" in str(refused.value)


async def test_a_base64_video_over_the_video_limit_is_refused_before_decoding(monkeypatch):
    # The limit shrunk to 1 MB so that the test needs no 700 MB string; the arithmetic is the same.
    monkeypatch.setattr(media_module, "MAX_VIDEO_BYTES", MB)
    decoded: list[int] = []
    monkeypatch.setattr(media_module, "Base64Video", lambda *args: decoded.append(1))
    url = "data:video/mp4;base64," + base64.b64encode(mp4(24)).decode() + "A" * (4 * (MB // 3 + 10))

    with pytest.raises(InvalidInputError) as refused:
        await MediaLoader().load(FileEntry(name="clip.mp4", url=url), 0)

    assert "over X's 1 MB limit for videos" in str(refused.value)
    assert decoded == []


# ---- the requests X receives ------------------------------------------------------------------------


async def test_a_video_goes_through_initialize_4mb_appends_finalize_and_status(
    x, client: XClient, recorded: Recorded, media_root: Path
):
    content = mp4(9 * MB + 4321)  # two full segments and a short one
    (media_root / "clip.mp4").write_bytes(content)
    init, append, finalize, polls = video_routes(
        x, info("in_progress", check_after=3, percent=40), info("succeeded", percent=100)
    )
    attachment = await MediaLoader(roots=[media_root]).load(FileEntry(url=str(media_root / "clip.mp4")), 0)

    ids = await upload_all(client, [attachment], "tweet", progress=recorded.report, sleep=recorded.sleep)

    assert ids == [MEDIA_ID]
    body = json_body(init.calls.last.request)
    assert body == {"media_type": "video/mp4", "total_bytes": len(content), "media_category": "tweet_video"}
    validate_request_body("POST", "/2/media/upload/initialize", body)
    parts = [multipart_parts(call.request) for call in append.calls]
    assert [form_fields(call.request) for call in append.calls] == [{"segment_index": str(i)} for i in range(3)]
    assert [len(p["media"].content) for p in parts] == [VIDEO_SEGMENT_BYTES, VIDEO_SEGMENT_BYTES, MB + 4321]
    assert b"".join(p["media"].content for p in parts) == content
    for call in append.calls:
        validate_request_body(
            "POST",
            "/2/media/upload/{id}/append",
            {**form_fields(call.request), "media": "<binary>"},
            "multipart/form-data",
        )
    assert finalize.calls.last.request.content == b""
    for call in polls.calls:
        assert dict(call.request.url.params) == {"command": "STATUS", "media_id": MEDIA_ID}
        validate_query("GET", "/2/media/upload", dict(call.request.url.params))
    assert recorded.sleeps == [1, 3]  # check_after_secs from FINALIZE, then from STATUS
    assert [call.request.url.path for call in x.calls] == [
        "/2/media/upload/initialize",
        *[f"/2/media/upload/{MEDIA_ID}/append"] * 3,
        f"/2/media/upload/{MEDIA_ID}/finalize",
        "/2/media/upload",
        "/2/media/upload",
    ]


def test_the_answers_the_video_tests_replay_are_x_s_documented_shapes():
    for body in (info("pending", check_after=1), info("in_progress", 3, 40), info("succeeded", percent=100)):
        validate_response_body("POST", "/2/media/upload/{id}/finalize", body)
        validate_response_body("GET", "/2/media/upload", body)
    validate_response_body("POST", "/2/media/upload/initialize", media())


async def test_progress_counts_upload_bytes_then_processing_percent(x, client: XClient, recorded: Recorded):
    content = mp4(5 * MB)
    video_routes(x, info("in_progress", 1, 50), info("succeeded", percent=100))

    await upload_all(client, [await load(content)], "tweet", progress=recorded.report, sleep=recorded.sleep)

    done = [p[0] for p in recorded.progress]
    assert done == sorted(done) and len(set(done)) == len(done)  # only ever rises
    assert {p[1] for p in recorded.progress} == {2.0 * len(content)}  # bytes sent + processing share
    assert recorded.progress[0][:2] == (VIDEO_SEGMENT_BYTES, 2.0 * len(content))
    assert ("X is processing clip.mp4 (50%)") in [p[2] for p in recorded.progress]
    assert recorded.progress[-1][0] == recorded.progress[-1][1]


@pytest.mark.parametrize(
    ("failed", "reason"),
    [
        pytest.param(
            {
                **info("failed", percent=30),
                "errors": [{"title": "InvalidMedia", "detail": "file is invalid", "type": "about:blank"}],
            },
            "file is invalid",
            id="spec-2.167-partial-error",
        ),
        pytest.param(
            media(processing_info={"state": "failed", "error": {"code": 1, "name": "InvalidMedia", "message": "bad"}}),
            "bad",
            id="v1.1-processing-error",
        ),
    ],
)
async def test_failed_processing_gives_x_s_reason_and_nothing_is_posted(
    x, client: XClient, recorded: Recorded, failed: dict, reason: str
):
    video_routes(x, failed)  # and no POST /2/tweets route: a post attempt would fail the test
    client.retry = RetryPolicy(attempts=1, sleep=recorded.sleep)  # create_post waits through the client's sleep

    with pytest.raises(InvalidInputError) as refused:
        await create_post(client, MediaLoader(), text="clip", media=[entry(mp4())])

    message = str(refused.value)
    assert f"X could not process the upload ({reason})" in message
    assert "nothing was posted" in message and "H.264" in message
    assert recorded.sleeps == [1]  # FINALIZE's check_after_secs, waited through the injected sleep


async def test_processing_is_given_up_after_the_total_wait_bound(x, client: XClient, recorded: Recorded):
    still = info("in_progress", check_after=30, percent=10)
    rounds = int(MAX_PROCESSING_WAIT_SECS // 30)
    video_routes(x, *[still] * rounds, final=still)

    with pytest.raises(ServerError) as stopped:
        await upload_all(client, [await load(mp4())], "tweet", sleep=recorded.sleep)

    assert sum(recorded.sleeps) == MAX_PROCESSING_WAIT_SECS
    assert "still processing" in str(stopped.value) and "nothing was posted" in str(stopped.value)


async def test_a_video_post_carries_the_one_media_id(x, client: XClient):
    video_routes(x, info("succeeded", percent=100), final=info("pending", check_after=0))
    tweets = x.post("/2/tweets").respond(201, json=CREATED)

    await create_post(client, MediaLoader(), text="clip", media=[entry(mp4())])

    body = json_body(tweets.calls.last.request)
    assert body == {"text": "clip", "media": {"media_ids": [MEDIA_ID]}}
    validate_request_body("POST", "/2/tweets", body)


async def test_a_dm_video_goes_as_dm_video(x, client: XClient, users: UserDirectory):
    x.get("/2/users/by/username/bob").respond(
        200, json={"data": {"id": "2244994945", "name": "Bob", "username": "bob"}}
    )
    init, _, _, _ = video_routes(x, info("succeeded", percent=100), final=info("pending", check_after=0))
    sent = x.post("/2/dm_conversations/with/2244994945/messages").respond(
        201, json={"data": {"dm_conversation_id": "1-2244994945", "dm_event_id": "1580705921830768647"}}
    )

    await send_direct_message(client, users, MediaLoader(), "bob", "a clip", [entry(mp4(), "clip.mov")])

    assert json_body(init.calls.last.request)["media_category"] == "dm_video"
    body = json_body(sent.calls.last.request)
    assert body == {"text": "a clip", "attachments": [{"media_id": MEDIA_ID}]}
    validate_request_body("POST", "/2/dm_conversations/with/{participant_id}/messages", body)
