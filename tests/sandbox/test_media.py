from __future__ import annotations

import httpx

from .helpers import GIF, INVALID, PNG, upload_png, upload_png_json


def test_simple_multipart_upload(x: httpx.Client) -> None:
    response = x.post(
        "/2/media/upload", files={"media": ("a.png", PNG, "image/png")}, data={"media_category": "tweet_image"}
    )
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["id"].isdigit()
    assert data["media_key"] == f"3_{data['id']}"
    assert data["size"] == len(PNG)
    assert data["expires_after_secs"] == 86400
    assert "processing_info" not in data


def test_simple_json_base64_upload(x: httpx.Client) -> None:
    response = upload_png_json(x)
    assert response.status_code == 200
    assert response.json()["data"]["size"] == len(PNG)


def test_simple_upload_needs_a_one_shot_category(x: httpx.Client) -> None:
    response = x.post(
        "/2/media/upload", files={"media": ("a.png", PNG, "image/png")}, data={"media_category": "tweet_gif"}
    )
    assert response.status_code == 400


def test_image_over_5_mb_is_400(x: httpx.Client) -> None:
    big = PNG + b"\x00" * (5 * 1024 * 1024)
    response = x.post(
        "/2/media/upload", files={"media": ("a.png", big, "image/png")}, data={"media_category": "tweet_image"}
    )
    assert response.status_code == 400


def test_post_with_four_images_and_not_five(x: httpx.Client, admin: httpx.Client) -> None:
    ids = [upload_png(x) for _ in range(5)]
    assert (
        x.post("/2/tweets", json={"text": "five", "media": {"media_ids": ids}}, extensions=INVALID).status_code == 400
    )
    response = x.post("/2/tweets", json={"text": "four", "media": {"media_ids": ids[:4]}})
    assert response.status_code == 201
    post = next(p for p in admin.get("/_sandbox/state").json()["posts"] if p["id"] == response.json()["data"]["id"])
    assert post["media_keys"] == [f"3_{i}" for i in ids[:4]]


def test_media_only_post(x: httpx.Client) -> None:
    response = x.post("/2/tweets", json={"media": {"media_ids": [upload_png(x)]}})
    assert response.status_code == 201
    assert response.json()["data"]["text"].startswith("https://t.co/")


def test_unknown_or_foreign_media_ids_are_400(x: httpx.Client, client_for) -> None:
    assert x.post("/2/tweets", json={"text": "a", "media": {"media_ids": ["12345"]}}).status_code == 400
    bobs = upload_png(client_for("bob"))
    response = x.post("/2/tweets", json={"text": "b", "media": {"media_ids": [bobs]}})
    assert response.status_code == 400
    assert response.json()["errors"][0]["message"] == "Your media IDs are invalid."


def _chunked_gif(x: httpx.Client) -> str:
    init = x.post(
        "/2/media/upload/initialize",
        json={"media_type": "image/gif", "total_bytes": len(GIF), "media_category": "tweet_gif"},
    )
    assert init.status_code == 200
    media_id = init.json()["data"]["id"]
    assert init.json()["data"]["media_key"] == f"16_{media_id}"
    half = len(GIF) // 2
    for index, chunk in enumerate((GIF[:half], GIF[half:])):
        response = x.post(
            f"/2/media/upload/{media_id}/append",
            files={"media": ("blob", chunk, "application/octet-stream")},
            data={"segment_index": str(index)},
        )
        assert response.status_code == 200, response.text
    return media_id


def test_chunked_gif_upload_goes_pending_in_progress_succeeded(x: httpx.Client) -> None:
    media_id = _chunked_gif(x)
    final = x.post(f"/2/media/upload/{media_id}/finalize").json()["data"]
    assert final["size"] == len(GIF)
    assert final["processing_info"] == {"state": "pending", "check_after_secs": 1}
    states = []
    for _ in range(3):
        info = x.get("/2/media/upload", params={"command": "STATUS", "media_id": media_id}).json()["data"]
        states.append(info["processing_info"]["state"])
    assert states == ["in_progress", "succeeded", "succeeded"]


def test_post_with_unprocessed_gif_is_400_then_fine(x: httpx.Client) -> None:
    media_id = _chunked_gif(x)
    x.post(f"/2/media/upload/{media_id}/finalize")
    assert x.post("/2/tweets", json={"text": "gif", "media": {"media_ids": [media_id]}}).status_code == 400
    for _ in range(2):
        x.get("/2/media/upload", params={"command": "STATUS", "media_id": media_id})
    assert x.post("/2/tweets", json={"text": "gif", "media": {"media_ids": [media_id]}}).status_code == 201


def test_gif_and_image_cannot_share_a_post(x: httpx.Client) -> None:
    gif = _chunked_gif(x)
    x.post(f"/2/media/upload/{gif}/finalize")
    for _ in range(2):
        x.get("/2/media/upload", params={"command": "STATUS", "media_id": gif})
    response = x.post("/2/tweets", json={"text": "mix", "media": {"media_ids": [gif, upload_png(x)]}})
    assert response.status_code == 400


def test_finalize_with_wrong_size_is_400(x: httpx.Client) -> None:
    init = x.post(
        "/2/media/upload/initialize",
        json={"media_type": "image/png", "total_bytes": 999, "media_category": "tweet_image"},
    )
    media_id = init.json()["data"]["id"]
    x.post(
        f"/2/media/upload/{media_id}/append",
        files={"media": ("b", PNG, "application/octet-stream")},
        data={"segment_index": "0"},
    )
    assert x.post(f"/2/media/upload/{media_id}/finalize").status_code == 400


def test_gif_over_15_mb_is_refused_at_initialize(x: httpx.Client) -> None:
    response = x.post(
        "/2/media/upload/initialize",
        json={"media_type": "image/gif", "total_bytes": 15 * 1024 * 1024 + 1, "media_category": "tweet_gif"},
    )
    assert response.status_code == 400
    ok = x.post(
        "/2/media/upload/initialize",
        json={"media_type": "image/gif", "total_bytes": 15 * 1024 * 1024, "media_category": "tweet_gif"},
    )
    assert ok.status_code == 200


def test_chunked_image_needs_no_processing(x: httpx.Client) -> None:
    init = x.post(
        "/2/media/upload/initialize",
        json={"media_type": "image/png", "total_bytes": len(PNG), "media_category": "tweet_image"},
    )
    media_id = init.json()["data"]["id"]
    x.post(
        f"/2/media/upload/{media_id}/append",
        files={"media": ("b", PNG, "application/octet-stream")},
        data={"segment_index": "0"},
    )
    final = x.post(f"/2/media/upload/{media_id}/finalize").json()["data"]
    assert "processing_info" not in final
    assert x.post("/2/tweets", json={"text": "png", "media": {"media_ids": [media_id]}}).status_code == 201


def test_status_of_an_image_is_400(x: httpx.Client) -> None:
    for media_id in (upload_png(x), upload_png_json(x).json()["data"]["id"]):
        response = x.get("/2/media/upload", params={"command": "STATUS", "media_id": media_id})
        assert response.status_code == 400
        assert response.json()["type"] == "https://api.x.com/2/problems/invalid-request"


def test_status_of_someone_elses_media_is_404(x: httpx.Client, client_for) -> None:
    bobs = upload_png(client_for("bob"))
    assert x.get("/2/media/upload", params={"command": "STATUS", "media_id": bobs}).status_code == 404


def test_dm_image_cannot_go_on_a_post(x: httpx.Client) -> None:
    media_id = upload_png(x, "dm_image")
    assert x.post("/2/tweets", json={"text": "dm media", "media": {"media_ids": [media_id]}}).status_code == 400
