"""Every error the X side raises, grouped by what the caller can do about it.

One base class carries what X said (status, problem type, title, detail) and the
rate-limit state of the endpoint; the families below are what the MCP layer maps to
one actionable message each. `error_from_response` is the only code that reads raw
error JSON from X.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx


@dataclass(frozen=True)
class Window:
    """One of X's rate-limit windows for an endpoint, as of one response."""

    name: str  # "15-minute", "24-hour per-user" or "24-hour per-app": how messages name it
    limit: int
    remaining: int
    reset_at: float  # epoch seconds

    def spent(self, now: float) -> bool:
        return self.remaining <= 0 and self.reset_at > now

    @property
    def per_app(self) -> bool:
        """Counted for the whole X app, every login together; the others count per login (user)."""
        return self.name.endswith("per-app")


# X's headers per window. The 15-minute ones are documented (docs.x.com, x-api/fundamentals/
# rate-limits: x-rate-limit-limit / -remaining / -reset; that page also says windows are "usually
# 15 minutes or 24 hours"). The 24-hour ones are not named on docs.x.com (xdevplatform/docs at
# 28713281, 2026-08, nor its history): the names are the ones X's live API sends beside them, e.g.
# on POST /2/tweets (10,000/24 h per app) and likes (1,000/24 h per user), as third-party clients
# read them (x-api-sdk-ts's rate-limit.js reads x-user-limit-24hour-*).
_WINDOW_HEADERS = (
    ("15-minute", "x-rate-limit"),
    ("24-hour per-user", "x-user-limit-24hour"),
    ("24-hour per-app", "x-app-limit-24hour"),
)


_LIMIT_PREFIXES = tuple(f"{prefix}-" for _, prefix in _WINDOW_HEADERS)


def _window(name: str, prefix: str, headers: Mapping[str, str]) -> Window | None:
    try:
        return Window(
            name=name,
            limit=int(headers[f"{prefix}-limit"]),
            remaining=int(headers[f"{prefix}-remaining"]),
            reset_at=float(headers[f"{prefix}-reset"]),
        )
    except (KeyError, ValueError):
        return None


@dataclass(frozen=True)
class RateLimit:
    """X's rate-limit headers for one endpoint, as of one response.

    `limit`, `remaining` and `reset_at` are the 15-minute window (x-rate-limit-*); `windows` holds
    every window X reported, the 24-hour ones included. When X sent only a 24-hour window, the
    top-level fields are the tightest one, so readers of the three fields still see a real window.
    """

    limit: int
    remaining: int
    reset_at: float  # epoch seconds
    windows: tuple[Window, ...] = ()

    @classmethod
    def from_headers(cls, headers: httpx.Headers) -> RateLimit | None:
        # One pass over the headers: httpx.Headers looks each name up by scanning them all. A header sent
        # twice counts by its last value (httpx's lookup joined both with ", ", which no window could read).
        limits = {name: value for name, value in headers.multi_items() if name.startswith(_LIMIT_PREFIXES)}
        if not limits:
            return None
        windows = tuple(w for name, prefix in _WINDOW_HEADERS if (w := _window(name, prefix, limits)) is not None)
        return cls.of(windows)

    @classmethod
    def of(cls, windows: tuple[Window, ...]) -> RateLimit | None:
        """The state these windows make up (15-minute first), or None without any."""
        if not windows:
            return None
        main = windows[0] if windows[0].name == "15-minute" else min(windows, key=lambda w: w.remaining)
        return cls(limit=main.limit, remaining=main.remaining, reset_at=main.reset_at, windows=windows)

    def spent_window(self, now: float | None = None) -> Window | None:
        """The window that blocks calls now (the one that resets last, if several), or None."""
        at = time.time() if now is None else now
        spent = [w for w in self.windows if w.spent(at)]
        return max(spent, key=lambda w: w.reset_at) if spent else None


class XError(Exception):
    """Base class: X refused the call, or it could not be made."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        problem_type: str | None = None,
        title: str | None = None,
        detail: str | None = None,
        endpoint: str | None = None,
        rate_limit: RateLimit | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.problem_type = problem_type
        self.title = title
        self.detail = detail
        self.endpoint = endpoint
        self.rate_limit = rate_limit

    def details(self) -> dict[str, Any]:
        """What X said, to carry over when re-raising with a clearer message."""
        return {
            "status": self.status,
            "problem_type": self.problem_type,
            "title": self.title,
            "detail": self.detail,
            "endpoint": self.endpoint,
            "rate_limit": self.rate_limit,
        }


# Fix the input.
class InvalidInputError(XError):
    """The request was malformed; raised locally before sending, or by X with a 400."""


# Wait until a time.
class RateLimitedError(XError):
    """The endpoint's rate-limit window is spent (429)."""

    @property
    def window(self) -> Window | None:
        """The window that ran out: a 24-hour one when it did, else the 15-minute one."""
        if self.rate_limit is None:
            return None
        # A 429 means some window is spent even if its reset has just passed on this machine's clock.
        spent = [w for w in self.rate_limit.windows if w.remaining <= 0]
        if spent:
            return max(spent, key=lambda w: w.reset_at)
        return self.rate_limit.windows[0] if self.rate_limit.windows else None

    @property
    def reset_at(self) -> float | None:
        window = self.window
        if window is not None:
            return window.reset_at
        return self.rate_limit.reset_at if self.rate_limit else None


class UsageCappedError(XError):
    """The app reached a usage cap: a spending limit or the plan's monthly cap (429 usage-capped)."""


class CreditsDepletedError(UsageCappedError):
    """Pay-per-use: the app's prepaid credits are used up (402 credits-depleted). Add credits."""


# Log in again.
class UnauthorizedError(XError):
    """The access token is missing, expired or revoked (401)."""


class AppOnlyTokenError(UnauthorizedError):
    """The token is app-only (OAuth 2.0 bearer): the endpoint needs a user-context token (403)."""


# Ask for a scope.
class MissingScopeError(XError):
    """The token lacks an OAuth scope the endpoint needs."""

    def __init__(self, message: str, *, scopes: tuple[str, ...] = (), **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.scopes = scopes


# Give up: retrying the same call will not help.
class ForbiddenError(XError):
    """X refused the action (403): duplicate content, plan restrictions, DM settings, ..."""

    def __init__(self, message: str, *, reason: str | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.reason = reason


class NotFoundError(XError):
    """The post or user does not exist (or is not visible to this account)."""


class UserNotFoundError(NotFoundError):
    """No user has this username."""


# Retry.
class ServerError(XError):
    """X failed (5xx); the same call may succeed later."""


class TransportError(XError):
    """The request was sent, or partly sent, and no answer came back: it may have taken effect."""


class NotSentError(XError):
    """X could not be reached (connection refused, DNS or TLS failure, connect or pool timeout):
    nothing was sent, so nothing happened on X and the call can simply be made again.

    Not a TransportError: code that treats a lost answer as "maybe done" must not catch this.
    """

    def __init__(self, message: str, *, base_url: str = "", reason: str = "", **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.base_url = base_url  # scheme, host, port and path only: never credentials
        self.reason = reason


class OutcomeUnknownError(TransportError):
    """A write was sent, its answer was lost, and X shows no sign of it: it may or may not exist."""


# Done: X accepted the call, so repeating it would do it twice.
class AnswerUnreadableError(XError):
    """X answered 2xx (it accepted the call) but the body could not be read.

    For a write, the action happened: it is done (and billed), only its result is unknown.
    """


DUPLICATE_CONTENT = "duplicate-content"
CLIENT_NOT_ENROLLED = "client-not-enrolled"
DM_NOT_ALLOWED = "dm-not-allowed"
# Since 2026-04-20 X offers likes through the API only on Enterprise plans (X's changelog; see
# ../shared/DESIGN.md, "X in 2026"). X has not documented how it refuses a like on a self-serve
# plan: this is inferred (most likely a 403 client-forbidden problem with reason
# client-not-enrolled), so any 403 on the likes endpoint that is not a duplicate or not-found is
# read as that refusal, and X's own words are kept in `detail`.
LIKES_NEED_ENTERPRISE = "likes-need-enterprise"
LIKES_ENDPOINT = "POST /2/users/{id}/likes"
# Undoing a like is read the same way: X's changelog removes "Likes" via the API, and does not say
# whether that covers DELETE; inferred that it does.
UNLIKE_ENDPOINT = "DELETE /2/users/{id}/likes/{tweet_id}"
_LIKES_ENDPOINTS = (LIKES_ENDPOINT, UNLIKE_ENDPOINT)
# X's 2026 rules for POST /2/tweets on self-serve plans (xdevplatform/docs
# x-api/posts/manage-tweets/integrate.mdx, "Post creation restrictions (self-serve)", and the
# changelog of 2026-02-23 and 2026-04-16): replies only when summoned, at most one cashtag, no quote
# posts. X documents the rules, not the wording of its refusals: each is recognised by the words
# developers quote from X's answers, and a quote refused as client-not-enrolled is read as this rule
# by tools/posts.py (it knows it sent one).
REPLY_NOT_SUMMONED = "reply-not-summoned"
REPLY_TARGET_GONE = "reply-target-gone"
QUOTES_NEED_ENTERPRISE = "quotes-need-enterprise"
CASHTAG_LIMIT = "cashtag-limit"

_PROBLEM_TYPES_NOT_FOUND = ("resource-not-found",)


def _problems(body: Any) -> list[dict[str, Any]]:
    """The problem objects in any of X's error shapes, top-level problem first."""
    if not isinstance(body, dict):
        return []
    problems: list[dict[str, Any]] = []
    if "title" in body or "detail" in body or "type" in body:
        problems.append(body)
    errors = body.get("errors")
    if isinstance(errors, list):
        problems.extend(e for e in errors if isinstance(e, dict))
    return problems


def _describe(problem: dict[str, Any]) -> str:
    for key in ("detail", "message", "title"):
        value = problem.get(key)
        if isinstance(value, str) and value:
            return value
    return "no detail given"


def _forbidden_reason(problems: list[dict[str, Any]], endpoint: str) -> str | None:
    for problem in problems:
        text = " ".join(str(problem.get(k, "")) for k in ("detail", "message", "reason", "type")).lower()
        if "duplicate" in text:
            return DUPLICATE_CONTENT
        if endpoint in _LIKES_ENDPOINTS and ("not-found" in text or "not found" in text or "could not find" in text):
            return None
        if endpoint in _LIKES_ENDPOINTS:
            return LIKES_NEED_ENTERPRISE
        if "cashtag" in text:
            return CASHTAG_LIMIT
        if "not been mentioned" in text or "reply to this conversation is not allowed" in text:
            return REPLY_NOT_SUMMONED
        if "reply to a tweet that is deleted" in text or "deleted or not visible" in text:
            return REPLY_TARGET_GONE
        if "quote" in text and ("not available" in text or "not-enrolled" in text or "not allowed" in text):
            return QUOTES_NEED_ENTERPRISE
        if "client-not-enrolled" in text or "not enrolled" in text or "appropriate level" in text:
            return CLIENT_NOT_ENROLLED
        if "message" in text and ("cannot send" in text or "not allowed to send" in text):
            return DM_NOT_ALLOWED
        if problem.get("code") in (349, 150):  # legacy "cannot send messages to this user"
            return DM_NOT_ALLOWED
    return LIKES_NEED_ENTERPRISE if endpoint in _LIKES_ENDPOINTS else None


def _app_only(problems: list[dict[str, Any]]) -> bool:
    """X's refusal of an app-only (bearer) token on a user-context endpoint.

    X's API Playground (xdevplatform/playground, internal/playground/auth.go) answers it as X does:
    403, type .../problems/unsupported-authentication, "Authenticating with OAuth 2.0
    Application-Only is forbidden for this endpoint. Supported authentication types are [OAuth 1.0a
    User Context, OAuth 2.0 User Context]."
    """
    for problem in problems:
        kind = str(problem.get("type", ""))
        text = " ".join(str(problem.get(k, "")) for k in ("detail", "message", "title")).lower()
        if kind.endswith("unsupported-authentication") or "application-only is forbidden" in text:
            return True
    return False


def _details(
    problem: dict[str, Any], status: int, detail: str, endpoint: str, rate_limit: RateLimit | None
) -> dict[str, Any]:
    def text(key: str) -> str | None:
        value = problem.get(key)
        return value if isinstance(value, str) else None

    return {
        "status": status,
        "problem_type": text("type"),
        "title": text("title"),
        "detail": detail,
        "endpoint": endpoint,
        "rate_limit": rate_limit,
    }


def error_from_response(response: httpx.Response, endpoint: str) -> XError:
    """Turn a non-2xx response from X into the matching XError."""
    status = response.status_code
    rate_limit = RateLimit.from_headers(response.headers)
    try:
        body = response.json()
    except ValueError:
        body = None
    problems = _problems(body)
    first = problems[0] if problems else {}
    # A top-level problem with a nested `errors` list says more in the nested entries.
    detail = _describe(problems[1]) if len(problems) > 1 and "errors" in first else _describe(first)
    if not problems:
        detail = response.reason_phrase or f"HTTP {status}"
    common = _details(first, status, detail, endpoint, rate_limit)
    message = f"X answered {status} on {endpoint}: {detail}"
    kinds = " ".join(str(p.get("type", "")) for p in problems)
    usage_capped = "usage-capped" in kinds or "usagecap" in detail.replace(" ", "").lower()
    # Pay-per-use out of credits: HTTP 402, problem type credits-depleted (X in 2026, DESIGN.md);
    # a spending limit or the monthly cap: 429 usage-capped (docs.x.com, x-api/fundamentals/
    # response-codes-and-errors lists .../usage-capped). A 402 that names neither is read as credits:
    # it is "Payment Required".
    if "credits-depleted" in kinds or (status == 402 and not usage_capped):
        return CreditsDepletedError(message, **common)
    if status in (402, 429) and usage_capped:
        return UsageCappedError(message, **common)
    if status == 429 or any(p.get("code") == 88 for p in problems):
        return RateLimitedError(message, **common)
    if status in (401, 403) and _app_only(problems):
        return AppOnlyTokenError(message, **common)
    if status == 401:
        return UnauthorizedError(message, **common)
    if status == 403:
        return ForbiddenError(message, reason=_forbidden_reason(problems, endpoint), **common)
    if status == 404:
        return NotFoundError(message, **common)
    if status >= 500:
        return ServerError(message, **common)
    return InvalidInputError(message, **common)


def error_from_partial(body: dict[str, Any], endpoint: str, status: int) -> XError | None:
    """A 2xx body without `data` but with `errors[]` is a failure (e.g. user not found)."""
    if "data" in body or not isinstance(body.get("errors"), list) or not body["errors"]:
        return None
    problems = _problems({"errors": body["errors"]})
    first = problems[0]
    detail = _describe(first)
    common = _details(first, status, detail, endpoint, None)
    problem_type = common["problem_type"]
    message = f"X reported an error on {endpoint}: {detail}"
    if problem_type and problem_type.rsplit("/", 1)[-1] in _PROBLEM_TYPES_NOT_FOUND:
        return NotFoundError(message, **common)
    if problem_type and problem_type.endswith(("not-authorized-for-resource", "client-forbidden")):
        return ForbiddenError(message, reason=_forbidden_reason(problems, endpoint), **common)
    return InvalidInputError(message, **common)


# httpx raises these before any byte of the request is written: the connection (TCP, DNS, TLS, a
# proxy's CONNECT) was never made, or no pooled connection came free. Anything later (WriteError,
# WriteTimeout: partly written; ReadError, ReadTimeout, RemoteProtocolError: written, answer lost)
# may have reached X.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.ProxyError, httpx.UnsupportedProtocol)


def _causes(exc: BaseException) -> list[BaseException]:
    """The exception and what it was raised from: httpx wraps the socket's own error (refused, DNS, TLS)."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain and len(chain) < 8:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _why_not_sent(exc: httpx.HTTPError) -> str:
    """A fixed phrase for why the connection failed: the socket's own text is not repeated."""
    if isinstance(exc, httpx.ConnectTimeout):
        return "connecting timed out"
    if isinstance(exc, httpx.PoolTimeout):
        return "no connection to X came free in time (too many calls at once)"
    if isinstance(exc, httpx.ProxyError):
        return "the proxy refused to connect"
    if isinstance(exc, httpx.UnsupportedProtocol):
        return "the address is not an http(s) URL"
    causes = _causes(exc)
    text = " ".join(str(cause) for cause in causes).lower()
    if any(isinstance(c, ConnectionRefusedError) for c in causes) or "refused" in text:
        return "the connection was refused"
    dns_words = ("name or service", "nodename", "servname", "name resolution", "getaddrinfo")
    if any(isinstance(c, socket.gaierror) for c in causes) or any(s in text for s in dns_words):
        return "the host name could not be resolved (DNS)"
    if any(isinstance(c, ssl.SSLError) for c in causes) or any(s in text for s in ("ssl", "tls", "certificate")):
        return "the TLS handshake failed (certificate or TLS settings)"
    if "unreachable" in text:
        return "the network is unreachable"
    return "the connection could not be made"


def public_address(url: str) -> str:
    """scheme://host[:port]/path of a URL: user info, query and fragment dropped (they may hold secrets)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"{parts.scheme}://{host}{port}{parts.path}" if parts.scheme else host


def transport_error(exc: httpx.HTTPError, endpoint: str, base_url: str = "") -> TransportError | NotSentError:
    """Map httpx's transport failures by where they happened; the text never includes headers or tokens."""
    kind = type(exc).__name__
    if isinstance(exc, _NOT_SENT):
        address = public_address(base_url)
        reason = _why_not_sent(exc)
        return NotSentError(
            f"X could not be reached at {address or 'its address'} ({reason}); {endpoint} was not sent.",
            endpoint=endpoint,
            detail=kind,
            base_url=address,
            reason=reason,
        )
    return TransportError(f"Could not complete {endpoint}: {kind}", endpoint=endpoint, detail=kind)


def seconds_until(epoch: float | None, now: float | None = None) -> float | None:
    if epoch is None:
        return None
    return max(0.0, epoch - (time.time() if now is None else now))
