"""Small builders shared by the sandbox tests."""

from __future__ import annotations

import base64

import httpx

DEMO_ID = "1700000000000000001"
ALICE_ID = "1700000000000000002"
BOB_ID = "1700000000000000003"
CAROL_ID = "1700000000000000004"

# Pass as `extensions=INVALID` on a request a test sends malformed on purpose: the spec check of
# the request body is skipped, the response is still checked.
INVALID = {"deliberately_invalid": True}

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
GIF = b"GIF89a" + b"\x00" * 64


def upload_png(client: httpx.Client, category: str = "tweet_image", data: bytes = PNG) -> str:
    response = client.post(
        "/2/media/upload", files={"media": ("a.png", data, "image/png")}, data={"media_category": category}
    )
    assert response.status_code == 200, response.text
    return response.json()["data"]["id"]


def upload_png_json(client: httpx.Client, category: str = "tweet_image") -> httpx.Response:
    return client.post(
        "/2/media/upload",
        json={"media": base64.b64encode(PNG).decode(), "media_category": category},
    )


def admin_post(admin: httpx.Client, username: str, text: str) -> str:
    response = admin.post("/_sandbox/posts", json={"username": username, "text": text})
    assert response.status_code == 201, response.text
    return response.json()["data"]["id"]
