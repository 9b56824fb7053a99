"""The X Activity API (XAA): subscriptions per user id, and the one persistent stream of events.

Sources (xdevplatform/docs, 2026-08): x-api/activity/introduction.mdx (event types, protected
accounts never delivered, 1,500 subscriptions self-serve / 75,000 Enterprise), quickstart.mdx
(the app's Bearer Token, CRUD shapes), event-payloads.mdx (the event envelope), and X's streaming
guides, x-api/fundamentals/consuming-streaming-data.mdx and handling-disconnections.mdx: a
`\\r\\n` keep-alive at least every 20 s, read timeouts to detect a stall, reconnect at once and
then back off (linear 250 ms steps up to 16 s for network errors, exponential from 5 s up to 320 s
for HTTP errors, from 60 s for 429s). Spec 2.167 gives the shapes; models here require only what
the spec requires (nothing, mostly) and ignore what they don't know, as the streaming guide asks
("Your client must tolerate ... unexpected or missing fields ... new message types").
"""

from __future__ import annotations

import json
import logging
import math
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import anyio
import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from .client import XClient
from .errors import RateLimitedError, TransportError, XError, error_from_response, transport_error

logger = logging.getLogger("xcourier.x.activity")

SUBSCRIPTIONS = "/2/activity/subscriptions"
SUBSCRIPTION = "/2/activity/subscriptions/{subscription_id}"
STREAM = "/2/activity/stream"
USER_BY_ID = "/2/users/{id}"
POST_CREATE = "post.create"
POST_DELETE = "post.delete"
MAX_BACKFILL_MINUTES = 5  # spec 2.167: backfill_minutes 0..5
# X sends a keep-alive at least every 20 s; a read that waits longer than this means a stall.
DEFAULT_STALL_TIMEOUT = 30.0
# A post is a few KB of JSON; a line this long is not an event, and reading on would buffer without end.
MAX_LINE_BYTES = 1 << 20


class Filter(BaseModel):
    model_config = ConfigDict(extra="ignore")

    user_id: str | None = None


class Subscription(BaseModel):
    model_config = ConfigDict(extra="ignore")

    subscription_id: str
    event_type: str | None = None
    filter: Filter = Filter()
    tag: str | None = None


class ActivityEvent(BaseModel):
    """One event's `data`: `post.create`'s payload is a Post, `post.delete`'s `{id, author_id}`."""

    model_config = ConfigDict(extra="ignore")

    event_type: str | None = None
    event_uuid: str | None = None
    filter: Filter = Filter()
    tag: str | None = None
    payload: dict[str, Any] = {}
    includes: dict[str, Any] = {}


class StreamStalledError(TransportError):
    """Neither an event nor a keep-alive arrived within the read timeout."""


class StreamEndedError(TransportError):
    """The stream closed (cleanly or cut off); reconnect."""


class LineTooLongError(TransportError):
    """A line passed MAX_LINE_BYTES without a newline: not an event this client can hold."""


def _subscription_of(body: dict[str, Any]) -> Subscription | None:
    """Spec 2.167 nests the subscription as data.subscription; X's quickstart shows it as data."""
    data = body.get("data")
    if isinstance(data, dict) and isinstance(data.get("subscription"), dict):
        data = data["subscription"]
    try:
        return Subscription.model_validate(data)
    except ValidationError:
        return None


class ActivityClient:
    """Subscriptions through an XClient that holds the app's Bearer Token (app-only)."""

    def __init__(self, app: XClient) -> None:
        self.app = app

    async def create(self, event_type: str, user_id: str, tag: str | None) -> Subscription:
        body: dict[str, Any] = {"event_type": event_type, "filter": {"user_id": user_id}}
        if tag is not None:
            body["tag"] = tag
        answer = await self.app.request("POST", SUBSCRIPTIONS, json=body, idempotent=False)
        found = _subscription_of(answer)
        if found is None:
            raise TransportError(
                f"X created an activity subscription for user {user_id} but its answer has no subscription_id.",
                endpoint=f"POST {SUBSCRIPTIONS}",
            )
        return found

    async def list_all(self) -> list[Subscription]:
        """Every subscription of the app, following meta.next_token (X's paging, where it sends one)."""
        found: list[Subscription] = []
        token: str | None = None
        for _ in range(200):  # 200 pages of 1,000 pass Partner's 150,000
            params: dict[str, str | int] = {"max_results": 1000}
            if token:
                params["pagination_token"] = token
            body = await self.app.request("GET", SUBSCRIPTIONS, params=params)
            items = body.get("data") if isinstance(body.get("data"), list) else []
            for item in items:
                try:
                    found.append(Subscription.model_validate(item))
                except ValidationError:
                    logger.warning("skipped an activity subscription X listed without a subscription_id")
            meta = body.get("meta") if isinstance(body.get("meta"), dict) else {}
            token = meta.get("next_token") if isinstance(meta.get("next_token"), str) else None
            if not token:
                break
        return found

    async def retag(self, subscription_id: str, tag: str) -> None:
        await self.app.request(
            "PUT", SUBSCRIPTION, path_params={"subscription_id": subscription_id}, json={"tag": tag}, idempotent=True
        )

    async def delete(self, subscription_id: str) -> None:
        await self.app.request("DELETE", SUBSCRIPTION, path_params={"subscription_id": subscription_id})

    async def protected(self, user_id: str) -> bool | None:
        """Whether the user's posts are protected (XAA never delivers them); None when X doesn't say."""
        body = await self.app.request(
            "GET", USER_BY_ID, path_params={"id": user_id}, params={"user.fields": "protected"}
        )
        data = body.get("data")
        value = data.get("protected") if isinstance(data, dict) else None
        return value if isinstance(value, bool) else None


def stream_params(backfill_minutes: int = 0, start_time: float | None = None) -> dict[str, str | int]:
    params: dict[str, str | int] = {}
    if backfill_minutes:
        params["backfill_minutes"] = max(0, min(MAX_BACKFILL_MINUTES, backfill_minutes))
    if start_time is not None:
        params["start_time"] = datetime.fromtimestamp(start_time, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return params


async def read_stream(
    http: httpx.AsyncClient,
    url: str,
    token: str,
    *,
    backfill_minutes: int = 0,
    stall_timeout: float = DEFAULT_STALL_TIMEOUT,
    on_alive: Callable[[], None] | None = None,
    on_connect: Callable[[], None] | None = None,
) -> AsyncIterator[ActivityEvent]:
    """One connection to the stream: its events until it ends. Raises an XError for an HTTP error,
    StreamStalledError when nothing arrives for `stall_timeout` seconds, StreamEndedError when it
    closes. `on_connect` is called once X has accepted the connection, `on_alive` then and for every
    chunk read, keep-alives included."""
    endpoint = f"GET {STREAM}"
    timeout = httpx.Timeout(connect=10.0, read=stall_timeout, write=10.0, pool=10.0)
    headers = {"Authorization": f"Bearer {token}"}
    try:
        async with http.stream(
            "GET", url, params=stream_params(backfill_minutes), headers=headers, timeout=timeout
        ) as response:
            if not response.is_success:
                await response.aread()
                raise error_from_response(response, endpoint)
            if on_connect is not None:
                on_connect()
            if on_alive is not None:
                on_alive()
            buffer = b""
            async for chunk in response.aiter_raw():
                if on_alive is not None:
                    on_alive()
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                if len(buffer) > MAX_LINE_BYTES:
                    raise LineTooLongError(f"An activity stream line passed {MAX_LINE_BYTES} bytes.", endpoint=endpoint)
                for line in lines:
                    event = _event(line)
                    if event is not None:
                        yield event
    except httpx.ReadTimeout:
        raise StreamStalledError(
            f"The activity stream sent nothing, not even a keep-alive, for {stall_timeout:.0f} s.", endpoint=endpoint
        ) from None
    except httpx.HTTPError as exc:
        raise transport_error(exc, endpoint) from None
    raise StreamEndedError("The activity stream closed.", endpoint=endpoint)


def _event(line: bytes) -> ActivityEvent | None:
    text = line.strip()
    if not text:
        return None  # the keep-alive
    try:
        body = json.loads(text)
    except ValueError:
        logger.warning("skipped an activity stream line that is not JSON")
        return None
    if not isinstance(body, dict):
        return None
    if "errors" in body and "data" not in body:
        # In-stream system messages (consuming-streaming-data.mdx, "Error messages"): X disconnects next.
        logger.warning("the activity stream reported: %s", _titles(body["errors"]))
        return None
    try:
        return ActivityEvent.model_validate(body.get("data"))
    except ValidationError:
        logger.warning("skipped an activity stream event in a shape xcourier can't read")
        return None


def _titles(errors: Any) -> str:
    if not isinstance(errors, list):
        return "an error"
    return (
        ", ".join(str(e.get("title") or e.get("type") or "error") for e in errors if isinstance(e, dict)) or "an error"
    )


@dataclass
class Backoff:
    """handling-disconnections.mdx: reconnect at once; then network errors back off linearly (250 ms
    steps, at most 16 s), HTTP errors exponentially (from 5 s, at most 320 s), 429s from 60 s.
    Jittered, so a fleet that lost X at once doesn't come back at once."""

    jitter: Callable[[], float] = random.random
    failures: int = 0

    def reset(self) -> None:
        self.failures = 0

    def next_delay(self, error: XError) -> float:
        self.failures += 1
        if self.failures == 1 and isinstance(error, TransportError):
            return 0.0
        if isinstance(error, RateLimitedError):
            base = min(60.0 * 2 ** (self.failures - 1), 960.0)
        elif isinstance(error, TransportError):
            base = min(0.25 * self.failures, 16.0)
        else:
            base = min(5.0 * 2 ** (self.failures - 1), 320.0)
        return base * (0.75 + 0.5 * self.jitter())


def backfill_for(gap_seconds: float) -> int | None:
    """The backfill_minutes that cover a gap, or None when the gap is longer than X keeps."""
    if gap_seconds <= 0:
        return 1
    minutes = math.ceil(gap_seconds / 60)
    return minutes if minutes <= MAX_BACKFILL_MINUTES else None


Sleep = Callable[[float], Awaitable[None]]
default_sleep: Sleep = anyio.sleep
