"""Uploaded media: type sniffing, X's size limits, and the processing state machine."""

from __future__ import annotations

from dataclasses import dataclass, field

from . import errors

MB = 1024 * 1024
# docs.x.com media best practices: images 5 MB, animated GIFs 15 MB, videos 512 MB.
IMAGE_LIMIT = 5 * MB
GIF_LIMIT = 15 * MB
VIDEO_LIMIT = 512 * MB
EXPIRES_AFTER_SECS = 86400  # media ids stay usable for 24 h after upload

ONE_SHOT_CATEGORIES = ("tweet_image", "dm_image", "subtitles")
CATEGORIES = ("amplify_video", "tweet_gif", "tweet_image", "tweet_video", "dm_gif", "dm_image", "dm_video", "subtitles")

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"BM", "image/bmp"),
)


def sniff(data: bytes) -> str | None:
    for magic, mime in _MAGIC:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def kind_of(media_type: str, category: str | None) -> str:
    """'image', 'gif' or 'video' — what decides the size limit, media key prefix and processing."""
    if media_type.startswith("video/") or (category or "").endswith("_video"):
        return "video"
    if media_type == "image/gif" or (category or "").endswith("_gif"):
        return "gif"
    return "image"


def limit_for(kind: str) -> int:
    return {"image": IMAGE_LIMIT, "gif": GIF_LIMIT, "video": VIDEO_LIMIT}[kind]


# X's media key prefixes: 3 photo, 7 video, 16 animated GIF.
_KEY_PREFIX = {"image": "3", "gif": "16", "video": "7"}

# One STATUS call moves processing one step; no timers, so tests are deterministic.
_NEXT_STATE = {"pending": "in_progress", "in_progress": "succeeded"}


@dataclass
class Media:
    id: str
    owner_id: str
    media_type: str
    category: str | None
    created_at: float
    total_bytes: int | None = None
    segments: dict[int, bytes] = field(default_factory=dict)
    size: int = 0
    state: str = "uploading"  # uploading -> (pending -> in_progress ->) succeeded
    chunked: bool = False

    @property
    def kind(self) -> str:
        return kind_of(self.media_type, self.category)

    @property
    def media_key(self) -> str:
        return f"{_KEY_PREFIX[self.kind]}_{self.id}"

    @property
    def expires_at(self) -> float:
        return self.created_at + EXPIRES_AFTER_SECS

    @property
    def needs_processing(self) -> bool:
        return self.kind in ("gif", "video")

    def append(self, index: int, chunk: bytes) -> None:
        if self.state != "uploading":
            raise errors.invalid_request("Media upload has already been finalized.", {"id": [self.id]})
        self.segments[index] = chunk

    def finalize(self) -> None:
        if self.state != "uploading":
            raise errors.invalid_request("Media upload has already been finalized.", {"id": [self.id]})
        if not self.segments:
            raise errors.invalid_request("No media segments were appended.", {"id": [self.id]})
        indices = sorted(self.segments)
        if indices != list(range(len(indices))):
            raise errors.invalid_request(
                "Segments are missing: segment_index values must be contiguous from 0.", {"id": [self.id]}
            )
        self.size = sum(len(self.segments[i]) for i in indices)
        if self.total_bytes is not None and self.size != self.total_bytes:
            raise errors.invalid_request(
                f"File size mismatch: total_bytes was {self.total_bytes}, received {self.size}.",
                {"id": [self.id]},
            )
        self._reconcile_with_bytes(self.segments[indices[0]][:16])
        check_size(self.size, self.kind)
        self.state = "pending" if self.needs_processing else "succeeded"

    def _reconcile_with_bytes(self, head: bytes) -> None:
        """The bytes, not the declared media_type, decide an image's kind (and so its size limit):
        a still image declared as a GIF must not get the 15 MB GIF limit, nor a GIF slip through
        an image category. A *_gif category holding a still image is refused: the sandbox is
        stricter here than X is known to be, so client bugs show up in tests."""
        detected = sniff(head)
        if detected is None or not detected.startswith("image/") or not self.media_type.startswith("image/"):
            return
        if (self.category or "").endswith("_gif") and detected != "image/gif":
            raise errors.invalid_request(
                f"media_category {self.category} takes GIFs; the uploaded bytes are {detected}.",
                {"media_category": [str(self.category)]},
            )
        self.media_type = detected

    def advance(self) -> None:
        self.state = _NEXT_STATE.get(self.state, self.state)

    def processing_info(self) -> dict[str, object] | None:
        if self.state == "uploading" or not self.needs_processing:
            return None
        if self.state == "pending":
            return {"state": "pending", "check_after_secs": 1}
        if self.state == "in_progress":
            return {"state": "in_progress", "check_after_secs": 1, "progress_percent": 50}
        return {"state": self.state, "progress_percent": 100}

    def response(self, *, with_size: bool = True) -> dict[str, object]:
        data: dict[str, object] = {"id": self.id, "media_key": self.media_key, "expires_after_secs": EXPIRES_AFTER_SECS}
        if with_size:
            data["size"] = self.size
        info = self.processing_info()
        if info is not None:
            data["processing_info"] = info
        return {"data": data}


def check_size(size: int, kind: str) -> None:
    limit = limit_for(kind)
    if size > limit:
        raise errors.invalid_request(
            f"File size exceeds {limit // MB} MB limit for {kind} media.", {"media": [str(size)]}
        )
