"""Images, GIFs and videos for posts and DMs: load a FILE_ENTRY, check it, upload it to X.

A FILE_ENTRY url may be an http(s) URL (fetched under the SSRF rules in fetch.py), a data: URI,
or a local path / file:// URL below a directory the operator allowed. The type comes from the
bytes; mimeType and extension are only hints.

Everything is loaded and checked before the first upload, and every upload finishes (a video's
processing included) before the post is created, so a bad attachment never leaves a half-made
post behind.

Images and GIFs are held in memory (15 MB at most). A video (up to 512 MB) never is: a local file
is read segment by segment from the descriptor that was checked, a fetched one is streamed into
an anonymous temporary file first (so its size and type are known before X is asked), and a
data: URI is decoded one segment at a time from the argument that carries it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import mimetypes
import os
import re
import tempfile
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal
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
# X: "Video: 512 MB" (xdevplatform/docs x-api/media/introduction.mdx), and 512 MB for dm_video by default
# (x-api/media/quickstart/best-practices.mdx, which now allows post videos larger for some accounts:
# xcourier keeps to the 512 MB every account gets for both).
MAX_VIDEO_BYTES = 512 * MB

# Still images up to this size go in one multipart request; GIFs and anything larger are sent in
# chunks, so a large file is not one long request that fails as a whole and progress can be shown.
# X's CLI xurl sends every file through the chunked flow, which X calls recommended; the one-shot
# upload stays documented for images, and for a small image it is one request instead of three
# (initialize, append, finalize), each counted against X's per-15-minute limits.
SIMPLE_UPLOAD_MAX_BYTES = 1 * MB
SEGMENT_BYTES = 1 * MB  # X takes segment_index 0..999, so 1 MB segments cover the 15 MB GIF limit
# X: "Keep each segment at or below 5 MB (server maximum is 8 MB)" (xdevplatform/docs
# x-api/media/append-media-upload.mdx). 4 MB keeps under that with room, holds one segment in memory at a
# time, and puts a 512 MB video in 128 appends (of X's 1,000 segment indexes and 1,875 calls per 15 min).
VIDEO_SEGMENT_BYTES = 4 * MB
MAX_STATUS_CHECKS = 60
MAX_CHECK_AFTER_SECS = 30.0  # never wait longer than this between two STATUS checks
DEFAULT_CHECK_AFTER_SECS = 1.0
# All the waiting between STATUS checks of one upload, summed from X's check_after_secs (not read from a
# clock, so a test's injected sleep drives it): a video X is still processing after this is given up on.
MAX_PROCESSING_WAIT_SECS = 600.0

Target = Literal["tweet", "dm"]
MediaCategory = Literal["tweet_image", "tweet_gif", "tweet_video", "dm_image", "dm_gif", "dm_video"]

# (done, total, message): called as bytes are sent and while X processes. The MCP layer turns it
# into progress notifications; done only ever increases.
ProgressCallback = Callable[[float, float, str], Awaitable[None]]
Sleep = Callable[[float], Awaitable[None]]

SUPPORTED = "JPEG, PNG, WEBP, GIF, MP4 or MOV"
VIDEO_TYPES = ("video/mp4", "video/quicktime")

# ISO base media file brands (the ftyp box's major brand) of the MP4 family, as the MP4 registration
# authority lists them (mp4ra.org); "qt  " is QuickTime's own. Other ISO-BMFF files (HEIF images, M4A
# audio, 3GPP) share the box layout but are not videos X takes.
_MP4_BRANDS = frozenset(
    {b"isom", b"iso2", b"iso3", b"iso4", b"iso5", b"iso6", b"iso7", b"iso8", b"iso9", b"mp41", b"mp42", b"mp71"}
    | {b"avc1", b"M4V ", b"M4VH", b"M4VP", b"dash", b"msnv", b"MSNV", b"f4v ", b"mmp4"}
)
# QuickTime files written before ftyp existed start with one of these atoms instead.
_QUICKTIME_FIRST_ATOMS = frozenset({b"moov", b"mdat", b"wide", b"pnot"})


class VideoSource:
    """A video's bytes, read on demand: `size` bytes starting with `head`. Subclasses say where from."""

    def __init__(self, size: int, head: bytes) -> None:
        self.size = size
        self.head = head

    async def read(self, offset: int, count: int) -> bytes:
        raise NotImplementedError

    def close(self) -> None:
        """Let go of what holds the bytes (a file descriptor, a temporary file); idempotent."""

    async def segments(self, segment_bytes: int, label: str) -> AsyncIterator[bytes]:
        """The bytes in order, `segment_bytes` at a time: only one segment is in memory at once."""
        for offset in range(0, self.size, segment_bytes):
            count = min(segment_bytes, self.size - offset)
            block = await self.read(offset, count)
            if len(block) != count:
                # A local file shrank after it was checked: what X would get is not what was checked.
                raise InvalidInputError(f"{label}: the file changed while it was being uploaded; nothing was posted.")
            yield block


class BytesVideo(VideoSource):
    """A video already in memory (a percent-encoded data: URI, or a test's bytes)."""

    def __init__(self, content: bytes) -> None:
        super().__init__(len(content), content[:SNIFF_BYTES])
        self._content = content

    async def read(self, offset: int, count: int) -> bytes:
        return self._content[offset : offset + count]


class Base64Video(VideoSource):
    """A base64 data: URI's video, decoded one segment at a time (4 characters carry 3 bytes)."""

    def __init__(self, payload: str, size: int, head: bytes) -> None:
        super().__init__(size, head)
        self._payload = payload

    async def read(self, offset: int, count: int) -> bytes:
        first, last = offset // 3, -(-(offset + count) // 3)
        decoded = base64.b64decode(self._payload[first * 4 : last * 4])
        start = offset - first * 3
        return decoded[start : start + count]


class FileVideo(VideoSource):
    """A video in an open file: the local file that was checked (read through the same descriptor, so a
    path swapped afterwards changes nothing), or the temporary file a fetched video was streamed into."""

    def __init__(self, handle: IO[bytes], size: int, head: bytes) -> None:
        super().__init__(size, head)
        self._fd = handle.fileno()
        # Closes the file when the source is closed or dropped (a dry run never uploads): a temporary
        # file is already unlinked, so closing it frees its disk space too.
        self._finalizer = weakref.finalize(self, handle.close)

    async def read(self, offset: int, count: int) -> bytes:
        # pread: no shared file position, and the blocking read stays off the event loop.
        return await anyio.to_thread.run_sync(os.pread, self._fd, count, offset)

    def close(self) -> None:
        self._finalizer()


@dataclass(frozen=True)
class Attachment:
    """One checked file, ready to upload."""

    label: str
    content: bytes  # the whole file for an image or GIF; empty for a video, whose bytes are in `source`
    mime_type: str  # from the bytes
    frames: int = 1  # image frames; a GIF with more than one is animated
    source: VideoSource | None = None

    @property
    def is_gif(self) -> bool:
        return self.mime_type == "image/gif"

    @property
    def is_video(self) -> bool:
        return self.mime_type in VIDEO_TYPES

    @property
    def animated(self) -> bool:
        return self.is_gif and self.frames > 1

    @property
    def size(self) -> int:
        return self.source.size if self.source is not None else len(self.content)

    @property
    def digest(self) -> str:
        if self.source is not None:
            # Hashing a video would read all of it; a post or message carries one video anyway.
            return f"video-{id(self.source)}"
        return hashlib.sha256(self.content).hexdigest()

    def category(self, target: Target) -> MediaCategory:
        # Every GIF, animated or not, goes as tweet_gif / dm_gif (through the chunked upload): the
        # *_gif categories are the ones whose limit is X's 15 MB GIF limit. A single-frame GIF simply
        # shows as a still GIF.
        if self.is_video:
            return "tweet_video" if target == "tweet" else "dm_video"
        if self.is_gif:
            return "tweet_gif" if target == "tweet" else "dm_gif"
        return "tweet_image" if target == "tweet" else "dm_image"

    def close(self) -> None:
        if self.source is not None:
            self.source.close()


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
    return sniff_video(content)


def sniff_video(content: bytes) -> str | None:
    """MP4 or MOV from the first box of an ISO base media file: its size, then its type."""
    box = content[4:8]
    if box == b"ftyp":
        brand = content[8:12]
        if brand == b"qt  ":
            return "video/quicktime"
        return "video/mp4" if brand in _MP4_BRANDS else None
    if box in _QUICKTIME_FIRST_ATOMS and len(content) >= 8:
        return "video/quicktime"
    return None


def limit_for(head: bytes) -> int:
    """X's size limit for a file starting with `head`: videos 512 MB, GIFs 15 MB, everything else 5 MB."""
    mime_type = sniff_mime_type(head)
    if mime_type in VIDEO_TYPES:
        return MAX_VIDEO_BYTES
    return MAX_GIF_BYTES if mime_type == "image/gif" else MAX_IMAGE_BYTES


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
        content: bytes | VideoSource
        if scheme == "data":
            content = self._from_data_uri(url, label)
        elif scheme in ("http", "https"):
            content = await self._from_url(url, label)
        elif scheme == "file" or scheme == "" or len(scheme) == 1:  # len 1: a Windows drive letter
            # Path resolution and reading are blocking file-system calls: keep them off the event loop.
            content = await anyio.to_thread.run_sync(self._from_local_file, url, label)
        else:
            raise InvalidInputError(
                f"{label}: unsupported URL scheme {scheme!r}; use an https URL, a data: URI or a local file path."
            )
        try:
            return checked(content, entry, label)
        except BaseException:
            if isinstance(content, VideoSource):
                content.close()
            raise

    async def _from_url(self, url: str, label: str) -> bytes | VideoSource:
        spool = _Spool()
        try:
            size = await self.fetcher.fetch_into(url, label, limit_for, spool)
            return await spool.result(size)
        except BaseException:
            spool.discard()
            raise

    def _from_data_uri(self, url: str, label: str) -> bytes | VideoSource:
        header, sep, payload = url[5:].partition(",")
        if not sep:
            raise InvalidInputError(f"{label}: malformed data: URI (no comma). Expected data:image/png;base64,...")
        if header.lower().endswith(";base64"):
            # 4 base64 characters carry 3 bytes: refuse oversized input before decoding all of it,
            # with the limit the first bytes imply (a GIF or a video may be larger than a still image).
            try:
                head = base64.b64decode(payload[:24], validate=True)
            except (binascii.Error, ValueError):
                head = b""
            limit = limit_for(head[:SNIFF_BYTES])
            if len(payload) * 3 // 4 > limit + 3:
                raise _too_large(label, len(payload) * 3 // 4, limit)
            if sniff_video(head) is not None:
                # Checked whole here (a C-speed scan), decoded a segment at a time when uploaded.
                if len(payload) % 4 or not _BASE64.fullmatch(payload):
                    raise InvalidInputError(f"{label}: the data: URI is not valid base64.")
                size = len(payload) * 3 // 4 - len(payload[-2:]) + len(payload[-2:].rstrip("="))
                return Base64Video(payload, size, head[:SNIFF_BYTES])
            try:
                return base64.b64decode(payload, validate=True)
            except (binascii.Error, ValueError):
                raise InvalidInputError(f"{label}: the data: URI is not valid base64.") from None
        return unquote_to_bytes(payload)

    def _from_local_file(self, url: str, label: str) -> bytes | VideoSource:
        if not self.roots:
            raise InvalidInputError(
                f"{label}: reading local files is switched off. Start the server with "
                "--media-root DIR (or XCOURIER_MEDIA_ROOTS) to allow files from DIR, or pass a data: URI."
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
            handle = path.open("rb")
        except OSError as exc:
            raise InvalidInputError(f"{label}: {raw} can't be read ({exc.strerror or 'error'}).") from None
        try:
            head = handle.read(SNIFF_BYTES)
            limit = limit_for(head)
            # The size of what was opened, not of whatever the path names by now.
            size = os.fstat(handle.fileno()).st_size
            if size > limit:
                raise _too_large(label, size, limit)
            if sniff_video(head) is not None:
                return FileVideo(handle, size, head)  # read segment by segment when uploaded
            with handle:
                return head + handle.read(limit + 1 - len(head))
        except OSError as exc:
            handle.close()
            raise InvalidInputError(f"{label}: {raw} can't be read ({exc.strerror or 'error'}).") from None
        except BaseException:
            handle.close()
            raise

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


def checked(content: bytes | VideoSource, entry: FileEntry, label: str) -> Attachment:
    """The bytes decide the type; hints that contradict them with another kind of file are errors."""
    source = content if isinstance(content, VideoSource) else None
    data = source.head if source is not None else content  # a source's first bytes, or the whole file
    size = source.size if source is not None else len(content)
    if size == 0:
        raise InvalidInputError(f"{label}: the file is empty.")
    mime_type = sniff_mime_type(data)
    if mime_type is None:
        hint = _hint_outside(entry, ("image", "video"))
        said = f" (declared as {hint})" if hint else ""
        raise InvalidInputError(
            f"{label}: not a supported image or video{said}: the bytes are not {SUPPORTED}, whatever the name or "
            "mimeType says."
        )
    family = mime_type.split("/", 1)[0]
    hint = _hint_outside(entry, (family,))
    if hint:
        raise InvalidInputError(
            f"{label}: declared as {hint} but the bytes are {mime_type}; only images can be attached as images and "
            "only MP4 or MOV videos as videos. Fix the mimeType/extension or attach a different file."
        )
    # A hint naming another type of the same kind (image/jpg for a PNG, video/mp4 for a MOV) is
    # reconciled: the bytes win.
    limit = MAX_VIDEO_BYTES if family == "video" else MAX_GIF_BYTES if mime_type == "image/gif" else MAX_IMAGE_BYTES
    if size > limit:
        raise _too_large(label, size, limit)
    if family == "video":
        return Attachment(label=label, content=b"", mime_type=mime_type, source=source or BytesVideo(data))
    frames = gif_frame_count(data) if mime_type == "image/gif" else 1
    return Attachment(label=label, content=data, mime_type=mime_type, frames=frames)


def _hint_outside(entry: FileEntry, families: tuple[str, ...]) -> str | None:
    """A mimeType or extension hint naming a kind of file not in `families` ("image", "video"), quoted."""
    declared = (entry.mimeType or "").strip().lower()
    if declared and declared.split("/", 1)[0] not in families:
        return repr(entry.mimeType)
    extension = (entry.extension or "").strip().lstrip(".").lower()
    if extension:
        guessed, _ = mimetypes.guess_type(f"file.{extension}", strict=False)
        if guessed and guessed.split("/", 1)[0] not in families:
            return f"{guessed} (extension {extension!r})"
    return None


def _too_large(label: str, size: int, limit: int) -> InvalidInputError:
    what = {MAX_GIF_BYTES: "GIFs", MAX_VIDEO_BYTES: "videos"}.get(limit, "images")
    fix = "trim or recompress it" if limit == MAX_VIDEO_BYTES else "resize or recompress it"
    return InvalidInputError(f"{label}: {size / MB:.1f} MB is over X's {limit // MB} MB limit for {what}; {fix}.")


async def load_all(loader: MediaLoader, entries: Sequence[FileEntry], limit: int, what: str) -> list[Attachment]:
    """Load and check every entry, then X's combination rules: up to `limit` images, or one GIF or
    one video alone ("You may attach up to 4 photos, 1 animated GIF or 1 video in a Post",
    xdevplatform/docs x-api/media/quickstart/best-practices.mdx)."""
    if len(entries) > limit:
        raise InvalidInputError(
            f"{what} takes at most {limit} image{'s' if limit > 1 else ''}; got {len(entries)}. "
            + ("Send the others in separate messages." if limit == 1 else "Split them across posts.")
        )
    # One at a time: the count is small, and the first bad entry stops the rest being fetched.
    attachments: list[Attachment] = []
    try:
        for i, entry in enumerate(entries):
            attachments.append(await loader.load(entry, i))
        alone = [a for a in attachments if a.is_gif or a.is_video]
        if alone and len(attachments) > 1:
            kind = "video" if alone[0].is_video else "GIF"
            raise InvalidInputError(
                f"{what} takes either up to {limit} images, or exactly one GIF or one video; "
                f"{alone[0].label} is a {kind} and cannot share it with {len(attachments) - 1} other "
                f"attachment{'s' if len(attachments) > 2 else ''}. Post the {kind} on its own."
            )
    except BaseException:
        close_all(attachments)
        raise
    return attachments


def close_all(attachments: Sequence[Attachment]) -> None:
    """Let go of the files videos are read from (they are also closed when dropped)."""
    for attachment in attachments:
        attachment.close()


# The base64 alphabet with its padding, for a payload that is checked whole but decoded piecewise.
_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")


class _Spool:
    """Where a fetched body goes: memory for an image or GIF, an anonymous temporary file for a video.

    The type is known from the first write (fetch.py passes the sniffed head first); tempfile's
    TemporaryFile is unlinked at once, so nothing is left on disk whatever happens.
    """

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._file: IO[bytes] | None = None
        self._head = b""
        self._decided = False

    async def write(self, chunk: bytes) -> None:
        if not self._decided:
            self._decided = True
            self._head = chunk[:SNIFF_BYTES]
            if sniff_video(self._head) is not None:
                self._file = await anyio.to_thread.run_sync(tempfile.TemporaryFile)
        if self._file is None:
            self._chunks.append(chunk)
        else:
            await anyio.to_thread.run_sync(self._file.write, chunk)

    async def result(self, size: int) -> bytes | VideoSource:
        if self._file is None:
            return b"".join(self._chunks)
        await anyio.to_thread.run_sync(self._file.flush)
        source = FileVideo(self._file, size, self._head)
        self._file = None
        return source

    def discard(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


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
    sleep: Sleep | None = None,
) -> list[str]:
    """Upload every attachment; one media id per attachment, identical bytes uploaded once.

    Progress counts bytes: each unique file's size, plus the same again for files sent in chunks,
    which X may have to process (that share follows X's progress_percent, or completes at once
    when X needs no processing). The files videos are read from are closed once this returns.
    The waits between STATUS checks go through `sleep`, by default the client's retry sleep: the one
    place a test (or a runtime) replaces waiting.
    """
    sleep = sleep or client.retry.sleep
    try:
        unique = list({a.digest: a for a in attachments}.values())
        total = sum(a.size * (2 if _is_chunked(a) else 1) for a in unique)
        tracker = _Progress(progress, float(total))
        by_digest: dict[str, str] = {}
        for attachment in unique:
            if _is_chunked(attachment):
                by_digest[attachment.digest] = await _upload_chunked(client, attachment, target, tracker, sleep)
            else:
                by_digest[attachment.digest] = await _upload_simple(client, attachment, target, tracker)
        return [by_digest[a.digest] for a in attachments]
    finally:
        close_all(attachments)


def _is_chunked(attachment: Attachment) -> bool:
    # X: "Use the chunked upload flow for all videos" (x-api/media/quickstart/best-practices.mdx).
    return attachment.is_gif or attachment.is_video or attachment.size > SIMPLE_UPLOAD_MAX_BYTES


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


async def _segments(attachment: Attachment) -> AsyncIterator[bytes]:
    if attachment.source is not None:
        async for segment in attachment.source.segments(VIDEO_SEGMENT_BYTES, attachment.label):
            yield segment
        return
    for start in range(0, len(attachment.content), SEGMENT_BYTES):
        yield attachment.content[start : start + SEGMENT_BYTES]


async def _upload_chunked(
    client: XClient, attachment: Attachment, target: Target, tracker: _Progress, sleep: Sleep
) -> str:
    size = attachment.size
    init = await client.request(
        "POST",
        "/2/media/upload/initialize",
        json={"media_type": attachment.mime_type, "total_bytes": size, "media_category": attachment.category(target)},
    )
    media_id = _media_id(init, "POST /2/media/upload/initialize")
    sent = 0
    index = 0
    async for segment in _segments(attachment):
        await client.request(
            "POST",
            "/2/media/upload/{id}/append",
            path_params={"id": media_id},
            files={"media": ("blob", segment, "application/octet-stream")},
            data={"segment_index": str(index)},
            # Sending segment k again replaces it ("Failed chunks can be retried individually", X's chunked
            # upload quickstart, x-api/media/quickstart/media-upload-chunked.mdx): a 5xx or a lost answer is
            # retried, within the client's bounded retry policy, instead of failing the whole upload.
            idempotent=True,
        )
        index += 1
        sent += len(segment)
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
    """Poll STATUS until X says succeeded; the processing share of progress follows progress_percent.

    X's chunked-upload quickstart: "If processing_info is returned, proceed to Step 4 [STATUS]. If not,
    the media is ready to use", states `pending` -> `in_progress` -> `succeeded` or `failed`, and the wait
    between checks is `check_after_secs` (x-api/media/quickstart/media-upload-chunked.mdx). Bounded twice:
    by the number of checks and by the sum of the waits X asked for.
    """
    size = attachment.size
    credited = 0.0
    body = response
    info = _processing_info(body)
    checks = 0
    waited = 0.0
    while info is not None and info.get("state") != "succeeded":
        if info.get("state") == "failed":
            raise InvalidInputError(
                f"{attachment.label}: X could not process the upload ({_failure_reason(body, info)}); nothing was "
                "posted. "
                + (
                    "Check the video against X's requirements (MP4 or MOV, H.264 video with AAC audio, 0.5 s or "
                    "longer, at most 1280x1024, 60 fps) or try another file."
                    if attachment.is_video
                    else "Try another file."
                ),
                endpoint="GET /2/media/upload",
            )
        percent = info.get("progress_percent")
        if isinstance(percent, int | float) and not isinstance(percent, bool):
            share = size * max(0.0, min(100.0, float(percent))) / 100
            if share > credited:
                await tracker.advance(share - credited, f"X is processing {attachment.label} ({percent:g}%)")
                credited = share
        wait = info.get("check_after_secs")
        if not isinstance(wait, int | float) or isinstance(wait, bool) or wait < 0:
            wait = DEFAULT_CHECK_AFTER_SECS
        wait = min(float(wait), MAX_CHECK_AFTER_SECS)
        if checks >= MAX_STATUS_CHECKS or waited + wait > MAX_PROCESSING_WAIT_SECS:
            raise ServerError(
                f"{attachment.label}: X was still processing the upload after {checks} status checks "
                f"({waited:g} s); nothing was posted. Try again later, or with a shorter or smaller file.",
                endpoint="GET /2/media/upload",
            )
        await sleep(wait)
        waited += wait
        checks += 1
        body = await client.request("GET", "/2/media/upload", params={"command": "STATUS", "media_id": media_id})
        info = _processing_info(body)
    await tracker.advance(size - credited, f"Uploaded {attachment.label}")


def _failure_reason(body: dict[str, Any], info: dict[str, Any]) -> str:
    """X's reason for a failed processing, wherever it put it.

    v1.1 put it in processing_info.error {code, name, message} (e.g. InvalidMedia "file is invalid",
    abraham/twitteroauth#1185); spec 2.167's processing_info allows no `error` property, so a reason can
    only come as the answer's partial `errors[]` beside `data`.
    """
    error = info.get("error")
    if isinstance(error, dict):
        said = error.get("message") or error.get("name")
        if isinstance(said, str) and said:
            return said
    errors = body.get("errors")
    if isinstance(errors, list):
        for problem in errors:
            if isinstance(problem, dict):
                said = problem.get("detail") or problem.get("message") or problem.get("title")
                if isinstance(said, str) and said:
                    return said
    return "no reason given"


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
