"""Tool results: structured success, and one actionable message per XError family."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

from mcp_types import CallToolResult, ResourceLink, TextContent
from pydantic import BaseModel

from xcourier.tools.errors import (
    CASHTAG_LIMIT,
    CLIENT_NOT_ENROLLED,
    DM_NOT_ALLOWED,
    DUPLICATE_CONTENT,
    LIKES_NEED_ENTERPRISE,
    QUOTES_NEED_ENTERPRISE,
    REPLY_NOT_SUMMONED,
    REPLY_TARGET_GONE,
    UNLIKE_ENDPOINT,
    AnswerUnreadableError,
    AppOnlyTokenError,
    CreditsDepletedError,
    ForbiddenError,
    InvalidInputError,
    MissingScopeError,
    NotFoundError,
    NotSentError,
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


def read_success(result: BaseModel, summary: str, posts: list[tuple[str, str]], *, on_sandbox: bool) -> CallToolResult:
    """A read's result: like `success`, plus one MCP resource_link per post (x://posts/{id}, with the
    author's handle for a name) so a client can open each post; the text says whose words they are."""
    answer = success(result, summary, on_sandbox=on_sandbox)
    links = [
        ResourceLink(
            type="resource_link",
            uri=f"x://posts/{post_id}",
            name=f"post {post_id}" + (f" by @{author}" if author else ""),
            mime_type="application/json",
        )
        for post_id, author in posts
    ]
    return CallToolResult(content=[*answer.content, *links], structured_content=answer.structured_content)


def dry_run(tool: str, plan: dict[str, object], *, on_sandbox: bool) -> CallToolResult:
    """--dry-run: everything was checked; this is what would have been sent to X."""
    text = f"DRY RUN: {tool} was validated but not sent (the server runs with --dry-run). It would send:\n"
    text += json.dumps(plan, ensure_ascii=False, indent=2)
    if on_sandbox:
        text += "\n" + SANDBOX_NOTE
    # Marked as an error so no client mistakes it for a done action (and there is no post id to return).
    return CallToolResult(content=[TextContent(type="text", text=text)], is_error=True)


def failure(exc: XError, *, tool: str, writes: bool, on_sandbox: bool, sent: bool = True) -> CallToolResult:
    """A failed call as the agent reads it. `sent`: the failing request was the write itself, not a
    step before it (a user lookup, a media upload), so a lost or unreadable answer concerns the write."""
    text = f"{tool} failed: {explain(exc, writes=writes, on_sandbox=on_sandbox, sent=sent)}"
    if on_sandbox:
        text += "\n" + SANDBOX_NOTE
    return CallToolResult(content=[TextContent(type="text", text=text)], is_error=True)


def _clock(epoch: float) -> str:
    seconds = max(0.0, epoch - time.time())
    minutes = round(seconds / 60)
    moment = datetime.fromtimestamp(epoch, tz=UTC)
    if minutes >= 90:  # a 24-hour window: the day matters, and hours read better than minutes
        return f"{moment.strftime('%Y-%m-%d %H:%M UTC')} (in about {round(seconds / 3600)} h)"
    at = moment.strftime("%H:%M UTC")
    return f"{at} (in about {minutes} min)" if minutes else f"{at} (in under a minute)"


def _clause(text: str | None) -> str:
    """X's words, to be followed by more of the sentence: without their own full stop."""
    return (text or "no detail given").strip().rstrip(".")


def _sentence(text: str | None) -> str:
    """X's words as a sentence of their own: ending in exactly one full stop (or ! or ?)."""
    clause = (text or "no detail given").strip()
    return clause if clause.endswith((".", "!", "?")) else clause + "."


def explain(exc: XError, *, writes: bool, on_sandbox: bool, sent: bool = True) -> str:
    """What happened and what to do, in one or two sentences."""
    if isinstance(exc, InvalidInputError):
        if exc.status is None:
            return exc.message
        return f"X rejected the request as invalid: {_clause(exc.detail)}. Fix the input and call again."
    if isinstance(exc, RateLimitedError):
        return _rate_limited(exc)
    if isinstance(exc, CreditsDepletedError):
        # docs.x.com, x-api/getting-started/pricing ("Credit balance", "Auto-recharge"): requests are
        # blocked until credits are added; auto-recharge tops up below a threshold but "does not run
        # while your account balance is zero or negative. Add credits manually to resume".
        return (
            f"X refused the call because the X app's pay-per-use credits are used up (HTTP {exc.status}, "
            "credits-depleted), so nothing was done. Add credits in the X developer console (console.x.com), "
            "then call again. To keep it from happening, turn on auto-recharge there; it does not run while the "
            "balance is zero or below, so add credits by hand first."
        )
    if isinstance(exc, UsageCappedError):
        # docs.x.com, x-api/getting-started/pricing ("Spending limits": requests are blocked until the
        # next billing cycle) and x-api/fundamentals/post-cap (pay-per-use: 3 million post reads a month).
        return (
            f"X refused the call because the X app reached a usage cap (X said: {_clause(exc.detail)}), so nothing "
            "was done. It is either the spending limit set in the X developer console (raise it there, or wait "
            "for the next billing cycle) or the plan's monthly cap (3 million post reads on pay-per-use). Check "
            "usage in the X developer console."
        )
    if isinstance(exc, AppOnlyTokenError):
        return (
            "X refused the token: it is an app-only token (an OAuth 2.0 bearer token for the app), and this "
            "action must be done as a user. Run `xcourier auth login` to log in as the account, or set "
            "XCOURIER_ACCESS_TOKEN to an OAuth 2.0 user-context access token and restart the server."
        )
    if isinstance(exc, UnauthorizedError):
        if exc.status is None:  # the token manager already said what happened
            return exc.message
        if on_sandbox:
            return "The sandbox rejected the access token. Restart the server."
        return (
            "X rejected the login (the access token expired or was revoked). Run `xcourier auth login` to log in "
            "again; if you use XCOURIER_ACCESS_TOKEN instead, set a fresh token and restart the server."
        )
    if isinstance(exc, MissingScopeError):
        scopes = " ".join(exc.scopes)
        return (
            f"The login lacks the OAuth scope(s) {scopes} this action needs. Log in again granting them: "
            f"`xcourier auth login --scopes '... {scopes}'`."
        )
    if isinstance(exc, ForbiddenError):
        return _forbidden(exc)
    if isinstance(exc, NotFoundError):
        if isinstance(exc, UserNotFoundError):
            said = f" X said: {_sentence(exc.detail)}" if exc.detail and exc.detail not in exc.message else ""
            return _sentence(exc.message) + said
        return f"X found nothing there: {_clause(exc.detail)}. Check the id; the post may have been deleted."
    if isinstance(exc, ServerError):
        return f"X had a server error ({exc.status}). Nothing suggests the input is wrong; try again shortly."
    if isinstance(exc, NotSentError):
        return _not_sent(exc, on_sandbox)
    if isinstance(exc, AnswerUnreadableError):
        return _unreadable(exc, writes=writes, sent=sent)
    if isinstance(exc, OutcomeUnknownError):
        return exc.message
    if isinstance(exc, TransportError):
        if writes and sent:
            return (
                f"The request was sent to X but its answer was lost ({exc.detail}), so it may or may not have taken "
                "effect. Check the account before retrying, so nothing is done twice."
            )
        if writes:
            return (
                f"A step before the action ({exc.endpoint}) did not complete ({exc.detail}), so the action itself was "
                "never sent and nothing was changed on the account. Calling again is safe."
            )
        return f"The request to X did not complete ({exc.detail}). Try again; check the network if it keeps happening."
    return exc.message


def _rate_limited(exc: RateLimitedError) -> str:
    window = exc.window
    if exc.reset_at is None:
        return (
            "X's rate limit for this action is used up for now; wait 15 minutes before retrying. Calling sooner "
            "fails the same way."
        )
    if window is not None and window.name != "15-minute":
        return (
            f"X's {window.name} rate limit for this action ({window.limit} calls per 24 hours) is used up; retry "
            f"after {_clock(exc.reset_at)}. Calling sooner fails the same way."
        )
    return (
        f"X's rate limit for this action is used up for now; retry after {_clock(exc.reset_at)}. Calling sooner "
        "fails the same way."
    )


def _forbidden(exc: ForbiddenError) -> str:
    if exc.reason == DUPLICATE_CONTENT:
        return (
            "X refused a duplicate: this account already has a post with exactly this text, so that post "
            "already exists. Don't retry; change the text to post something new."
        )
    if exc.reason == LIKES_NEED_ENTERPRISE:
        # X's changelog, 2026-04-20 (DESIGN.md, "X in 2026"). The shape of X's refusal is inferred:
        # see tools/errors.py, LIKES_NEED_ENTERPRISE.
        what = "undoing of the like" if exc.endpoint == UNLIKE_ENDPOINT else "like"
        return (
            f"X refused the {what}: since 2026-04-20 X offers likes through its API only on Enterprise plans, not on "
            "the self-serve plans (pay-per-use, Basic, Pro). Liking needs an Enterprise plan; retrying won't help. "
            f"X said: {_sentence(exc.detail)}"
        )
    if exc.reason == REPLY_NOT_SUMMONED:
        # xdevplatform/docs x-api/posts/manage-tweets/integrate.mdx, "Post creation restrictions (self-serve)".
        return (
            "X refused the reply: on the self-serve plans (pay-per-use, Basic, Pro) a reply through the API is "
            "allowed only when the author of the post replied to summoned this account, by @mentioning it or "
            "quoting one of its posts; this post's author did not. Retrying won't help: post without reply_to "
            "(mention the author instead), or reply from X itself. Enterprise plans are not limited. "
            f"X said: {_sentence(exc.detail)}"
        )
    if exc.reason == REPLY_TARGET_GONE:
        return (
            "X refused the reply: the post replied to is deleted, or not visible to this account. Check the "
            f"reply_to id. X said: {_sentence(exc.detail)}"
        )
    if exc.reason == QUOTES_NEED_ENTERPRISE:
        # X's changelog, 2026-04-16 (effective 2026-04-20): quote posts via the API removed from self-serve plans.
        return (
            "X refused the quote post: since 2026-04-20 X offers quote posts through its API only on Enterprise "
            "plans, not on the self-serve plans (pay-per-use, Basic, Pro). Retrying won't help; post the post's "
            f"link in the text instead of `quote` (X shows it as a link, not a quote). X said: {_sentence(exc.detail)}"
        )
    if exc.reason == CASHTAG_LIMIT:
        # manage-tweets/integrate.mdx: "Requests that include more than 1 cashtag will be rejected" (self-serve).
        return (
            "X refused the post: on the self-serve plans a post made through the API may hold at most one cashtag "
            "($TICKER). Keep one cashtag and write the others without the $, then call again. "
            f"X said: {_sentence(exc.detail)}"
        )
    if exc.reason == CLIENT_NOT_ENROLLED:
        return (
            "The X app is not allowed to use this endpoint on its current plan or access level "
            f"(X said: {_clause(exc.detail)}). Attach the app to a project with the needed access in the X "
            "developer console."
        )
    if exc.reason == DM_NOT_ALLOWED:
        return exc.message
    return (
        f"X refused the action: {_clause(exc.detail)}. Retrying won't help; check the post, the account's "
        "settings and that the app has 'Read and write and Direct message' permissions."
    )


def _not_sent(exc: NotSentError, on_sandbox: bool) -> str:
    where = exc.base_url or "its address"
    if on_sandbox:
        return (
            f"The sandbox could not be reached at {where} ({exc.reason}). Nothing was sent, so nothing happened. "
            "Restart the server."
        )
    return (
        f"X could not be reached at {where} ({exc.reason}). Nothing was sent to X, so nothing happened on the "
        f"account and calling again is safe. Check the network connection, and that --api-base-url (or "
        f"XCOURIER_API_BASE_URL) is X's API address, https://api.x.com unless you use a proxy; it is now {where}."
    )


def _unreadable(exc: AnswerUnreadableError, *, writes: bool, sent: bool) -> str:
    if writes and sent:
        return (
            f"{_sentence(exc.message)} X accepted the call, so it is done on the account (and billed); only its "
            "result could not be read. Don't repeat this call: it would be done twice. Look at the account for "
            "the result."
        )
    if writes:
        return (
            f"{_sentence(exc.message)} That was a step before the action, so the action itself was not sent and "
            "nothing was changed on the account. Calling again is safe."
        )
    return f"{_sentence(exc.message)} Try again; if it keeps happening, X's answers have changed shape."


def thread_stopped(
    *,
    made_ids: list[str],
    total: int,
    stopped_at: int,
    error: XError | None,
    refusal: str | None,
    on_sandbox: bool,
) -> CallToolResult:
    """createThread stopped at post `stopped_at` (0-based): what exists, and the one call that finishes it.

    An error result, so no agent takes half a thread for a whole one; the posts made are listed (in
    the text and as JSON) so nothing is posted twice.
    """
    number = stopped_at + 1
    if refusal is not None:
        why = f"xcourier refused it: {refusal}"
    elif error is not None:
        why = explain(error, writes=True, on_sandbox=on_sandbox, sent=error.endpoint == "POST /2/tweets")
    else:
        why = "no reason recorded"
    lines = [f"createThread stopped at post {number} of {total}: {why}"]
    if made_ids:
        which = "post 1" if len(made_ids) == 1 else f"posts 1-{len(made_ids)}"
        lines.append(f"Created before it, in order: {', '.join(made_ids)} ({which}); they stay.")
    else:
        lines.append("No post of the thread was created.")
    unknown = error is not None and isinstance(error, TransportError) and error.endpoint == "POST /2/tweets"
    rest = f"posts[{stopped_at}:] of this call ({total - stopped_at} post(s), starting with post {number})"
    after = made_ids[-1] if made_ids else None
    if unknown:
        lines.append(
            f"Post {number} may or may not exist: look at the account first. If it is there, call createThread "
            f"with continue_from=<its id> and posts[{number}:] of this call; if not, call createThread with "
            + (f'continue_from="{after}" and ' if after else "")
            + f"{rest}."
        )
    else:
        lines.append(
            "To finish the thread without repeating a post, call createThread with "
            + (f'continue_from="{after}" and ' if after else "the same continue_from (if any) and ")
            + f"posts = {rest}."
        )
    lines.append(
        json.dumps(
            {"created": made_ids, "stopped_at_post": number, "continue_from": after, "remaining_from_index": stopped_at}
        )
    )
    if on_sandbox:
        lines.append(SANDBOX_NOTE)
    return CallToolResult(content=[TextContent(type="text", text="\n".join(lines))], is_error=True)
