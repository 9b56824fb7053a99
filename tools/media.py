"""Images for posts and DMs: load a FILE_ENTRY (data: URI or an allowed local file), check it, upload it.

Everything is loaded and checked before the first upload, and every upload finishes
before the post is created, so a bad attachment never leaves a half-made post behind.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, unquote_to_bytes, urlsplit

from .client import XClient
from .errors import InvalidInputError, XError
from .models import FileEntry

MAX_IMAGE_BYTES = 5 * 1024 * 1024
MAX_POST_IMAGES = 4
MAX_DM_ATTACHMENTS = 1

MediaCategory = Literal["tweet_image", "dm_image"]


@dataclass(frozen=True)
class Image:
    label: str
    content: bytes
    mime_type: str

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


def sniff_mime_type(content: bytes) -> str | None:
    """The real type from the first bytes; extensions and declared types can lie."""
    if content.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if content.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if content[:4] == b"RIFF" and content[8:12] == b"WEBP":
        return "image/webp"
    if content[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    return None


class MediaLoader:
    """Reads FILE_ENTRY urls. Local files are read only below the allowed roots."""

    def __init__(self, roots: Sequence[Path] = ()) -> None:
        self.roots = tuple(Path(root).resolve() for root in roots)

    def load(self, entry: FileEntry, position: int) -> Image:
        label = entry.name or f"media[{position}]"
        url = entry.url.strip()
        scheme = urlsplit(url).scheme.lower() if ":" in url[:12] else ""
        if scheme == "data":
            content = self._from_data_uri(url, label)
        elif scheme in ("http", "https"):
            raise InvalidInputError(
                f"{label}: remote URLs are not supported yet. Pass the image as a data: URI "
                "(data:image/png;base64,...) or as a file under a --media-root directory."
            )
        elif scheme == "file" or scheme == "" or len(scheme) == 1:  # len 1: a Windows drive letter
            content = self._from_local_file(url, label)
        else:
            raise InvalidInputError(
                f"{label}: unsupported URL scheme {scheme!r}; use a data: URI or a local file path."
            )
        return self._checked(content, entry, label)

    def _from_data_uri(self, url: str, label: str) -> bytes:
        header, sep, payload = url[5:].partition(",")
        if not sep:
            raise InvalidInputError(f"{label}: malformed data: URI (no comma). Expected data:image/png;base64,...")
        if header.lower().endswith(";base64"):
            # 4 base64 characters carry 3 bytes: refuse oversized input before decoding it.
            if len(payload) * 3 // 4 > MAX_IMAGE_BYTES + 3:
                raise self._too_large(label, len(payload) * 3 // 4)
            try:
                return base64.b64decode(payload, validate=True)
            except (binascii.Error, ValueError):
                raise InvalidInputError(f"{label}: the data: URI is not valid base64.") from None
        return unquote_to_bytes(payload)

    def _from_local_file(self, url: str, label: str) -> bytes:
        if not self.roots:
            raise InvalidInputError(
                f"{label}: reading local files is switched off. Start the server with "
                "--media-root DIR (or XCOURIER_MEDIA_ROOTS) to allow images from DIR, or pass a data: URI."
            )
        raw = unquote(urlsplit(url).path) if url.lower().startswith("file:") else url
        try:
            # resolve() follows symlinks, so a link inside a root pointing outside it is caught below.
            path = Path(raw).expanduser().resolve(strict=True)
        except (OSError, RuntimeError):
            raise InvalidInputError(f"{label}: no such file: {raw}") from None
        if not any(path.is_relative_to(root) for root in self.roots):
            raise InvalidInputError(
                f"{label}: {raw} is outside the allowed media directories "
                f"({', '.join(str(r) for r in self.roots)}). "
                "Move it there or allow its folder with --media-root."
            )
        if not path.is_file():
            raise InvalidInputError(f"{label}: {raw} is not a regular file.")
        size = path.stat().st_size
        if size > MAX_IMAGE_BYTES:
            raise self._too_large(label, size)
        with path.open("rb") as handle:
            return handle.read(MAX_IMAGE_BYTES + 1)

    def _checked(self, content: bytes, entry: FileEntry, label: str) -> Image:
        if not content:
            raise InvalidInputError(f"{label}: the file is empty.")
        if len(content) > MAX_IMAGE_BYTES:
            raise self._too_large(label, len(content))
        mime_type = sniff_mime_type(content)
        if mime_type is None:
            raise InvalidInputError(
                f"{label}: not a supported image (the bytes are not JPEG, PNG or WEBP, whatever the "
                "name or mimeType says)."
            )
        if mime_type == "image/gif":
            raise InvalidInputError(f"{label}: GIFs are not supported yet; attach a JPEG, PNG or WEBP image instead.")
        declared = (entry.mimeType or "").lower()
        if declared and not declared.startswith("image/"):
            raise InvalidInputError(
                f"{label}: declared as {entry.mimeType!r} but the bytes are {mime_type}; only images can be attached."
            )
        return Image(label=label, content=content, mime_type=mime_type)

    @staticmethod
    def _too_large(label: str, size: int) -> InvalidInputError:
        return InvalidInputError(
            f"{label}: {size / 1_048_576:.1f} MB is over X's {MAX_IMAGE_BYTES // 1_048_576} MB limit "
            "for images; resize or recompress it."
        )


def load_all(loader: MediaLoader, entries: Sequence[FileEntry], limit: int, what: str) -> list[Image]:
    if len(entries) > limit:
        raise InvalidInputError(
            f"{what} takes at most {limit} image{'s' if limit > 1 else ''}; got {len(entries)}. "
            + ("Send the others in separate messages." if limit == 1 else "Split them across posts.")
        )
    return [loader.load(entry, i) for i, entry in enumerate(entries)]


async def upload_images(client: XClient, images: Sequence[Image], category: MediaCategory) -> list[str]:
    """Upload with X's v2 simple upload; identical bytes in one call are uploaded once."""
    by_digest: dict[str, str] = {}
    media_ids: list[str] = []
    for image in images:
        media_id = by_digest.get(image.digest)
        if media_id is None:
            body = await client.request(
                "POST",
                "/2/media/upload",
                files={"media": (image.label, image.content, image.mime_type)},
                data={"media_category": category, "media_type": image.mime_type},
            )
            media_id = _media_id(body)
            by_digest[image.digest] = media_id
        media_ids.append(media_id)
    return media_ids


def _media_id(body: dict[str, object]) -> str:
    data = body.get("data")
    media_id = data.get("id") if isinstance(data, dict) else None
    if not isinstance(media_id, str) or not media_id:
        raise XError("X accepted the upload but returned no media id", endpoint="POST /2/media/upload")
    return media_id
