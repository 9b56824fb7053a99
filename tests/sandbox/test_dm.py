from __future__ import annotations

import httpx

from .helpers import ALICE_ID, CAROL_ID, DEMO_ID, INVALID, upload_png


def test_dm_to_alice_returns_201_with_sorted_conversation_id(x: httpx.Client, admin: httpx.Client) -> None:
    response = x.post(f"/2/dm_conversations/with/{ALICE_ID}/messages", json={"text": "hi Alice"})
    assert response.status_code == 201
    data = response.json()["data"]
    assert data["dm_conversation_id"] == f"{DEMO_ID}-{ALICE_ID}"
    assert data["dm_event_id"].isdigit()
    dms = admin.get("/_sandbox/state").json()["dms"]
    assert [(d["sender"], d["recipient"], d["text"]) for d in dms] == [("xcourier_demo", "alice", "hi Alice")]


def test_conversation_id_puts_the_smaller_id_first(client_for) -> None:
    alice = client_for("alice")
    data = alice.post(f"/2/dm_conversations/with/{DEMO_ID}/messages", json={"text": "hey"}).json()["data"]
    assert data["dm_conversation_id"] == f"{DEMO_ID}-{ALICE_ID}"


def test_dm_to_carol_is_403(x: httpx.Client, admin: httpx.Client) -> None:
    response = x.post(f"/2/dm_conversations/with/{CAROL_ID}/messages", json={"text": "hi Carol"})
    assert response.status_code == 403
    assert response.json()["detail"] == "You cannot send messages to this user."
    assert admin.get("/_sandbox/state").json()["dms"] == []


def test_dm_to_unknown_user_is_404(x: httpx.Client) -> None:
    response = x.post("/2/dm_conversations/with/999/messages", json={"text": "hello?"})
    assert response.status_code == 404
    assert response.json()["resource_type"] == "user"


def test_dm_with_one_image_attachment(x: httpx.Client, admin: httpx.Client) -> None:
    media_id = upload_png(x, "dm_image")
    response = x.post(
        f"/2/dm_conversations/with/{ALICE_ID}/messages", json={"text": "look", "attachments": [{"media_id": media_id}]}
    )
    assert response.status_code == 201
    assert admin.get("/_sandbox/state").json()["dms"][0]["attachments"] == [media_id]


def test_dm_with_two_attachments_is_400(x: httpx.Client) -> None:
    ids = [upload_png(x, "dm_image"), upload_png(x, "dm_image")]
    response = x.post(
        f"/2/dm_conversations/with/{ALICE_ID}/messages",
        json={"text": "two", "attachments": [{"media_id": i} for i in ids]},
    )
    assert response.status_code == 400


def test_dm_with_someone_elses_media_is_400(x: httpx.Client, client_for) -> None:
    media_id = upload_png(client_for("bob"), "dm_image")
    response = x.post(
        f"/2/dm_conversations/with/{ALICE_ID}/messages", json={"text": "x", "attachments": [{"media_id": media_id}]}
    )
    assert response.status_code == 400


def test_dm_without_text_or_attachment_is_400(x: httpx.Client) -> None:
    response = x.post(f"/2/dm_conversations/with/{ALICE_ID}/messages", json={}, extensions=INVALID)
    assert response.status_code == 400
