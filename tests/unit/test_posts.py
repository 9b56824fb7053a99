"""createPost and deletePost: the exact requests X receives."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import respx

from xcourier.tools.client import XClient
from xcourier.tools.media import MediaLoader
from xcourier.tools.models import FileEntry
from xcourier.tools.posts import create_post, delete_post

from .captured import JPEG, OTHER_PNG, PNG, TOKEN, bearer, form_fields, image_entry, json_body, multipart_parts
from .spec import validate_request_body

pytestmark = pytest.mark.anyio

CREATED = {"data": {"id": "1445880548472328192", "text": "hello", "edit_history_tweet_ids": ["1445880548472328192"]}}


def upload_route(x: respx.MockRouter, *media_ids: str) -> respx.Route:
    return x.post("/2/media/upload").mock(
        side_effect=[
            httpx.Response(200, json={"data": {"id": media_id, "media_key": f"3_{media_id}"}}) for media_id in media_ids
        ]
    )


async def test_text_post_sends_only_the_text(x, client: XClient, loader: MediaLoader):
    route = x.post("/2/tweets").respond(201, json=CREATED)

    result = await create_post(client, loader, text="hello")

    request = route.calls.last.request
    assert request.method == "POST"
    assert request.url.path == "/2/tweets"
    assert not request.url.query
    assert bearer(request) == f"Bearer {TOKEN}"
    assert json_body(request) == {"text": "hello"}
    validate_request_body("POST", "/2/tweets", json_body(request))
    assert result.data.id == "1445880548472328192"
    assert result.data.edit_history_tweet_ids == ["1445880548472328192"]


async def test_post_with_images_uploads_each_then_attaches_their_ids(x, client: XClient, loader: MediaLoader):
    uploads = upload_route(x, "1100000000000000001", "1100000000000000002")
    tweets = x.post("/2/tweets").respond(201, json=CREATED)

    await create_post(
        client,
        loader,
        text="two pictures",
        media=[image_entry(PNG, "a.png"), image_entry(JPEG, "b.jpg", "image/jpeg")],
    )

    assert uploads.call_count == 2
    first, second = (call.request for call in uploads.calls)
    # Spec 2.167's one-shot upload body takes no media_type (additionalProperties: false).
    assert form_fields(first) == {"media_category": "tweet_image"}
    assert multipart_parts(first)["media"].content == PNG
    assert form_fields(second) == {"media_category": "tweet_image"}
    assert multipart_parts(second)["media"].content == JPEG
    assert all(bearer(request) == f"Bearer {TOKEN}" for request in (first, second))
    assert json_body(tweets.calls.last.request) == {
        "text": "two pictures",
        "media": {"media_ids": ["1100000000000000001", "1100000000000000002"]},
    }
    validate_request_body("POST", "/2/tweets", json_body(tweets.calls.last.request))


async def test_upload_form_matches_the_spec(x, client: XClient, loader: MediaLoader):
    uploads = upload_route(x, "1100000000000000001")
    x.post("/2/tweets").respond(201, json=CREATED)

    await create_post(client, loader, media=[image_entry()])

    fields = form_fields(uploads.calls.last.request)
    validate_request_body("POST", "/2/media/upload", {**fields, "media": "<binary>"}, "multipart/form-data")


async def test_uploads_finish_before_the_post_is_created(x, client: XClient, loader: MediaLoader):
    upload_route(x, "1100000000000000001", "1100000000000000002")
    x.post("/2/tweets").respond(201, json=CREATED)

    await create_post(client, loader, media=[image_entry(PNG, "a.png"), image_entry(OTHER_PNG, "b.png")])

    assert [call.request.url.path for call in x.calls] == ["/2/media/upload", "/2/media/upload", "/2/tweets"]


async def test_identical_images_are_uploaded_once(x, client: XClient, loader: MediaLoader):
    uploads = upload_route(x, "1100000000000000001")
    tweets = x.post("/2/tweets").respond(201, json=CREATED)

    await create_post(client, loader, text="twice", media=[image_entry(PNG, "a.png"), image_entry(PNG, "copy.png")])

    assert uploads.call_count == 1
    assert json_body(tweets.calls.last.request)["media"] == {"media_ids": ["1100000000000000001"]}


async def test_media_only_post_has_no_text_key(x, client: XClient, loader: MediaLoader):
    upload_route(x, "1100000000000000001")
    tweets = x.post("/2/tweets").respond(201, json=CREATED)

    await create_post(client, loader, media=[image_entry()])

    assert json_body(tweets.calls.last.request) == {"media": {"media_ids": ["1100000000000000001"]}}
    validate_request_body("POST", "/2/tweets", json_body(tweets.calls.last.request))


async def test_empty_text_with_an_image_is_a_media_only_post(x, client: XClient, loader: MediaLoader):
    upload_route(x, "1100000000000000001")
    tweets = x.post("/2/tweets").respond(201, json=CREATED)

    await create_post(client, loader, text="", media=[image_entry()])

    assert "text" not in json_body(tweets.calls.last.request)


async def test_image_from_a_local_file_under_a_media_root_is_uploaded(
    x, client: XClient, loader: MediaLoader, media_root: Path
):
    (media_root / "photo.jpg").write_bytes(JPEG)
    uploads = upload_route(x, "1100000000000000001")
    x.post("/2/tweets").respond(201, json=CREATED)

    await create_post(client, loader, media=[FileEntry(url=str(media_root / "photo.jpg"))])

    assert multipart_parts(uploads.calls.last.request)["media"].content == JPEG
    assert multipart_parts(uploads.calls.last.request)["media"].content_type == "image/jpeg"


async def test_image_from_a_file_url_under_a_media_root_is_uploaded(
    x, client: XClient, loader: MediaLoader, media_root: Path
):
    (media_root / "my photo.png").write_bytes(PNG)
    uploads = upload_route(x, "1100000000000000001")
    x.post("/2/tweets").respond(201, json=CREATED)

    await create_post(client, loader, media=[FileEntry(url=(media_root / "my photo.png").as_uri())])

    assert multipart_parts(uploads.calls.last.request)["media"].content == PNG


async def test_success_rate_limit_headers_are_kept_per_endpoint(x, client: XClient, loader: MediaLoader):
    x.post("/2/tweets").respond(
        201,
        json=CREATED,
        headers={"x-rate-limit-limit": "100", "x-rate-limit-remaining": "99", "x-rate-limit-reset": "1767225600"},
    )

    await create_post(client, loader, text="hello")

    limit = client.rate_limits["POST /2/tweets"]
    assert (limit.limit, limit.remaining, limit.reset_at) == (100, 99, 1767225600.0)


async def test_delete_sends_delete_to_the_post_path(x, client: XClient):
    route = x.delete("/2/tweets/1445880548472328192").respond(200, json={"data": {"deleted": True}})

    result = await delete_post(client, "1445880548472328192")

    request = route.calls.last.request
    assert request.method == "DELETE"
    assert request.url.path == "/2/tweets/1445880548472328192"
    assert not request.url.query
    assert request.content == b""
    assert bearer(request) == f"Bearer {TOKEN}"
    assert result.data.deleted is True
