"""The X API v2 client: one pooled httpx.AsyncClient, bearer auth, X's errors, rate-limit state."""

from __future__ import annotations

import contextlib
import functools
import logging
import random
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Protocol
from urllib.parse import quote

import anyio
import httpx

from .errors import (
    AnswerUnreadableError,
    NotSentError,
    RateLimit,
    ServerError,
    TransportError,
    error_from_partial,
    error_from_response,
    transport_error,
)

logger = logging.getLogger("xcourier.x")

DEFAULT_BASE_URL = "https://api.x.com"
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)


@dataclass(frozen=True)
class RetryPolicy:
    """Retries of idempotent calls after a 5xx or a transport error: jittered, bounded in total."""

    attempts: int = 3
    base_delay: float = 0.5
    max_total_delay: float = 8.0
    sleep: Callable[[float], Awaitable[None]] = anyio.sleep
    jitter: Callable[[], float] = random.random

    def delay(self, attempt: int) -> float:
        return self.base_delay * (2**attempt) * (0.5 + self.jitter())


# (method, path template, path parameters, JSON body) of a successful answer; see tools/billing.py.
MeterHook = Callable[[str, str, Mapping[str, str], dict[str, Any]], Awaitable[None]]


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One verifying TLS context (certifi's CAs, as httpx's default) for every client in the process.

    Loading the CA bundle costs 20-100 ms; hosted mode makes a client per signed-in user."""
    import certifi

    return ssl.create_default_context(cafile=certifi.where())


class TokenProvider(Protocol):
    """Where the client gets its bearer token; the OAuth token manager implements this."""

    async def access_token(self) -> str:
        """A token believed valid now. Raises UnauthorizedError when there is none."""
        ...

    async def refresh_after_unauthorized(self, rejected: str) -> str | None:
        """X said 401 to `rejected`: a different token to retry with once, or None."""
        ...


class StaticTokenProvider:
    """A fixed access token (e.g. XCOURIER_ACCESS_TOKEN): never refreshed."""

    def __init__(self, token: str) -> None:
        if not token:
            raise ValueError("empty access token")
        self._token = token

    async def access_token(self) -> str:
        return self._token

    async def refresh_after_unauthorized(self, rejected: str) -> str | None:
        return None

    def __repr__(self) -> str:
        return "StaticTokenProvider(<redacted>)"


class XClient:
    """Talks to X API v2 for one account. Owns (or borrows) one pooled httpx.AsyncClient."""

    def __init__(
        self,
        tokens: TokenProvider,
        *,
        base_url: str = DEFAULT_BASE_URL,
        http: httpx.AsyncClient | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        meter: MeterHook | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.retry = retry or RetryPolicy()
        self._tokens = tokens
        self._owns_http = http is None
        self._http = http or httpx.AsyncClient(
            verify=tls_context(),
            timeout=timeout,
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=16),
            headers={"User-Agent": "xcourier"},
        )
        self.rate_limits: dict[str, RateLimit] = {}
        # X's clock minus this machine's, from the Date header of X's latest answer (None before
        # any): a post's snowflake id is stamped by X's clock, a send time by this one.
        self.clock_offset: float | None = None
        # Sees every answer X sent back successfully (cache hits never get here): the spend meter.
        self._meter = meter

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> XClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def request(
        self,
        method: str,
        path_template: str,
        *,
        path_params: Mapping[str, str] | None = None,
        params: Mapping[str, str | int] | None = None,
        json: Any = None,
        files: Mapping[str, Any] | None = None,
        data: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
    ) -> dict[str, Any]:
        """One call to X. Returns the JSON body; raises an XError family on failure.

        Idempotent calls (GET and DELETE by default; likes and reposts say so) are retried after
        a 5xx or a transport error, with jittered backoff bounded in total, and never while one of
        the endpoint's rate-limit windows (15-minute or 24-hour) is spent. Posts and DMs are never
        retried blindly: a lost answer may mean the write happened.

        Raises NotSentError only when no attempt reached X: if an earlier attempt may have, the
        last failure is reported as a TransportError (the outcome is not known), even when the last
        attempt could not connect.
        """
        retryable = method in ("GET", "DELETE") if idempotent is None else idempotent
        endpoint = f"{method} {path_template}"
        waited = 0.0
        reached = False
        for attempt in range(self.retry.attempts):
            try:
                return await self._request_once(method, path_template, path_params, params, json, files, data)
            except (ServerError, TransportError, NotSentError) as exc:
                delay = self.retry.delay(attempt)
                last = attempt == self.retry.attempts - 1
                if not retryable or last or waited + delay > self.retry.max_total_delay or self._spent(endpoint):
                    if reached and isinstance(exc, NotSentError):
                        raise TransportError(
                            f"Could not complete {endpoint}: an earlier attempt reached X and its outcome is not "
                            f"known, and the retry could not reach X ({exc.reason})",
                            endpoint=endpoint,
                            detail=exc.detail,
                        ) from None
                    raise
                reached = reached or not isinstance(exc, NotSentError)
                logger.info("%s failed; retrying in %.1f s", endpoint, delay)
                waited += delay
                await self.retry.sleep(delay)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _spent(self, endpoint: str) -> bool:
        rate_limit = self.rate_limits.get(endpoint)
        return rate_limit is not None and rate_limit.spent_window(time.time()) is not None

    async def _request_once(
        self,
        method: str,
        path_template: str,
        path_params: Mapping[str, str] | None,
        params: Mapping[str, str | int] | None,
        json: Any,
        files: Mapping[str, Any] | None,
        data: Mapping[str, str] | None,
    ) -> dict[str, Any]:
        """A 401 gets one retry with the token the provider hands out after it (a refresh);
        never more, so a revoked login can't loop."""
        endpoint = f"{method} {path_template}"
        path = path_template.format_map({k: quote(v, safe="") for k, v in (path_params or {}).items()})
        url = self.base_url + path
        token = await self._tokens.access_token()
        response = await self._send(method, url, endpoint, token, params, json, files, data)
        if response.status_code == 401:
            retry_token = await self._tokens.refresh_after_unauthorized(token)
            if retry_token is not None and retry_token != token:
                response = await self._send(method, url, endpoint, retry_token, params, json, files, data)
        body = self._parse(response, endpoint)
        if self._meter is not None:
            await self._meter(method, path_template, path_params or {}, body)
        return body

    async def _send(
        self,
        method: str,
        url: str,
        endpoint: str,
        token: str,
        params: Mapping[str, str | int] | None,
        json: Any,
        files: Mapping[str, Any] | None,
        data: Mapping[str, str] | None,
    ) -> httpx.Response:
        try:
            response = await self._http.request(
                method,
                url,
                params=params,
                json=json,
                files=files,
                data=data,
                headers={"Authorization": f"Bearer {token}"},
            )
        except httpx.HTTPError as exc:
            logger.warning("%s failed: %s", endpoint, type(exc).__name__)
            raise transport_error(exc, endpoint, self.base_url) from None
        self._note_clock(response.headers.get("date"))
        rate_limit = RateLimit.from_headers(response.headers)
        if rate_limit is not None:
            self.rate_limits[endpoint] = rate_limit
        logger.debug("%s -> %s", endpoint, response.status_code)
        return response

    def _note_clock(self, date: str | None) -> None:
        if not date:
            return
        # A malformed Date header says nothing about X's clock: keep what is known.
        with contextlib.suppress(TypeError, ValueError, IndexError):
            self.clock_offset = parsedate_to_datetime(date).timestamp() - time.time()

    def _parse(self, response: httpx.Response, endpoint: str) -> dict[str, Any]:
        if not response.is_success:
            raise error_from_response(response, endpoint)
        if response.status_code == 204 or not response.content:
            return {}
        # A 2xx means X did what was asked: a body that can't be read doesn't undo that.
        status = response.status_code
        try:
            body = response.json()
        except ValueError:
            raise _unreadable(endpoint, status, "the body is not JSON") from None
        if not isinstance(body, dict):
            raise _unreadable(endpoint, status, "the body is JSON but not an object")
        partial = error_from_partial(body, endpoint, response.status_code)
        if partial is not None:
            raise partial
        return body


def _unreadable(endpoint: str, status: int, what: str) -> AnswerUnreadableError:
    # The message names what was wrong, never the body: it may hold secrets.
    return AnswerUnreadableError(
        f"X accepted {endpoint} (HTTP {status}), but xcourier could not read its answer: {what}.",
        status=status,
        endpoint=endpoint,
        detail=what,
    )
