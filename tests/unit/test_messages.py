"""sendDirectMessage: username -> id (cached), optional dm_image upload, then the message."""

from __future__ import annotations

import pytest

from xcourier.tools.client import XClient
from xcourier.tools.media import MediaLoader
from xcourier.tools.messages import send_direct_message
from xcourier.tools.users import UserDirectory

from .captured import JPEG, TOKEN, bearer, form_fields, image_entry, json_body, multipart_parts
from .spec import validate_request_body

pytestmark = pytest.mark.anyio

BOB_ID = "1551200000000000001"
BOB = {"data": {"id": BOB_ID, "name": "Bob", "username": "Bob_99"}}
SENT = {"data": {"dm_conversation_id": "1551200000000000001-2244994945", "dm_event_id": "1580705921830768647"}}
MESSAGES = f"/2/dm_conversations/with/{BOB_ID}/messages"


async def test_dm_looks_up_the_user_then_sends_the_text(x, client: XClient, users: UserDirectory, loader: MediaLoader):
    lookup = x.get("/2/users/by/username/Bob_99").respond(200, json=BOB)
    messages = x.post(MESSAGES).respond(201, json=SENT)

    result = await send_direct_message(client, users, loader, "Bob_99", "hi Bob")

    assert lookup.calls.last.request.method == "GET"
    assert not lookup.calls.last.request.url.query
    assert bearer(lookup.calls.last.request) == f"Bearer {TOKEN}"
    request = messages.calls.last.request
    assert request.method == "POST"
    assert not request.url.query
    assert bearer(request) == f"Bearer {TOKEN}"
    assert json_body(request) == {"text": "hi Bob"}
    validate_request_body("POST", "/2/dm_conversations/with/{participant_id}/messages", json_body(request))
    assert result.model_dump() == SENT


async def test_dm_strips_the_at_sign_from_the_username(x, client: XClient, users: UserDirectory, loader: MediaLoader):
    lookup = x.get("/2/users/by/username/Bob_99").respond(200, json=BOB)
    x.post(MESSAGES).respond(201, json=SENT)

    await send_direct_message(client, users, loader, "@Bob_99", "hi")

    assert lookup.calls.last.request.url.path == "/2/users/by/username/Bob_99"


async def test_username_lookup_is_cached_case_insensitively(
    x, client: XClient, users: UserDirectory, loader: MediaLoader
):
    lookup = x.get("/2/users/by/username/Bob_99").respond(200, json=BOB)
    messages = x.post(MESSAGES).respond(201, json=SENT)

    await send_direct_message(client, users, loader, "Bob_99", "one")
    await send_direct_message(client, users, loader, "bob_99", "two")
    await send_direct_message(client, users, loader, "@BOB_99", "three")

    assert lookup.call_count == 1
    assert [json_body(call.request)["text"] for call in messages.calls] == ["one", "two", "three"]


async def test_dm_with_an_image_uploads_it_as_dm_image_and_attaches_it(
    x, client: XClient, users: UserDirectory, loader: MediaLoader
):
    x.get("/2/users/by/username/Bob_99").respond(200, json=BOB)
    upload = x.post("/2/media/upload").respond(200, json={"data": {"id": "1100000000000000009"}})
    messages = x.post(MESSAGES).respond(201, json=SENT)

    await send_direct_message(
        client, users, loader, "Bob_99", "look", media=[image_entry(JPEG, "cat.jpg", "image/jpeg")]
    )

    assert form_fields(upload.calls.last.request) == {"media_category": "dm_image"}
    validate_request_body(
        "POST",
        "/2/media/upload",
        {**form_fields(upload.calls.last.request), "media": "<binary>"},
        "multipart/form-data",
    )
    assert multipart_parts(upload.calls.last.request)["media"].content == JPEG
    assert bearer(upload.calls.last.request) == f"Bearer {TOKEN}"
    body = json_body(messages.calls.last.request)
    assert body == {"text": "look", "attachments": [{"media_id": "1100000000000000009"}]}
    validate_request_body("POST", "/2/dm_conversations/with/{participant_id}/messages", body)
    assert [call.request.url.path for call in x.calls] == ["/2/users/by/username/Bob_99", "/2/media/upload", MESSAGES]
