"""The type comes from the bytes; hints are reconciled or refused; X's size and count limits hold.

Nothing here reaches X: the `x` fixture has no routes, so any request fails the test.
"""

from __future__ import annotations

import pytest

from xcourier.tools.client import XClient
from xcourier.tools.errors import InvalidInputError
from xcourier.tools.media import MAX_GIF_BYTES, MAX_IMAGE_BYTES, MediaLoader, gif_frame_count, sniff_mime_type
from xcourier.tools.messages import send_direct_message
from xcourier.tools.models import FileEntry
from xcourier.tools.posts import create_post
from xcourier.tools.users import UserDirectory

from .captured import JPEG, PNG, data_uri, image_entry

pytestmark = pytest.mark.anyio

WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 webp-body"


def gif(frames: int, comment: bytes = b"") -> bytes:
    """A well-formed GIF89a with `frames` 1x1 images and an optional comment extension."""
    out = b"GIF89a" + b"\x01\x00\x01\x00" + bytes([0x80, 0, 0]) + b"\x00\x00\x00\xff\xff\xff"
    if comment:
        out += b"\x21\xfe"
        for start in range(0, len(comment), 255):
            block = comment[start : start + 255]
            out += bytes([len(block)]) + block
        out += b"\x00"
    for _ in range(frames):
        out += b"\x21\xf9\x04\x00\x0a\x00\x00\x00"  # graphic control extension: 0.1 s delay
        out += b"\x2c\x00\x00\x00\x00\x01\x00\x01\x00\x00" + b"\x02\x02\x44\x01\x00"  # descriptor + LZW data
    return out + b"\x3b"


ANIMATED = gif(3)
STILL_GIF = gif(1)


@pytest.fixture
def x(x):
    assert not x.routes
    return x


async def load(entry: FileEntry) -> object:
    return await MediaLoader().load(entry, 0)


async def refused(entry: FileEntry) -> str:
    with pytest.raises(InvalidInputError) as info:
        await MediaLoader().load(entry, 0)
    return str(info.value)


@pytest.mark.parametrize(
    ("content", "mime_type"),
    [
        (JPEG, "image/jpeg"),
        (PNG, "image/png"),
        (WEBP, "image/webp"),
        (ANIMATED, "image/gif"),
        (b"GIF87a..", "image/gif"),
    ],
)
def test_each_supported_type_is_recognised_by_its_magic_number(content: bytes, mime_type: str):
    assert sniff_mime_type(content) == mime_type


def test_gif_frames_are_counted_by_walking_the_blocks():
    assert gif_frame_count(ANIMATED) == 3
    assert gif_frame_count(STILL_GIF) == 1
    # 0x2C bytes inside a comment are data, not image descriptors.
    assert gif_frame_count(gif(1, comment=b"\x2c" * 600)) == 1
    # A truncated GIF counts what it has and does not crash.
    assert gif_frame_count(ANIMATED[:40]) == 1
    assert gif_frame_count(b"GIF89a") == 0


async def test_an_animated_gif_loads_as_animated():
    attachment = await MediaLoader().load(image_entry(ANIMATED, "dance.gif", "image/gif"), 0)

    assert attachment.mime_type == "image/gif"
    assert attachment.animated is True
    assert attachment.category("tweet") == "tweet_gif"
    assert attachment.category("dm") == "dm_gif"


async def test_a_single_frame_gif_still_uses_the_gif_category():
    attachment = await MediaLoader().load(image_entry(STILL_GIF, "still.gif", "image/gif"), 0)

    assert attachment.animated is False
    assert attachment.category("tweet") == "tweet_gif"


@pytest.mark.parametrize(
    ("entry", "real"),
    [
        pytest.param(FileEntry(url=data_uri(PNG, "image/jpeg"), mimeType="image/jpeg"), "image/png", id="png-as-jpeg"),
        pytest.param(FileEntry(url=data_uri(JPEG), mimeType="image/jpg", extension="jpg"), "image/jpeg", id="jpg"),
        pytest.param(FileEntry(url=data_uri(ANIMATED), mimeType="image/png", extension="png"), "image/gif", id="gif"),
        pytest.param(FileEntry(url=data_uri(WEBP), extension="jpeg"), "image/webp", id="webp-as-jpeg-ext"),
    ],
)
async def test_an_image_hint_naming_another_image_type_is_reconciled_by_the_bytes(entry: FileEntry, real: str):
    attachment = await MediaLoader().load(entry, 0)

    assert attachment.mime_type == real


@pytest.mark.parametrize(
    ("entry", "names"),
    [
        pytest.param(FileEntry(name="a.mp4", url=data_uri(PNG), mimeType="video/mp4"), ("'video/mp4'", "image/png")),
        pytest.param(
            FileEntry(name="a.txt", url=data_uri(JPEG), mimeType="text/plain"), ("'text/plain'", "image/jpeg")
        ),
        pytest.param(FileEntry(name="clip", url=data_uri(PNG), extension="mp4"), ("video/mp4", "'mp4'", "image/png")),
    ],
)
async def test_a_non_image_hint_is_an_error_naming_both_types(entry: FileEntry, names: tuple[str, ...]):
    message = await refused(entry)

    assert "only images can be attached" in message
    assert all(name in message for name in names)


async def test_bytes_that_are_no_supported_image_are_refused_with_the_declared_type():
    message = await refused(FileEntry(name="notes", url="data:text/plain;base64,aGVsbG8=", mimeType="text/plain"))

    assert "not a supported image" in message
    assert "'text/plain'" in message
    assert "JPEG, PNG, WEBP, GIF, MP4 or MOV" in message


async def test_a_gif_of_exactly_15mb_passes_and_one_byte_more_is_refused():
    exact = ANIMATED + b"\x00" * (MAX_GIF_BYTES - len(ANIMATED))
    assert len((await MediaLoader().load(FileEntry(url=data_uri(exact, "image/gif")), 0)).content) == MAX_GIF_BYTES

    message = await refused(FileEntry(name="big.gif", url=data_uri(exact + b"\x00", "image/gif")))

    assert "over X's 15 MB limit for GIFs" in message


async def test_a_6mb_png_is_over_the_image_limit_though_under_the_gif_limit():
    message = await refused(FileEntry(name="big.png", url=data_uri(PNG + b"\x00" * (6 * 1024 * 1024))))

    assert "over X's 5 MB limit for images" in message


async def test_a_6mb_local_gif_is_accepted(media_root):
    path = media_root / "big.gif"
    path.write_bytes(ANIMATED + b"\x00" * (6 * 1024 * 1024))

    attachment = await MediaLoader(roots=[media_root]).load(FileEntry(url=str(path)), 0)

    assert attachment.mime_type == "image/gif"
    assert MAX_IMAGE_BYTES < len(attachment.content) < MAX_GIF_BYTES


# ---- count limits, before anything reaches X ----------------------------------------------------


async def expect_refused(call) -> str:
    with pytest.raises(InvalidInputError) as info:
        await call
    assert info.value.status is None
    return str(info.value)


async def test_a_post_refuses_five_images(x, client: XClient, loader: MediaLoader):
    message = await expect_refused(
        create_post(client, loader, media=[image_entry(PNG + bytes([i]), f"{i}.png") for i in range(5)])
    )

    assert "at most 4 images" in message and "got 5" in message
    assert not x.calls


async def test_a_post_refuses_a_gif_with_an_image(x, client: XClient, loader: MediaLoader):
    media = [image_entry(PNG, "a.png"), image_entry(ANIMATED, "dance.gif", "image/gif")]

    message = await expect_refused(create_post(client, loader, text="mix", media=media))

    assert "exactly one GIF" in message
    assert "dance.gif" in message
    assert not x.calls


async def test_a_post_refuses_two_gifs(x, client: XClient, loader: MediaLoader):
    media = [image_entry(ANIMATED, "a.gif", "image/gif"), image_entry(STILL_GIF, "b.gif", "image/gif")]

    message = await expect_refused(create_post(client, loader, text="two", media=media))

    assert "exactly one GIF" in message
    assert not x.calls


async def test_a_dm_refuses_two_items(x, client: XClient, users: UserDirectory, loader: MediaLoader):
    media = [image_entry(ANIMATED, "a.gif", "image/gif"), image_entry(PNG, "b.png")]

    message = await expect_refused(send_direct_message(client, users, loader, "Bob_99", "two", media=media))

    assert "at most 1 image" in message and "got 2" in message
    assert not x.calls
