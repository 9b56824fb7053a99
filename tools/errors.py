"""Every error the X side raises, grouped by what the caller can do about it.

One base class carries what X said (status, problem type, title, detail) and the
rate-limit state of the endpoint; the families below are what the MCP layer maps to
one actionable message each. `error_from_response` is the only code that reads raw
error JSON from X.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class RateLimit:
    """X's x-rate-limit-* headers for one endpoint, as of one response."""

    limit: int
    remaining: int
    reset_at: float  # epoch seconds

    @classmethod
    def from_headers(cls, headers: httpx.Headers) -> RateLimit | None:
        try:
            return cls(
                limit=int(headers["x-rate-limit-limit"]),
                remaining=int(headers["x-rate-limit-remaining"]),
                reset_at=float(headers["x-rate-limit-reset"]),
            )
        except (KeyError, ValueError):
            return None


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
    def reset_at(self) -> float | None:
        return self.rate_limit.reset_at if self.rate_limit else None


class UsageCappedError(XError):
    """The app's plan usage cap is reached (402, or 429 usage-capped)."""


# Log in again.
class UnauthorizedError(XError):
    """The access token is missing, expired or revoked (401)."""


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
    """The request did not complete: connection refused, reset, timed out."""


class OutcomeUnknownError(TransportError):
    """A write was sent, its answer was lost, and X shows no sign of it: it may or may not exist."""


DUPLICATE_CONTENT = "duplicate-content"
CLIENT_NOT_ENROLLED = "client-not-enrolled"
DM_NOT_ALLOWED = "dm-not-allowed"

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


def _forbidden_reason(problems: list[dict[str, Any]]) -> str | None:
    for problem in problems:
        text = " ".join(str(problem.get(k, "")) for k in ("detail", "message", "reason", "type")).lower()
        if "duplicate" in text:
            return DUPLICATE_CONTENT
        if "client-not-enrolled" in text or "not enrolled" in text or "appropriate level" in text:
            return CLIENT_NOT_ENROLLED
        if "message" in text and ("cannot send" in text or "not allowed to send" in text):
            return DM_NOT_ALLOWED
        if problem.get("code") in (349, 150):  # legacy "cannot send messages to this user"
            return DM_NOT_ALLOWED
    return None


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
    problem_type = common["problem_type"]
    message = f"X answered {status} on {endpoint}: {detail}"
    usage_capped = "usage-capped" in (problem_type or "") or "usagecap" in detail.replace(" ", "").lower()
    if status == 402 or (status == 429 and usage_capped):
        return UsageCappedError(message, **common)
    if status == 429 or any(p.get("code") == 88 for p in problems):
        return RateLimitedError(message, **common)
    if status == 401:
        return UnauthorizedError(message, **common)
    if status == 403:
        return ForbiddenError(message, reason=_forbidden_reason(problems), **common)
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
        return ForbiddenError(message, reason=_forbidden_reason(problems), **common)
    return InvalidInputError(message, **common)


def transport_error(exc: httpx.HTTPError, endpoint: str) -> TransportError:
    """Map httpx's transport failures; the exception text never includes headers or tokens."""
    kind = type(exc).__name__
    return TransportError(f"Could not complete {endpoint}: {kind}", endpoint=endpoint, detail=kind)


def seconds_until(epoch: float | None, now: float | None = None) -> float | None:
    if epoch is None:
        return None
    return max(0.0, epoch - (time.time() if now is None else now))
