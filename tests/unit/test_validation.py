"""Invalid input is refused locally, with a message that says what to fix, and never reaches X.

The `x` fixture has no routes and asserts that every request is mocked: any request at all fails the test.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from xcourier.tools.client import XClient
from xcourier.tools.engagement import like_post, repost_post
from xcourier.tools.errors import InvalidInputError
from xcourier.tools.media import MAX_IMAGE_BYTES, MediaLoader
from xcourier.tools.messages import send_direct_message
from xcourier.tools.models import FileEntry
from xcourier.tools.posts import create_post, delete_post
from xcourier.tools.users import UserDirectory

from .captured import GIF, JPEG, OTHER_PNG, PNG, data_uri, image_entry

pytestmark = pytest.mark.anyio

BAD_IDS = [
    pytest.param("", id="empty"),
    pytest.param("abc", id="letters"),
    pytest.param("12345678901234567890", id="20-digits"),
    pytest.param(" 1", id="leading-space"),
    pytest.param("1.5", id="decimal"),
    pytest.param("-1", id="negative"),
    pytest.param("1/likes", id="path-segment"),
    pytest.param("\uff11\uff12\uff13", id="fullwidth-digits"),
]
BAD_USERNAMES = [
    pytest.param("", id="empty"),
    pytest.param("a" * 16, id="16-chars"),
    pytest.param("bad-name", id="hyphen"),
    pytest.param("@@x", id="double-at"),
    pytest.param("x y", id="space"),
    pytest.param("@", id="bare-at"),
    pytest.param("../me", id="path"),
]


@pytest.fixture
def x(x):
    assert not x.routes  # no route: any request that escapes validation fails the test
    return x


async def refused(call) -> str:
    with pytest.raises(InvalidInputError) as info:
        await call
    assert info.value.status is None  # raised locally, not by X
    return str(info.value)


def assert_nothing_sent(x) -> None:
    assert x.calls.call_count == 0


@pytest.mark.parametrize("bad_id", BAD_IDS)
async def test_delete_refuses_a_malformed_id(x, client: XClient, bad_id: str):
    message = await refused(delete_post(client, bad_id))

    assert "`id`" in message
    assert "1 to 19 digits" in message
    assert_nothing_sent(x)


@pytest.mark.parametrize("action", [like_post, repost_post], ids=["like", "repost"])
@pytest.mark.parametrize("bad_id", BAD_IDS)
async def test_like_and_repost_refuse_a_malformed_tweet_id(x, client: XClient, users: UserDirectory, action, bad_id):
    message = await refused(action(client, users, bad_id))

    assert "`tweet_id`" in message
    assert "1 to 19 digits" in message
    assert_nothing_sent(x)


@pytest.mark.parametrize("bad_name", BAD_USERNAMES)
async def test_dm_refuses_a_malformed_username(x, client: XClient, users: UserDirectory, loader, bad_name: str):
    message = await refused(send_direct_message(client, users, loader, bad_name, "hi"))

    assert "`username`" in message
    assert "1 to 15 letters, digits or underscores" in message
    assert_nothing_sent(x)


async def test_dm_refuses_empty_text(x, client: XClient, users: UserDirectory, loader):
    message = await refused(send_direct_message(client, users, loader, "Bob_99", ""))

    assert "`text`" in message
    assert_nothing_sent(x)


async def test_dm_refuses_text_over_ten_thousand_characters(x, client: XClient, users: UserDirectory, loader):
    message = await refused(send_direct_message(client, users, loader, "Bob_99", "a" * 10_001))

    assert "10000" in message
    assert_nothing_sent(x)


@pytest.mark.parametrize(
    ("text", "media"), [pytest.param(None, None, id="nothing"), pytest.param("", [], id="empty-text-and-media")]
)
async def test_create_post_refuses_a_post_with_neither_text_nor_media(x, client: XClient, loader, text, media):
    message = await refused(create_post(client, loader, text=text, media=media))

    assert "`text`" in message and "`media`" in message
    assert_nothing_sent(x)


@pytest.mark.parametrize(
    ("text", "weighted"),
    [
        pytest.param("a" * 281, 281, id="281-latin"),
        pytest.param("あ" * 141, 282, id="141-cjk"),
        pytest.param("😀" * 141, 282, id="141-emoji"),
        pytest.param("https://example.com " + "a" * 257, 281, id="url-counts-23"),
    ],
)
async def test_create_post_refuses_text_over_280_weighted_characters(x, client: XClient, loader, text, weighted):
    message = await refused(create_post(client, loader, text=text))

    assert f"is {weighted} weighted characters" in message
    assert "280" in message
    assert f"Shorten it by {weighted - 280}" in message
    assert_nothing_sent(x)


async def test_overlong_text_is_refused_before_any_image_is_uploaded(x, client: XClient, loader):
    await refused(create_post(client, loader, text="a" * 281, media=[image_entry()]))

    assert_nothing_sent(x)


async def test_create_post_refuses_five_images(x, client: XClient, loader):
    media = [image_entry(PNG, f"{i}.png") for i in range(5)]

    message = await refused(create_post(client, loader, text="five", media=media))

    assert "at most 4 images" in message
    assert "got 5" in message
    assert_nothing_sent(x)


async def test_dm_refuses_two_images(x, client: XClient, users: UserDirectory, loader):
    media = [image_entry(PNG, "a.png"), image_entry(OTHER_PNG, "b.png")]

    message = await refused(send_direct_message(client, users, loader, "Bob_99", "two", media=media))

    assert "at most 1 image" in message
    assert "got 2" in message
    assert_nothing_sent(x)


async def test_a_bad_second_image_stops_the_post_before_the_first_is_uploaded(x, client: XClient, loader):
    media = [image_entry(PNG, "good.png"), image_entry(b"%PDF-1.7", "bad.png")]

    message = await refused(create_post(client, loader, text="hi", media=media))

    assert "bad.png" in message
    assert_nothing_sent(x)


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        pytest.param(image_entry(b"%PDF-1.7 not an image", "doc.png"), "not a supported image", id="non-image-bytes"),
        pytest.param(image_entry(b"", "empty.png"), "empty", id="empty-file"),
        pytest.param(
            FileEntry(name="x.png", url="data:image/png;base64,!!!not-base64!!!"), "not valid base64", id="bad-base64"
        ),
        pytest.param(FileEntry(name="x.png", url="data:image/png;base64"), "malformed data: URI", id="no-comma"),
        pytest.param(
            FileEntry(name="big.png", url=data_uri(PNG + b"\x00" * (MAX_IMAGE_BYTES + 1 - len(PNG)))),
            "over X's 5 MB limit",
            id="just-over-5MB",
        ),
        pytest.param(
            FileEntry(name="huge.png", url="data:image/png;base64," + "A" * (8 * MAX_IMAGE_BYTES)),
            "over X's 5 MB limit",
            id="far-over-5MB",
        ),
        pytest.param(
            FileEntry(name="remote.png", url="https://10.0.0.5/cat.png"),
            "private address 10.0.0.5",
            id="https-private-address",
        ),
        pytest.param(
            FileEntry(name="remote.png", url="http://169.254.169.254/latest/meta-data"),
            "link-local address 169.254.169.254",
            id="http-metadata-address",
        ),
        pytest.param(FileEntry(name="s.png", url="ftp://example.com/cat.png"), "unsupported URL scheme", id="ftp"),
        pytest.param(
            FileEntry(name="doc.png", mimeType="application/pdf", url=data_uri(PNG, "application/pdf")),
            "only images can be attached",
            id="declared-non-image",
        ),
    ],
)
async def test_create_post_refuses_a_bad_image(x, client: XClient, loader, entry: FileEntry, expected: str):
    message = await refused(create_post(client, loader, text="hi", media=[entry]))

    assert expected in message
    assert entry.name in message  # says which attachment
    assert_nothing_sent(x)


async def test_unnamed_attachment_is_named_by_its_position(x, client: XClient, loader):
    message = await refused(
        create_post(client, loader, media=[FileEntry(url=data_uri(PNG)), FileEntry(url=data_uri(GIF))])
    )

    assert "media[1]" in message


async def test_image_of_exactly_5mb_passes_the_size_check():
    content = PNG + b"\x00" * (MAX_IMAGE_BYTES - len(PNG))

    image = await MediaLoader().load(FileEntry(url=data_uri(content)), 0)

    assert len(image.content) == MAX_IMAGE_BYTES


async def test_local_file_outside_the_media_roots_is_refused(x, client: XClient, loader, tmp_path: Path):
    outside = tmp_path / "secret.png"
    outside.write_bytes(PNG)

    message = await refused(create_post(client, loader, media=[FileEntry(name="secret.png", url=str(outside))]))

    assert "outside the allowed media directories" in message
    assert "--media-root" in message
    assert_nothing_sent(x)


async def test_dot_dot_path_escaping_a_media_root_is_refused(x, client: XClient, loader, media_root: Path):
    (media_root.parent / "secret.png").write_bytes(PNG)

    message = await refused(create_post(client, loader, media=[FileEntry(url=str(media_root / ".." / "secret.png"))]))

    assert "outside the allowed media directories" in message
    assert_nothing_sent(x)


async def test_symlink_inside_a_media_root_pointing_outside_is_refused(
    x, client: XClient, loader, media_root, tmp_path
):
    target = tmp_path / "outside.png"
    target.write_bytes(PNG)
    link = media_root / "innocent.png"
    os.symlink(target, link)

    message = await refused(create_post(client, loader, media=[FileEntry(name="innocent.png", url=str(link))]))

    assert "outside the allowed media directories" in message
    assert_nothing_sent(x)


async def test_local_files_are_refused_when_no_media_root_is_configured(x, client: XClient, tmp_path: Path):
    path = tmp_path / "photo.png"
    path.write_bytes(PNG)

    message = await refused(create_post(client, MediaLoader(), media=[FileEntry(url=str(path))]))

    assert "reading local files is switched off" in message
    assert "--media-root" in message
    assert_nothing_sent(x)


async def test_file_url_is_refused_when_no_media_root_is_configured(x, client: XClient, tmp_path: Path):
    path = tmp_path / "photo.png"
    path.write_bytes(PNG)

    message = await refused(create_post(client, MediaLoader(), media=[FileEntry(url=path.as_uri())]))

    assert "--media-root" in message


async def test_missing_local_file_is_refused(x, client: XClient, loader, media_root: Path):
    message = await refused(create_post(client, loader, media=[FileEntry(url=str(media_root / "nope.png"))]))

    assert "no such file" in message


async def test_directory_under_a_media_root_is_refused(x, client: XClient, loader, media_root: Path):
    (media_root / "folder").mkdir()

    message = await refused(create_post(client, loader, media=[FileEntry(url=str(media_root / "folder"))]))

    assert "not a regular file" in message


async def test_oversized_local_file_is_refused(x, client: XClient, loader, media_root: Path):
    big = media_root / "big.jpg"
    big.write_bytes(JPEG + b"\x00" * MAX_IMAGE_BYTES)

    message = await refused(create_post(client, loader, media=[FileEntry(name="big.jpg", url=str(big))]))

    assert "5 MB" in message
    assert_nothing_sent(x)
