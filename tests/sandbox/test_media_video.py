"""Video in the sandbox: the chunked upload, processing as X's STATUS walks it (pending -> in_progress
-> succeeded | failed), the admin knob that drives it, and posts/DMs with processed and unprocessed
video. Every X request and response here is checked against spec 2.167 by the conftest's client."""

from __future__ import annotations

import struct

import httpx
import pytest

from .helpers import upload_png

MB = 1024 * 1024


def mp4(size: int = 4096, brand: bytes = b"isom") -> bytes:
    """A minimal ISO base media file: an ftyp box, then one mdat box filling the rest."""
    ftyp = struct.pack(">I4s4sI", 24, b"ftyp", brand, 0x200) + b"isom" + b"mp41"
    return ftyp + struct.pack(">I4s", size - len(ftyp), b"mdat") + b"\x00" * (size - len(ftyp) - 8)


def initialize(x: httpx.Client, content: bytes, category: str = "tweet_video", media_type: str = "video/mp4") -> str:
    body = {"media_type": media_type, "total_bytes": len(content), "media_category": category}
    response = x.post("/2/media/upload/initialize", json=body)
    assert response.status_code == 200, response.text
    return response.json()["data"]["id"]


def append(x: httpx.Client, media_id: str, index: int, segment: bytes) -> httpx.Response:
    return x.post(
        f"/2/media/upload/{media_id}/append",
        files={"media": ("blob", segment, "application/octet-stream")},
        data={"segment_index": str(index)},
    )


def upload(x: httpx.Client, content: bytes, category: str = "tweet_video", segment: int = 4 * MB) -> dict:
    """Initialize, append and finalize; the finalize answer's data."""
    media_id = initialize(x, content, category)
    for index, start in enumerate(range(0, len(content), segment)):
        assert append(x, media_id, index, content[start : start + segment]).status_code == 200
    return x.post(f"/2/media/upload/{media_id}/finalize").json()["data"]


def status(x: httpx.Client, media_id: str) -> httpx.Response:
    return x.get("/2/media/upload", params={"command": "STATUS", "media_id": media_id})


def post_with(x: httpx.Client, media_id: str, text: str = "a video") -> httpx.Response:
    return x.post("/2/tweets", json={"text": text, "media": {"media_ids": [media_id]}})


def test_a_video_processes_pending_in_progress_succeeded_one_step_per_status_call(x: httpx.Client) -> None:
    final = upload(x, mp4(9 * MB))

    assert final["size"] == 9 * MB
    assert final["media_key"] == f"7_{final['id']}"  # X's media key prefix for a video
    assert final["processing_info"] == {"state": "pending", "check_after_secs": 1}
    seen = [status(x, final["id"]).json()["data"] for _ in range(5)]
    assert [d["processing_info"] for d in seen] == [
        {"state": "in_progress", "check_after_secs": 1, "progress_percent": 25},
        {"state": "in_progress", "check_after_secs": 1, "progress_percent": 50},
        {"state": "in_progress", "check_after_secs": 1, "progress_percent": 75},
        {"state": "succeeded", "progress_percent": 100},
        {"state": "succeeded", "progress_percent": 100},
    ]
    assert seen[-1]["video"] == {"video_type": "video/mp4"}


def test_a_post_referencing_a_video_still_processing_is_refused_then_made(x: httpx.Client) -> None:
    media_id = upload(x, mp4())["id"]

    refused = post_with(x, media_id)
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["message"] == "Your media IDs are invalid."
    for _ in range(4):
        status(x, media_id)
    made = post_with(x, media_id)
    assert made.status_code == 201, made.text


def test_the_admin_knob_sets_steps_and_check_after_secs(x: httpx.Client, admin: httpx.Client) -> None:
    knob = admin.post("/_sandbox/media/processing", json={"steps": {"video": 1}, "check_after_secs": 7})
    assert knob.status_code == 200
    assert knob.json()["processing"]["steps"] == {"gif": 1, "video": 1}
    final = upload(x, mp4())

    assert final["processing_info"] == {"state": "pending", "check_after_secs": 7}
    assert status(x, final["id"]).json()["data"]["processing_info"]["progress_percent"] == 50
    assert status(x, final["id"]).json()["data"]["processing_info"]["state"] == "succeeded"


def test_a_processing_failure_injected_by_the_admin_api_fails_with_x_s_reason(
    x: httpx.Client, admin: httpx.Client
) -> None:
    admin.post("/_sandbox/media/processing", json={"fail_next": 1, "steps": 1}).raise_for_status()
    failing = upload(x, mp4())["id"]
    fine = upload(x, mp4(5000))["id"]  # only the next one fails

    status(x, failing)
    body = status(x, failing).json()
    assert body["data"]["processing_info"] == {"state": "failed", "progress_percent": 50}
    assert body["errors"][0]["title"] == "InvalidMedia"
    assert body["errors"][0]["detail"] == "file is invalid"
    assert post_with(x, failing).status_code == 400
    for _ in range(2):
        status(x, fine)
    assert post_with(x, fine).status_code == 201


def test_bytes_that_are_no_video_fail_processing_not_the_upload(x: httpx.Client) -> None:
    final = upload(x, b"this is not a video at all" * 100)

    assert final["processing_info"]["state"] == "pending"
    states = [status(x, final["id"]).json()["data"]["processing_info"]["state"] for _ in range(4)]
    assert states == ["in_progress", "in_progress", "in_progress", "failed"]


def test_a_segment_over_8_mb_is_refused(x: httpx.Client) -> None:
    content = mp4(9 * MB)
    media_id = initialize(x, content)

    response = append(x, media_id, 0, content)

    assert response.status_code == 400
    assert "at most 8 MB" in response.json()["errors"][0]["message"]


def test_a_video_over_512_mb_is_refused_at_initialize(x: httpx.Client) -> None:
    body = {"media_type": "video/mp4", "total_bytes": 513 * MB, "media_category": "tweet_video"}

    response = x.post("/2/media/upload/initialize", json=body)

    assert response.status_code == 400
    assert "512 MB" in response.json()["errors"][0]["message"]


def test_a_video_cannot_share_a_post_with_an_image(x: httpx.Client) -> None:
    video = upload(x, mp4())["id"]
    for _ in range(4):
        status(x, video)
    image = upload_png(x)

    response = x.post("/2/tweets", json={"text": "both", "media": {"media_ids": [video, image]}})

    assert response.status_code == 400
    assert "single GIF or video" in response.json()["errors"][0]["message"]


@pytest.mark.parametrize(("category", "accepted"), [("dm_video", True), ("tweet_video", False)])
def test_a_dm_takes_a_dm_video_only(x: httpx.Client, category: str, accepted: bool) -> None:
    media_id = upload(x, mp4(), category)["id"]
    for _ in range(4):
        status(x, media_id)
    bob = x.get("/2/users/by/username/bob").json()["data"]["id"]

    response = x.post(
        f"/2/dm_conversations/with/{bob}/messages", json={"text": "clip", "attachments": [{"media_id": media_id}]}
    )

    assert (response.status_code == 201) is accepted, response.text


@pytest.mark.parametrize(
    "body",
    [{"steps": -1}, {"steps": {"image": 2}}, {"check_after_secs": "soon"}, {"fail_next": True}, {"colour": 1}],
)
def test_the_processing_knob_refuses_bad_settings(admin: httpx.Client, body: dict) -> None:
    response = admin.post("/_sandbox/media/processing", json=body)

    assert response.status_code == 400
    assert response.json()["error"]


def test_a_reset_restores_the_default_processing(admin: httpx.Client) -> None:
    admin.post("/_sandbox/media/processing", json={"fail_next": 3, "check_after_secs": 9}).raise_for_status()
    admin.post("/_sandbox/reset").raise_for_status()

    plan = admin.get("/_sandbox/media/processing").json()["processing"]

    assert plan["fail_next"] == 0 and plan["check_after_secs"] == 1


def test_the_one_shot_upload_refuses_a_video(x: httpx.Client) -> None:
    # X: "Use the chunked upload flow for all videos" (x-api/media/quickstart/best-practices.mdx).
    response = x.post(
        "/2/media/upload", files={"media": ("a.mp4", mp4(), "video/mp4")}, data={"media_category": "tweet_video"}
    )

    assert response.status_code == 400
