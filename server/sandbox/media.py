"""Uploaded media: type sniffing, X's size limits, and the processing state machine.

Processing follows X's chunked-upload quickstart (xdevplatform/docs x-api/media/quickstart/
media-upload-chunked.mdx): FINALIZE answers `processing_info` for media X processes (GIFs, videos),
and STATUS then walks `pending` -> `in_progress` -> `succeeded` or `failed`, asking the client to wait
`check_after_secs` between checks. Here each STATUS call moves one step, with no timers, so tests are
deterministic; how many `in_progress` steps there are, the wait asked for and whether processing
fails are set through `ProcessingPlan` (the admin API's /_sandbox/media/processing).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import errors

MB = 1024 * 1024
# docs.x.com media best practices: images 5 MB, animated GIFs 15 MB, videos 512 MB.
IMAGE_LIMIT = 5 * MB
GIF_LIMIT = 15 * MB
VIDEO_LIMIT = 512 * MB
EXPIRES_AFTER_SECS = 86400  # media ids stay usable for 24 h after upload
# X: "Keep each segment at or below 5 MB (server maximum is 8 MB)" (x-api/media/append-media-upload.mdx).
MAX_SEGMENT_BYTES = 8 * MB
HEAD_BYTES = 16

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

# What X says when processing fails. v1.1 answered processing_info.error {code: 1, name: "InvalidMedia",
# message: "file is invalid"} (seen in abraham/twitteroauth#1185); spec 2.167's processing_info allows no
# `error`, so the sandbox reports it as a partial error beside `data` (inferred: X's v2 docs are silent).
DEFAULT_FAILURE = "InvalidMedia: file is invalid"


def looks_like_video(head: bytes) -> bool:
    """An ISO base media file (MP4, MOV): its first box is `ftyp`, or a classic QuickTime atom."""
    return head[4:8] in (b"ftyp", b"moov", b"mdat", b"wide", b"pnot")


@dataclass
class ProcessingPlan:
    """How the next finalized GIFs and videos process: set by tests and demos through the admin API."""

    # STATUS calls that answer `in_progress` before the outcome, per kind (progress_percent rises evenly).
    steps: dict[str, int] = field(default_factory=lambda: {"gif": 1, "video": 3})
    check_after_secs: int = 1
    fail_next: int = 0  # this many of the next finalized uploads fail processing
    failure: str = DEFAULT_FAILURE

    def take_failure(self) -> str | None:
        if self.fail_next <= 0:
            return None
        self.fail_next -= 1
        return self.failure

    def describe(self) -> dict[str, object]:
        return {
            "steps": dict(self.steps),
            "check_after_secs": self.check_after_secs,
            "fail_next": self.fail_next,
            "failure": self.failure,
        }


@dataclass
class Media:
    id: str
    owner_id: str
    media_type: str
    category: str | None
    created_at: float
    total_bytes: int | None = None
    # Only each segment's size and the first bytes are kept: a 512 MB video costs the sandbox no memory.
    segment_sizes: dict[int, int] = field(default_factory=dict)
    head: bytes = b""
    size: int = 0
    state: str = "uploading"  # uploading -> (pending -> in_progress ->) succeeded | failed
    chunked: bool = False
    steps: int = 0  # in_progress STATUS answers planned before the outcome
    step: int = 0
    check_after_secs: int = 1
    failure: str | None = None  # set when processing is to fail, with X's reason

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
        if len(chunk) > MAX_SEGMENT_BYTES:
            raise errors.invalid_request(
                f"Segment {index} is {len(chunk)} bytes; a segment is at most {MAX_SEGMENT_BYTES // MB} MB.",
                {"media": [str(len(chunk))]},
            )
        # Sending a segment_index again replaces that segment (X: "Failed chunks can be retried individually").
        self.segment_sizes[index] = len(chunk)
        if index == 0:
            self.head = chunk[:HEAD_BYTES]

    def finalize(self, plan: ProcessingPlan | None = None) -> None:
        if self.state != "uploading":
            raise errors.invalid_request("Media upload has already been finalized.", {"id": [self.id]})
        if not self.segment_sizes:
            raise errors.invalid_request("No media segments were appended.", {"id": [self.id]})
        indices = sorted(self.segment_sizes)
        if indices != list(range(len(indices))):
            raise errors.invalid_request(
                "Segments are missing: segment_index values must be contiguous from 0.", {"id": [self.id]}
            )
        self.size = sum(self.segment_sizes.values())
        if self.total_bytes is not None and self.size != self.total_bytes:
            raise errors.invalid_request(
                f"File size mismatch: total_bytes was {self.total_bytes}, received {self.size}.",
                {"id": [self.id]},
            )
        self._reconcile_with_bytes(self.head)
        check_size(self.size, self.kind)
        if not self.needs_processing:
            self.state = "succeeded"
            return
        plan = plan or ProcessingPlan()
        self.state = "pending"
        self.steps = max(0, plan.steps.get(self.kind, 1))
        self.check_after_secs = plan.check_after_secs
        self.failure = plan.take_failure()
        if self.failure is None and self.kind == "video" and not looks_like_video(self.head):
            # X accepts any bytes up to FINALIZE and finds a broken video only when processing it
            # (the InvalidMedia failure above); inferred for the sandbox.
            self.failure = DEFAULT_FAILURE

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
        """One STATUS call's worth of processing."""
        if self.state not in ("pending", "in_progress"):
            return
        if self.step < self.steps:
            self.step += 1
            self.state = "in_progress"
            return
        self.state = "failed" if self.failure is not None else "succeeded"

    @property
    def progress_percent(self) -> int:
        return 100 * self.step // (self.steps + 1)

    def processing_info(self) -> dict[str, object] | None:
        if self.state == "uploading" or not self.needs_processing:
            return None
        if self.state == "pending":
            return {"state": "pending", "check_after_secs": self.check_after_secs}
        if self.state == "in_progress":
            return {
                "state": "in_progress",
                "check_after_secs": self.check_after_secs,
                "progress_percent": self.progress_percent,
            }
        if self.state == "failed":
            return {"state": "failed", "progress_percent": self.progress_percent}
        return {"state": self.state, "progress_percent": 100}

    def response(self, *, with_size: bool = True) -> dict[str, object]:
        data: dict[str, object] = {"id": self.id, "media_key": self.media_key, "expires_after_secs": EXPIRES_AFTER_SECS}
        if with_size:
            data["size"] = self.size
        info = self.processing_info()
        if info is not None:
            data["processing_info"] = info
        if self.kind == "video" and self.state == "succeeded":
            data["video"] = {"video_type": "video/mp4"}  # X serves processed video as MP4
        body: dict[str, object] = {"data": data}
        if self.state == "failed":
            name, _, message = (self.failure or DEFAULT_FAILURE).partition(": ")
            body["errors"] = [{"title": name, "detail": message or name, "type": "about:blank", "status": 400}]
        return body


def check_size(size: int, kind: str) -> None:
    limit = limit_for(kind)
    if size > limit:
        raise errors.invalid_request(
            f"File size exceeds {limit // MB} MB limit for {kind} media.", {"media": [str(size)]}
        )
