"""Images and GIFs for posts and DMs: load a FILE_ENTRY, check it, upload it to X.

A FILE_ENTRY url may be an http(s) URL (fetched under the SSRF rules in fetch.py), a data: URI,
or a local path / file:// URL below a directory the operator allowed. The type comes from the
bytes; mimeType and extension are only hints.

Everything is loaded and checked before the first upload, and every upload finishes before the
post is created, so a bad attachment never leaves a half-made post behind.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import mimetypes
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, unquote_to_bytes, urlsplit

import anyio
import httpx

from .client import XClient
from .errors import InvalidInputError, ServerError, XError
from .fetch import DEFAULT_FETCH_TIMEOUT, SNIFF_BYTES, RemoteFetcher, Resolver, system_resolve
from .models import FileEntry

MB = 1024 * 1024
MAX_IMAGE_BYTES = 5 * MB  # X: still images (JPEG, PNG, WEBP)
MAX_GIF_BYTES = 15 * MB  # X: GIFs
MAX_POST_IMAGES = 4
MAX_DM_ATTACHMENTS = 1

# Still images up to this size go in one multipart request; GIFs and anything larger are sent in
# chunks, so a large file is not one long request that fails as a whole and progress can be shown.
# X's CLI xurl sends every file through the chunked flow, which X calls recommended; the one-shot
# upload stays documented for images, and for a small image it is one request instead of three
# (initialize, append, finalize), each counted against X's per-15-minute limits.
SIMPLE_UPLOAD_MAX_BYTES = 1 * MB
SEGMENT_BYTES = 1 * MB  # X takes segment_index 0..999, so 1 MB segments cover the 15 MB GIF limit
MAX_STATUS_CHECKS = 60
MAX_CHECK_AFTER_SECS = 30.0  # never wait longer than this between two STATUS checks
DEFAULT_CHECK_AFTER_SECS = 1.0

Target = Literal["tweet", "dm"]
MediaCategory = Literal["tweet_image", "tweet_gif", "dm_image", "dm_gif"]

# (done, total, message): called as bytes are sent and while X processes. The MCP layer turns it
# into progress notifications; done only ever increases.
ProgressCallback = Callable[[float, float, str], Awaitable[None]]
Sleep = Callable[[float], Awaitable[None]]

SUPPORTED = "JPEG, PNG, WEBP or GIF"


@dataclass(frozen=True)
class Attachment:
    """One checked file, ready to upload."""

    label: str
    content: bytes
    mime_type: str  # from the bytes
    frames: int = 1  # image frames; a GIF with more than one is animated

    @property
    def is_gif(self) -> bool:
        return self.mime_type == "image/gif"

    @property
    def animated(self) -> bool:
        return self.is_gif and self.frames > 1

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.content).hexdigest()

    def category(self, target: Target) -> MediaCategory:
        # Every GIF, animated or not, goes as tweet_gif / dm_gif (through the chunked upload): the
        # *_gif categories are the ones whose limit is X's 15 MB GIF limit. A single-frame GIF simply
        # shows as a still GIF.
        if self.is_gif:
            return "tweet_gif" if target == "tweet" else "dm_gif"
        return "tweet_image" if target == "tweet" else "dm_image"


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


def limit_for(head: bytes) -> int:
    """X's size limit for a file starting with `head`: GIFs 15 MB, everything else 5 MB."""
    return MAX_GIF_BYTES if sniff_mime_type(head) == "image/gif" else MAX_IMAGE_BYTES


def gif_frame_count(content: bytes) -> int:
    """How many images a GIF holds, by walking its block structure (GIF89a spec).

    Counting 0x2C bytes would also count ones inside pixel data; walking the blocks only counts
    real Image Descriptors. A truncated or malformed GIF counts the frames seen before the break
    (X itself rejects a broken GIF when it processes it).
    """
    if len(content) < 13:
        return 0
    pos = 13  # 6-byte signature + 7-byte logical screen descriptor
    packed = content[10]
    if packed & 0x80:
        pos += 3 * (2 ** ((packed & 0x07) + 1))  # global color table
    frames = 0
    while pos < len(content):
        introducer = content[pos]
        if introducer == 0x3B:  # trailer
            break
        if introducer == 0x21:  # extension: label byte, then data sub-blocks
            pos = _skip_sub_blocks(content, pos + 2)
        elif introducer == 0x2C:  # image descriptor: 9 bytes, optional local table, LZW size, sub-blocks
            if pos + 10 > len(content):
                break
            frames += 1
            local = content[pos + 9]
            pos += 10
            if local & 0x80:
                pos += 3 * (2 ** ((local & 0x07) + 1))
            pos = _skip_sub_blocks(content, pos + 1)
        else:
            break
        if pos < 0:
            break
    return frames


def _skip_sub_blocks(content: bytes, pos: int) -> int:
    """The position after a chain of sub-blocks ending in a 0 size byte; -1 if truncated."""
    while pos < len(content):
        size = content[pos]
        pos += 1
        if size == 0:
            return pos
        pos += size
    return -1


class MediaLoader:
    """Reads FILE_ENTRY urls: remote under the SSRF rules, local files only below the allowed roots.

    `allowed_hosts` are host names (exact, case-insensitive) the operator trusts: they skip the
    private-address check. `http` is the client used for fetching (a short-lived one per fetch
    when None); `resolve` replaces DNS resolution (tests).
    """

    def __init__(
        self,
        roots: Sequence[Path] = (),
        *,
        allowed_hosts: Collection[str] = (),
        http: httpx.AsyncClient | None = None,
        resolve: Resolver = system_resolve,
        fetch_timeout: float = DEFAULT_FETCH_TIMEOUT,
    ) -> None:
        self.roots = tuple(Path(root).resolve() for root in roots)
        self.fetcher = RemoteFetcher(allowed_hosts=allowed_hosts, http=http, resolve=resolve, timeout=fetch_timeout)

    @property
    def allowed_hosts(self) -> frozenset[str]:
        return self.fetcher.allowed_hosts

    async def load(self, entry: FileEntry, position: int) -> Attachment:
        label = entry.name or f"media[{position}]"
        url = entry.url.strip()
        scheme = urlsplit(url).scheme.lower() if ":" in url[:12] else ""
        if scheme == "data":
            content = self._from_data_uri(url, label)
        elif scheme in ("http", "https"):
            content = await self.fetcher.fetch(url, label, limit_for)
        elif scheme == "file" or scheme == "" or len(scheme) == 1:  # len 1: a Windows drive letter
            # Path resolution and reading are blocking file-system calls: keep them off the event loop.
            content = await anyio.to_thread.run_sync(self._from_local_file, url, label)
        else:
            raise InvalidInputError(
                f"{label}: unsupported URL scheme {scheme!r}; use an https URL, a data: URI or a local file path."
            )
        return checked(content, entry, label)

    def _from_data_uri(self, url: str, label: str) -> bytes:
        header, sep, payload = url[5:].partition(",")
        if not sep:
            raise InvalidInputError(f"{label}: malformed data: URI (no comma). Expected data:image/png;base64,...")
        if header.lower().endswith(";base64"):
            # 4 base64 characters carry 3 bytes: refuse oversized input before decoding all of it,
            # with the limit the first bytes imply (a GIF may be larger than a still image).
            try:
                head = base64.b64decode(payload[:24], validate=True)
            except (binascii.Error, ValueError):
                head = b""
            limit = limit_for(head[:SNIFF_BYTES])
            if len(payload) * 3 // 4 > limit + 3:
                raise _too_large(label, len(payload) * 3 // 4, limit)
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
        if "\x00" in raw:
            # The OS can't take such a path (Python raises ValueError deep in resolve()): say so plainly.
            raise InvalidInputError(f"{label}: the file path contains a NUL byte; give the path of an image file.")
        path = self._inside_a_root(raw, label)
        if not path.exists():
            raise InvalidInputError(f"{label}: no such file: {raw}")
        if not path.is_file():
            raise InvalidInputError(f"{label}: {raw} is not a regular file.")
        try:
            with path.open("rb") as handle:
                head = handle.read(SNIFF_BYTES)
                limit = limit_for(head)
                size = path.stat().st_size
                if size > limit:
                    raise _too_large(label, size, limit)
                return head + handle.read(limit + 1 - len(head))
        except OSError as exc:
            raise InvalidInputError(f"{label}: {raw} can't be read ({exc.strerror or 'error'}).") from None

    def _inside_a_root(self, raw: str, label: str) -> Path:
        """The resolved path if it is below an allowed root; else one message, whatever lies there.

        Checked before anything about the file itself: an answer that differed for a missing file and an
        existing one outside the roots ("no such file" for /root/.ssh/id_rsa, "outside" for /etc/passwd)
        would let anyone with the tools probe the file system. The roots are not named: they are the
        operator's layout, not the agent's business. Non-strict resolve() follows the symlinks that exist
        (so a link inside a root pointing outside it is caught) and never fails on a missing file.
        """
        try:
            path = Path(raw).expanduser().resolve(strict=False)
        except (OSError, RuntimeError, ValueError):
            path = None
        if path is None or not any(path.is_relative_to(root) for root in self.roots):
            raise InvalidInputError(
                f"{label}: that path is outside the allowed media directories. Use a file in one of the "
                "folders the server was started with (--media-root), an https URL or a data: URI."
            )
        return path


def checked(content: bytes, entry: FileEntry, label: str) -> Attachment:
    """The bytes decide the type; hints that contradict them with a non-image type are errors."""
    if not content:
        raise InvalidInputError(f"{label}: the file is empty.")
    mime_type = sniff_mime_type(content)
    hint = _non_image_hint(entry)
    if mime_type is None:
        said = f" (declared as {hint})" if hint else ""
        raise InvalidInputError(
            f"{label}: not a supported image{said}: the bytes are not {SUPPORTED}, whatever the name or mimeType says."
        )
    if hint:
        raise InvalidInputError(
            f"{label}: declared as {hint} but the bytes are {mime_type}; only images can be attached. "
            "Fix the mimeType/extension or attach a different file."
        )
    # An image/* hint naming another image type (image/jpg for a PNG, say) is reconciled: the bytes win.
    limit = MAX_GIF_BYTES if mime_type == "image/gif" else MAX_IMAGE_BYTES
    if len(content) > limit:
        raise _too_large(label, len(content), limit)
    frames = gif_frame_count(content) if mime_type == "image/gif" else 1
    return Attachment(label=label, content=content, mime_type=mime_type, frames=frames)


def _non_image_hint(entry: FileEntry) -> str | None:
    """A mimeType or extension hint that names something other than an image, quoted for messages."""
    declared = (entry.mimeType or "").strip().lower()
    if declared and not declared.startswith("image/"):
        return repr(entry.mimeType)
    extension = (entry.extension or "").strip().lstrip(".").lower()
    if extension:
        guessed, _ = mimetypes.guess_type(f"file.{extension}", strict=False)
        if guessed and not guessed.startswith("image/"):
            return f"{guessed} (extension {extension!r})"
    return None


def _too_large(label: str, size: int, limit: int) -> InvalidInputError:
    what = "GIFs" if limit == MAX_GIF_BYTES else "images"
    return InvalidInputError(
        f"{label}: {size / MB:.1f} MB is over X's {limit // MB} MB limit for {what}; resize or recompress it."
    )


async def load_all(loader: MediaLoader, entries: Sequence[FileEntry], limit: int, what: str) -> list[Attachment]:
    """Load and check every entry, then X's combination rules: up to `limit` images, or one GIF alone."""
    if len(entries) > limit:
        raise InvalidInputError(
            f"{what} takes at most {limit} image{'s' if limit > 1 else ''}; got {len(entries)}. "
            + ("Send the others in separate messages." if limit == 1 else "Split them across posts.")
        )
    # One at a time: the count is small, and the first bad entry stops the rest being fetched.
    attachments = [await loader.load(entry, i) for i, entry in enumerate(entries)]
    gifs = [a for a in attachments if a.is_gif]
    if gifs and len(attachments) > 1:
        raise InvalidInputError(
            f"{what} takes either up to {limit} images or exactly one GIF; "
            f"{gifs[0].label} is a GIF and cannot share it with {len(attachments) - 1} other "
            f"attachment{'s' if len(attachments) > 2 else ''}. Post the GIF on its own."
        )
    return attachments


class _Progress:
    """Forwards progress, dropping repeats: MCP wants each notification's progress to increase."""

    def __init__(self, callback: ProgressCallback | None, total: float) -> None:
        self._callback = callback
        self.total = total
        self.done = 0.0
        self._reported = -1.0

    async def advance(self, amount: float, message: str) -> None:
        self.done = min(self.total, self.done + amount)
        if self._callback is not None and self.done > self._reported:
            self._reported = self.done
            await self._callback(self.done, self.total, message)


async def upload_all(
    client: XClient,
    attachments: Sequence[Attachment],
    target: Target,
    *,
    progress: ProgressCallback | None = None,
    sleep: Sleep = anyio.sleep,
) -> list[str]:
    """Upload every attachment; one media id per attachment, identical bytes uploaded once.

    Progress counts bytes: each unique file's size, plus the same again for files sent in chunks,
    which X may have to process (that share follows X's progress_percent, or completes at once
    when X needs no processing).
    """
    unique = list({a.digest: a for a in attachments}.values())
    total = sum(len(a.content) * (2 if _is_chunked(a) else 1) for a in unique)
    tracker = _Progress(progress, float(total))
    by_digest: dict[str, str] = {}
    for attachment in unique:
        if _is_chunked(attachment):
            by_digest[attachment.digest] = await _upload_chunked(client, attachment, target, tracker, sleep)
        else:
            by_digest[attachment.digest] = await _upload_simple(client, attachment, target, tracker)
    return [by_digest[a.digest] for a in attachments]


def _is_chunked(attachment: Attachment) -> bool:
    return attachment.is_gif or len(attachment.content) > SIMPLE_UPLOAD_MAX_BYTES


async def _upload_simple(client: XClient, attachment: Attachment, target: Target, tracker: _Progress) -> str:
    body = await client.request(
        "POST",
        "/2/media/upload",
        files={"media": (attachment.label, attachment.content, attachment.mime_type)},
        # Spec 2.167's MediaUploadRequest takes `media` and `media_category` (and additional_owners)
        # with additionalProperties false: no `media_type`. X reads the type from the bytes; the
        # one-shot ("simple") upload is documented for images only (docs.x.com, x-api/media/introduction).
        data={"media_category": attachment.category(target)},
    )
    media_id = _media_id(body, "POST /2/media/upload")
    await tracker.advance(len(attachment.content), f"Uploaded {attachment.label}")
    return media_id


async def _upload_chunked(
    client: XClient, attachment: Attachment, target: Target, tracker: _Progress, sleep: Sleep
) -> str:
    size = len(attachment.content)
    init = await client.request(
        "POST",
        "/2/media/upload/initialize",
        json={"media_type": attachment.mime_type, "total_bytes": size, "media_category": attachment.category(target)},
    )
    media_id = _media_id(init, "POST /2/media/upload/initialize")
    for index, start in enumerate(range(0, size, SEGMENT_BYTES)):
        segment = attachment.content[start : start + SEGMENT_BYTES]
        await client.request(
            "POST",
            "/2/media/upload/{id}/append",
            path_params={"id": media_id},
            files={"media": ("blob", segment, "application/octet-stream")},
            data={"segment_index": str(index)},
        )
        sent = min(size, start + len(segment))
        await tracker.advance(len(segment), f"Uploading {attachment.label}: {sent} of {size} bytes")
    final = await client.request("POST", "/2/media/upload/{id}/finalize", path_params={"id": media_id})
    _media_id(final, "POST /2/media/upload/{id}/finalize")
    await _wait_for_processing(client, attachment, media_id, final, tracker, sleep)
    return media_id


async def _wait_for_processing(
    client: XClient,
    attachment: Attachment,
    media_id: str,
    response: dict[str, Any],
    tracker: _Progress,
    sleep: Sleep,
) -> None:
    """Poll STATUS until X says succeeded; the processing share of progress follows progress_percent."""
    size = len(attachment.content)
    credited = 0.0
    info = _processing_info(response)
    checks = 0
    while info is not None and info.get("state") != "succeeded":
        state = info.get("state")
        if state == "failed":
            error = info.get("error") if isinstance(info.get("error"), dict) else {}
            reason = error.get("message") or error.get("name") or "no reason given"
            raise InvalidInputError(
                f"{attachment.label}: X could not process the upload ({reason}); nothing was posted. Try another file.",
                endpoint="GET /2/media/upload",
            )
        percent = info.get("progress_percent")
        if isinstance(percent, int | float) and not isinstance(percent, bool):
            share = size * max(0.0, min(100.0, float(percent))) / 100
            if share > credited:
                await tracker.advance(share - credited, f"X is processing {attachment.label} ({percent:g}%)")
                credited = share
        if checks >= MAX_STATUS_CHECKS:
            raise ServerError(
                f"{attachment.label}: X was still processing the upload after {checks} status checks; "
                "nothing was posted. Try again later.",
                endpoint="GET /2/media/upload",
            )
        wait = info.get("check_after_secs")
        if not isinstance(wait, int | float) or isinstance(wait, bool) or wait < 0:
            wait = DEFAULT_CHECK_AFTER_SECS
        await sleep(min(float(wait), MAX_CHECK_AFTER_SECS))
        checks += 1
        status = await client.request("GET", "/2/media/upload", params={"command": "STATUS", "media_id": media_id})
        info = _processing_info(status)
    await tracker.advance(size - credited, f"Uploaded {attachment.label}")


def _processing_info(body: dict[str, Any]) -> dict[str, Any] | None:
    data = body.get("data")
    info = data.get("processing_info") if isinstance(data, dict) else None
    return info if isinstance(info, dict) else None


def _media_id(body: dict[str, Any], endpoint: str) -> str:
    data = body.get("data")
    media_id = data.get("id") if isinstance(data, dict) else None
    if not isinstance(media_id, str) or not media_id:
        raise XError("X accepted the upload but returned no media id", endpoint=endpoint)
    return media_id
