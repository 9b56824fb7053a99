"""Tool results: structured success, and one actionable message per XError family."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

from mcp_types import CallToolResult, TextContent
from pydantic import BaseModel

from xcourier.tools.errors import (
    CLIENT_NOT_ENROLLED,
    DM_NOT_ALLOWED,
    DUPLICATE_CONTENT,
    ForbiddenError,
    InvalidInputError,
    MissingScopeError,
    NotFoundError,
    OutcomeUnknownError,
    RateLimitedError,
    ServerError,
    TransportError,
    UnauthorizedError,
    UsageCappedError,
    UserNotFoundError,
    XError,
)

SANDBOX_NOTE = (
    "[sandbox] This server is connected to the xcourier sandbox, an offline X emulator: nothing reaches x.com."
)


def success(result: BaseModel, summary: str, *, on_sandbox: bool) -> CallToolResult:
    structured = result.model_dump(mode="json")
    lines = [summary]
    if on_sandbox:
        lines.append(SANDBOX_NOTE)
    lines.append(json.dumps(structured, ensure_ascii=False))
    return CallToolResult(
        content=[TextContent(type="text", text="\n".join(lines))],
        structured_content=structured,
    )


def dry_run(tool: str, plan: dict[str, object], *, on_sandbox: bool) -> CallToolResult:
    """--dry-run: everything was checked; this is what would have been sent to X."""
    text = f"DRY RUN: {tool} was validated but not sent (the server runs with --dry-run). It would send:\n"
    text += json.dumps(plan, ensure_ascii=False, indent=2)
    if on_sandbox:
        text += "\n" + SANDBOX_NOTE
    # Marked as an error so no client mistakes it for a done action (and there is no post id to return).
    return CallToolResult(content=[TextContent(type="text", text=text)], is_error=True)


def failure(exc: XError, *, tool: str, writes: bool, on_sandbox: bool) -> CallToolResult:
    text = f"{tool} failed: {explain(exc, writes=writes, on_sandbox=on_sandbox)}"
    if on_sandbox:
        text += "\n" + SANDBOX_NOTE
    return CallToolResult(content=[TextContent(type="text", text=text)], is_error=True)


def _clock(epoch: float) -> str:
    minutes = max(0, round((epoch - time.time()) / 60))
    at = datetime.fromtimestamp(epoch, tz=UTC).strftime("%H:%M UTC")
    return f"{at} (in about {minutes} min)" if minutes else f"{at} (in under a minute)"


def explain(exc: XError, *, writes: bool, on_sandbox: bool) -> str:
    """What happened and what to do, in one or two sentences."""
    if isinstance(exc, InvalidInputError):
        if exc.status is None:
            return exc.message
        return f"X rejected the request as invalid: {exc.detail}. Fix the input and call again."
    if isinstance(exc, RateLimitedError):
        when = f"retry after {_clock(exc.reset_at)}" if exc.reset_at else "wait 15 minutes before retrying"
        return f"X's rate limit for this action is used up for now; {when}. Calling sooner fails the same way."
    if isinstance(exc, UsageCappedError):
        return (
            "The X app has reached its plan's usage cap, so X refuses calls until the cap resets. "
            "Check usage in the X developer console, or wait for the next billing period."
        )
    if isinstance(exc, UnauthorizedError):
        if exc.status is None:  # the token manager already said what happened
            return exc.message
        if on_sandbox:
            return "The sandbox rejected the access token. Restart the server."
        return (
            "X rejected the login (the access token expired or was revoked). Run `xcourier auth login` to log "
            "in again; if you use XCOURIER_ACCESS_TOKEN instead, set a fresh token and restart the server."
        )
    if isinstance(exc, MissingScopeError):
        scopes = " ".join(exc.scopes)
        return (
            f"The login lacks the OAuth scope(s) {scopes} this action needs. Log in again granting them: "
            f"`xcourier auth login --scopes '... {scopes}'`."
        )
    if isinstance(exc, ForbiddenError):
        if exc.reason == DUPLICATE_CONTENT:
            return (
                "X refused a duplicate: this account already has a post with exactly this text, so that post "
                "already exists. Don't retry; change the text to post something new."
            )
        if exc.reason == CLIENT_NOT_ENROLLED:
            return (
                "The X app is not allowed to use this endpoint on its current plan or access level "
                f"(X said: {exc.detail}). Attach the app to a project with the needed access in the X "
                "developer console."
            )
        if exc.reason == DM_NOT_ALLOWED:
            return exc.message
        return (
            f"X refused the action: {exc.detail}. Retrying won't help; check the post, the account's "
            "settings and that the app has 'Read and write and Direct message' permissions."
        )
    if isinstance(exc, NotFoundError):
        if isinstance(exc, UserNotFoundError):
            return exc.message
        return f"X found nothing there: {exc.detail}. Check the id; the post may have been deleted."
    if isinstance(exc, ServerError):
        return f"X had a server error ({exc.status}). Nothing suggests the input is wrong; try again shortly."
    if isinstance(exc, OutcomeUnknownError):
        return exc.message
    if isinstance(exc, TransportError):
        if writes:
            return (
                f"The request to X did not complete ({exc.detail}), so it may or may not have taken effect. "
                "Check the account before retrying, so nothing is done twice."
            )
        return f"Could not reach X ({exc.detail}). Check the network and try again."
    return exc.message
