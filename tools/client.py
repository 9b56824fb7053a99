"""The X API v2 client: one pooled httpx.AsyncClient, bearer auth, X's errors, rate-limit state."""

from __future__ import annotations

import contextlib
import functools
import logging
import random
import ssl
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Protocol, runtime_checkable
from urllib.parse import quote

import anyio
import httpx

from .errors import (
    AnswerUnreadableError,
    NotSentError,
    RateLimit,
    RateLimitedError,
    ServerError,
    TransportError,
    UnauthorizedError,
    Window,
    error_from_partial,
    error_from_response,
    transport_error,
)

logger = logging.getLogger("xcourier.x")

DEFAULT_BASE_URL = "https://api.x.com"
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
# The login of a client with one (its TokenProvider is not a LoginPool).
ONE_LOGIN = ""
# Rate-limit states kept per (login, endpoint); past this the least recently updated are dropped.
MAX_LOGIN_STATES = 10_000


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


class _NoCookies(httpx.Cookies):
    """A cookie store that keeps nothing.

    X's API authenticates every request by its bearer token and needs no cookies. Keeping what a
    Set-Cookie offers would send it along with later requests, whichever user's token they carry
    (hosted mode shares one pool between users); and reading every answer for cookies costs
    ~0.1 ms of CPU a request.
    """

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


class _CookielessClient(httpx.AsyncClient):
    @property
    def cookies(self) -> httpx.Cookies:
        return _NO_COOKIES


_NO_COOKIES = _NoCookies()


def http_client(*, limits: httpx.Limits, timeout: httpx.Timeout = DEFAULT_TIMEOUT) -> httpx.AsyncClient:
    """An httpx client for talking to X: the process's one TLS context, no cookies, xcourier's User-Agent."""
    return _CookielessClient(verify=tls_context(), timeout=timeout, limits=limits, headers={"User-Agent": "xcourier"})


class TokenProvider(Protocol):
    """Where the client gets its bearer token; the OAuth token manager implements this."""

    async def access_token(self) -> str:
        """A token believed valid now. Raises UnauthorizedError when there is none."""
        ...

    async def refresh_after_unauthorized(self, rejected: str) -> str | None:
        """X said 401 to `rejected`: a different token to retry with once, or None."""
        ...


@runtime_checkable
class LoginPool(Protocol):
    """Several users' logins behind one client (hosted mode's shared poller).

    X counts per-user limits per login and per-app limits for the whole app ("Per-user limits: apply
    with OAuth 1.0a or OAuth 2.0 user tokens", docs.x.com x-api/fundamentals/rate-limits, xdevplatform/docs
    at 0bfed9f0), so one login spending its budget must not stop calls the others can still make: the
    client keeps each login's windows apart and calls with the first login whose windows aren't spent.
    """

    def logins(self) -> list[str]:
        """The logins the call at hand may use (ids, e.g. X user ids), preferred first."""
        ...

    async def login_token(self, login: str) -> str:
        """An access token of `login`. Raises UnauthorizedError if it can't be used (the pool drops it)."""
        ...

    async def refresh_login(self, login: str, rejected: str) -> str | None:
        """X said 401 to `rejected`, a token of `login`: a fresh token of it, or None (the pool drops it)."""
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
        tokens: TokenProvider | LoginPool,
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
        # An owned client is made by the first request (_client): building an httpx.AsyncClient imports
        # httpcore and h11, ~15 ms of a stdio server's start-up that tools/list never needs.
        self._http: httpx.AsyncClient | None = http
        self._timeout = timeout
        self._closed = False
        # Each endpoint's windows as of X's latest answer, whichever login it was for: what status shows,
        # and the app's windows (per-app ones count every login's calls).
        self.rate_limits: dict[str, RateLimit] = {}
        # (login, endpoint) -> that login's windows as of its latest answer on the endpoint.
        self._login_limits: OrderedDict[tuple[str, str], RateLimit] = OrderedDict()
        # X's clock minus this machine's, from the Date header of X's latest answer (None before
        # any): a post's snowflake id is stamped by X's clock, a send time by this one.
        self.clock_offset: float | None = None
        # The Date header it was read from: X's Date has whole seconds, so one parse a second will do.
        self._clock_date = ""
        # Chosen once: whether the token source is a pool of logins (an isinstance check against a
        # runtime-checkable Protocol costs ~50 us, and every request asks).
        self._pooled = isinstance(tokens, LoginPool)
        # Sees every answer X sent back successfully (cache hits never get here): the spend meter.
        self._meter = meter

    def _client(self) -> httpx.AsyncClient:
        """The pooled httpx client, created on first use; one per XClient.

        Nothing awaits between the check and the assignment, so first calls racing on the event loop
        all get the one client.
        """
        if self._http is None:
            if self._closed:
                raise RuntimeError("This XClient is closed; make a new one.")
            self._http = http_client(
                timeout=self._timeout, limits=httpx.Limits(max_connections=64, max_keepalive_connections=16)
            )
        return self._http

    async def aclose(self) -> None:
        self._closed = True
        if self._owns_http and self._http is not None:
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
        rate_limit = self.rate_limit_for(endpoint)
        return rate_limit is not None and rate_limit.spent_window(time.time()) is not None

    # -- rate-limit state, per login ------------------------------------------------------------

    def _logins(self) -> list[str]:
        return self._tokens.logins() if self._pooled else [ONE_LOGIN]

    def login_rate_limit(self, endpoint: str, login: str = ONE_LOGIN) -> RateLimit | None:
        """What `login` may still call on `endpoint`: its own windows, and the app's as X reported them last."""
        own = self._login_limits.get((login, endpoint))
        latest = self.rate_limits.get(endpoint)
        windows = tuple(w for w in (own.windows if own else ()) if not w.per_app)
        return RateLimit.of(windows + tuple(w for w in (latest.windows if latest else ()) if w.per_app))

    def _blocked(self, endpoint: str, login: str, now: float) -> Window | None:
        rate_limit = self.login_rate_limit(endpoint, login)
        return rate_limit.spent_window(now) if rate_limit is not None else None

    def rate_limit_for(self, endpoint: str, now: float | None = None) -> RateLimit | None:
        """The endpoint's state for the call at hand: that of the login it would be made with (the first
        one whose windows aren't spent), or, when every login's are, of the one that frees up first. None
        when nothing is known (or there is no login to call with)."""
        at = time.time() if now is None else now
        spent: list[tuple[float, RateLimit]] = []
        for login in self._logins():
            rate_limit = self.login_rate_limit(endpoint, login)
            window = rate_limit.spent_window(at) if rate_limit is not None else None
            if window is None:
                return rate_limit
            assert rate_limit is not None
            spent.append((window.reset_at, rate_limit))
        return min(spent, key=lambda pair: pair[0])[1] if spent else None

    def _note_rate_limit(self, endpoint: str, login: str, rate_limit: RateLimit) -> None:
        self.rate_limits[endpoint] = rate_limit
        key = (login, endpoint)
        self._login_limits.pop(key, None)
        self._login_limits[key] = rate_limit
        while len(self._login_limits) > MAX_LOGIN_STATES:
            self._login_limits.popitem(last=False)

    async def _token_for(self, endpoint: str, tried: set[str]) -> tuple[str, str]:
        """A login to call `endpoint` with and its token: the first the pool offers, not tried yet, whose
        windows aren't spent. When every one is spent, a RateLimitedError until the first frees up."""
        if not self._pooled:
            return ONE_LOGIN, await self._tokens.access_token()
        now = time.time()
        candidates = [login for login in self._tokens.logins() if login not in tried]
        spent = {login: w for login in candidates if (w := self._blocked(endpoint, login, now)) is not None}
        for login in candidates:
            if login in spent:
                continue
            try:
                return login, await self._tokens.login_token(login)
            except UnauthorizedError:
                tried.add(login)
        if spent:
            first = min(spent, key=lambda login: spent[login].reset_at)
            window = spent[first]
            raise RateLimitedError(
                f"Every login {endpoint} could be called with has spent its rate limit "
                f"({window.name} window); the first frees up at {window.reset_at:.0f}.",
                endpoint=endpoint,
                rate_limit=self.login_rate_limit(endpoint, first),
            )
        raise UnauthorizedError(f"No login that may call {endpoint} can be used.", endpoint=endpoint)

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
        tried: set[str] = set()
        login, token = await self._token_for(endpoint, tried)
        response = await self._send(method, url, endpoint, login, token, params, json, files, data)
        if response.status_code == 401:
            retry = await self._after_unauthorized(endpoint, login, token, tried)
            if retry is not None:
                login, token = retry
                response = await self._send(method, url, endpoint, login, token, params, json, files, data)
        # A pool's login whose own window ran out: the call goes on with the next one, each tried once.
        # An app window, or a 429 that names none, is the same for every login: no point in trying others.
        while response.status_code == 429 and self._pooled:
            window = self._blocked(endpoint, login, time.time())
            if window is None or window.per_app:
                break
            tried.add(login)
            try:
                login, token = await self._token_for(endpoint, tried)
            except (RateLimitedError, UnauthorizedError):
                break  # X's own 429 says it best
            response = await self._send(method, url, endpoint, login, token, params, json, files, data)
        body = self._parse(response, endpoint)
        if self._meter is not None:
            await self._meter(method, path_template, path_params or {}, body)
        return body

    async def _after_unauthorized(
        self, endpoint: str, login: str, token: str, tried: set[str]
    ) -> tuple[str, str] | None:
        """X said 401 to `token`: the one retry (a refreshed token; with a pool, another login if that one
        is dead), or None. Never more, so a revoked login can't loop."""
        if not self._pooled:
            fresh = await self._tokens.refresh_after_unauthorized(token)
            return (login, fresh) if fresh is not None and fresh != token else None
        fresh = await self._tokens.refresh_login(login, token)
        if fresh is not None and fresh != token:
            return login, fresh
        tried.add(login)
        try:
            return await self._token_for(endpoint, tried)
        except (RateLimitedError, UnauthorizedError):
            return None  # X's 401 says it best

    async def _send(
        self,
        method: str,
        url: str,
        endpoint: str,
        login: str,
        token: str,
        params: Mapping[str, str | int] | None,
        json: Any,
        files: Mapping[str, Any] | None,
        data: Mapping[str, str] | None,
    ) -> httpx.Response:
        try:
            response = await self._client().request(
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
            self._note_rate_limit(endpoint, login, rate_limit)
        logger.debug("%s -> %s", endpoint, response.status_code)
        return response

    def _note_clock(self, date: str | None) -> None:
        if not date or date == self._clock_date:
            return
        self._clock_date = date
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
