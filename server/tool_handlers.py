"""The tools as MCP sees them: top-level parameters with the seed's names, typed results.

Each factory closes over the Runtime and returns the function MCPServer registers; its
signature is the tool's input schema and its `Annotated[CallToolResult, Model]` return is
the output schema. Every call goes through one pipeline (`_run`): scopes, the pace and
spend guards, the user's confirmation, dry-run, then X, and the audit trail records the
outcome of every write, refusals included.

No `from __future__ import annotations` here: the SDK reads these signatures at runtime, and
`Resolve(...)` markers refer to per-tool closures.
"""

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

from mcp.server.elicitation import AcceptedElicitation, ElicitationResult
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.resolve import Elicit, Resolve
from mcp_types import CallToolResult, TextContent
from pydantic import BaseModel, Field

from xcourier.tools import engagement, messages, posts, timeline, validation
from xcourier.tools.errors import AnswerUnreadableError, MissingScopeError, NotSentError, TransportError, XError
from xcourier.tools.media import MAX_DM_ATTACHMENTS, MAX_POST_IMAGES, ProgressCallback
from xcourier.tools.models import (
    CreatePostResult,
    DeletePostResult,
    FileEntry,
    LikePostResult,
    RepostPostResult,
    SendDirectMessageResult,
    UnlikePostResult,
    UnrepostPostResult,
)

from . import results
from .audit import has_url, metering

if TYPE_CHECKING:
    from .inventory import ToolSpec
    from .runtime import Runtime

Handler = Callable[..., Awaitable[CallToolResult]]

# Patterns are advertised for clients that validate early; the server checks them itself so
# a violation comes back as an actionable message rather than a schema dump.
_POST_ID_SCHEMA = {"pattern": "^[0-9]{1,19}$"}
_USERNAME_SCHEMA = {"pattern": "^@?[A-Za-z0-9_]{1,15}$"}


class Approval(BaseModel):
    approve: bool = Field(description="Allow xcourier to do this on your X account?")


@dataclass
class ToolCall:
    """One call of one tool: what to run, and what the audit and the guards need to know."""

    spec: "ToolSpec"
    action: Callable[[], Awaitable[BaseModel]]
    summary: Callable[[Any], str]
    cost: float = 0.0
    ids: dict[str, str] = field(default_factory=dict)
    text: str | None = None  # recorded in the audit (post text only)
    detail: str = ""
    uses_media: bool = False
    # What would be sent to X, for --dry-run (None for reads, which always run), and the
    # local checks that must pass first: everything but the call to X.
    plan: dict[str, Any] | None = None
    validate: Callable[[], Awaitable[object]] | None = None
    result_ids: Callable[[Any], dict[str, str]] = lambda _result: {}


def confirmation(runtime: "Runtime", spec: "ToolSpec") -> Callable[..., Awaitable[Any]]:
    """The resolver behind each write tool's hidden `approval` parameter.

    The SDK turns an `Elicit` into an elicitation/create request (2025-11-25) or an
    input_required round trip (2026-07-28), so one resolver serves both generations.
    """

    async def ask(ctx: Context) -> Elicit[Approval] | Approval | None:
        if not runtime.policy.needs_confirmation(spec):
            return Approval(approve=True)
        capabilities = ctx.client_capabilities
        if capabilities is None or capabilities.elicitation is None:
            return None  # can't ask: the pipeline refuses with the reason
        arguments = (ctx.request_context.params or {}).get("arguments") or {}
        shown = json.dumps({k: v for k, v in arguments.items() if k != "media"}, ensure_ascii=False)
        media = arguments.get("media") or []
        extra = f" with {len(media)} attachment(s)" if media else ""
        on_what = "the xcourier sandbox" if runtime.on_sandbox else f"X as @{runtime.account}"
        return Elicit(f"Allow {spec.name} {shown}{extra} on {on_what}?", Approval)

    return ask


def _missing_scopes(runtime: "Runtime", call: ToolCall) -> MissingScopeError | None:
    granted = runtime.granted_scopes()
    if granted is None:  # a bare access token: X will say if a scope is missing
        return None
    needed = call.spec.scopes + (call.spec.media_scopes if call.uses_media else ())
    missing = tuple(scope for scope in needed if scope not in granted)
    if not missing:
        return None
    return MissingScopeError(f"{call.spec.name} needs the scope(s) {' '.join(missing)}", scopes=missing)


def _refused(runtime: "Runtime", call: ToolCall, why: str) -> CallToolResult:
    text = f"{call.spec.name} refused: {why}"
    if runtime.on_sandbox:
        text += "\n" + results.SANDBOX_NOTE
    return CallToolResult(content=[TextContent(type="text", text=text)], is_error=True)


def _approval_refusal(approval: ElicitationResult[Approval] | None) -> str | None:
    if approval is None:
        return None
    if isinstance(approval, AcceptedElicitation):
        if approval.data is None:
            return (
                "the server asks the user to confirm this action (--confirm), but this client can't show a "
                "confirmation (it does not support MCP elicitation). Use a client that does, or restart the "
                "server without --confirm."
            )
        return None if approval.data.approve else "the user did not approve it."
    return f"the user {'declined' if approval.action == 'decline' else 'cancelled'} the confirmation."


async def _run(
    runtime: "Runtime", call: ToolCall, approval: ElicitationResult[Approval] | None = None
) -> CallToolResult:
    # Everything the call reads from X (lookups, uploads, pages) lands in one audit entry with the call's name.
    async with metering(call.spec.name):
        if not call.spec.writes:
            spent = await runtime.guards.read_refusal()
            return await _run_admitted(runtime, call, approval, spent.reason if spent else None)
        # A write holds its place under the pace and spend limits from the check until its outcome is
        # in the audit trail, so concurrent calls can't all pass the same check.
        async with runtime.guards.admitted(call.cost) as refusal:
            return await _run_admitted(runtime, call, approval, refusal)


async def _run_admitted(
    runtime: "Runtime", call: ToolCall, approval: ElicitationResult[Approval] | None, refusal: str | None
) -> CallToolResult:
    spec = call.spec
    writes = spec.writes

    async def audit(
        outcome: str, detail: str = "", ids: dict[str, str] | None = None, cost: float | None = None
    ) -> None:
        await runtime.audit.record(
            spec.name,
            outcome,
            cost=call.cost if cost is None else cost,
            ids={**call.ids, **(ids or {})},
            detail=detail or call.detail,
            text=call.text,
            write=writes,
        )

    missing = _missing_scopes(runtime, call)
    if missing is not None:
        if writes:
            await audit("refused", f"missing scope(s) {' '.join(missing.scopes)}")
        return results.failure(missing, tool=spec.name, writes=writes, on_sandbox=runtime.on_sandbox)
    refusal = refusal or _approval_refusal(approval)
    if refusal is not None:
        await audit("refused", refusal)
        return _refused(runtime, call, refusal)
    if runtime.policy.dry_run and call.plan is not None:
        try:
            if call.validate is not None:
                await call.validate()
        except XError as exc:
            await audit("refused", f"dry run: {exc.message}")
            return results.failure(exc, tool=spec.name, writes=writes, on_sandbox=runtime.on_sandbox)
        await audit("dry-run")
        return results.dry_run(spec.name, call.plan, on_sandbox=runtime.on_sandbox)
    try:
        result = await call.action()
    except XError as exc:
        sent = spec.endpoint is not None and exc.endpoint == spec.endpoint
        if writes or call.cost:
            outcome = _outcome(exc, writes=writes, sent=sent)
            if outcome == "ok":
                # X took the write and billed it: it counts against the pace and spend limits.
                unread = f"done, but X's answer could not be read: {exc.detail}" if exc.detail else exc.message
                await audit("ok", unread)
            else:
                await audit(outcome, exc.message)
        return results.failure(exc, tool=spec.name, writes=writes, on_sandbox=runtime.on_sandbox, sent=sent)
    if writes or call.cost:
        await audit("ok", ids=call.result_ids(result))
    return results.success(result, call.summary(result), on_sandbox=runtime.on_sandbox)


def _outcome(exc: XError, *, writes: bool, sent: bool) -> str:
    """The audit outcome of a failed call. `sent`: the failure was on the write request itself."""
    if isinstance(exc, AnswerUnreadableError) and writes and sent:
        return "ok"  # X answered 2xx: done, only its answer is unreadable
    if isinstance(exc, NotSentError):
        return "not-sent"
    if isinstance(exc, TransportError) and writes:
        return "unknown" if sent else "not-sent"
    return "error"


# Prices of X's pay-per-use plan (docs.x.com x-api/getting-started/pricing, 2026-08) that
# audit.DEFAULT_PRICES does not list yet; a key there (or in [pricing]) wins.
_MORE_PRICES: dict[str, float] = {
    "interaction_delete": 0.010,  # User Interaction: Delete (unlike, unrepost)
    "post_create_summoned": 0.010,  # a reply where the replied-to author summoned the account
}


def _price(runtime: "Runtime", key: str) -> float:
    return runtime.prices.get(key, _MORE_PRICES.get(key, 0.0))


async def _checked_id(value: str, field: str) -> str:
    return validation.post_id(value, field)


def _progress(ctx: Context) -> ProgressCallback:
    """Upload progress as MCP progress notifications (sent only if the client asked with a token)."""

    async def report(done: float, total: float, message: str) -> None:
        await ctx.report_progress(done, total, message)

    return report


def _created(result: CreatePostResult) -> str:
    if isinstance(result, posts.RecoveredPost):
        return (
            f"Created post {result.data.id}. X's answer was lost on the way back, so xcourier looked at the "
            "account and found the post: it exists once. Don't post it again."
        )
    return f"Created post {result.data.id}."


def create_post(runtime: "Runtime", spec: "ToolSpec") -> Handler:
    async def handler(
        ctx: Context,
        approval: Annotated[ElicitationResult[Approval], Resolve(confirmation(runtime, spec))],
        text: Annotated[
            str | None,
            Field(description="The text of the post: up to 280 weighted characters (links count 23, emoji 2)."),
        ] = None,
        media: Annotated[
            list[FileEntry] | None,
            Field(
                description=(
                    f"Images to attach: up to {MAX_POST_IMAGES} JPEG, PNG or WEBP images (5 MB each), or one GIF "
                    "(15 MB)."
                ),
                json_schema_extra={"maxItems": MAX_POST_IMAGES},
            ),
        ] = None,
    ) -> Annotated[CallToolResult, CreatePostResult]:
        call = ToolCall(
            spec,
            action=lambda: posts.create_post(
                runtime.client, runtime.media, text, media, progress=_progress(ctx), users=runtime.users
            ),
            summary=_created,
            cost=_price(runtime, "post_create_with_url" if has_url(text) else "post_create"),
            text=text,
            detail=f"{len(media or [])} attachment(s)" if media else "",
            uses_media=bool(media),
            plan={"POST /2/tweets": {"text": text, "media": f"{len(media or [])} attachment(s)" if media else None}},
            validate=lambda: posts.prepare_post(runtime.media, text, media),
            result_ids=lambda r: {"post_id": r.data.id},
        )
        return await _run(runtime, call, approval)

    return handler


def delete_post(runtime: "Runtime", spec: "ToolSpec") -> Handler:
    async def handler(
        approval: Annotated[ElicitationResult[Approval], Resolve(confirmation(runtime, spec))],
        id: Annotated[str, Field(description="The ID of the post to delete.", json_schema_extra=_POST_ID_SCHEMA)],
    ) -> Annotated[CallToolResult, DeletePostResult]:
        call = ToolCall(
            spec,
            action=lambda: posts.delete_post(runtime.client, id),
            summary=lambda r: f"Deleted post {id}." if r.data.deleted else f"X did not delete post {id}.",
            cost=_price(runtime, "delete"),
            ids={"post_id": str(id)},
            plan={"DELETE /2/tweets/{id}": {"id": id}},
            validate=lambda: _checked_id(id, "id"),
        )
        return await _run(runtime, call, approval)

    return handler


def like_post(runtime: "Runtime", spec: "ToolSpec") -> Handler:
    async def handler(
        approval: Annotated[ElicitationResult[Approval], Resolve(confirmation(runtime, spec))],
        tweet_id: Annotated[str, Field(description="The ID of the post to like.", json_schema_extra=_POST_ID_SCHEMA)],
    ) -> Annotated[CallToolResult, LikePostResult]:
        call = ToolCall(
            spec,
            action=lambda: engagement.like_post(runtime.client, runtime.users, tweet_id),
            summary=lambda r: f"Liked post {tweet_id}." if r.data.liked else f"X did not like post {tweet_id}.",
            cost=_price(runtime, "like"),
            ids={"post_id": str(tweet_id)},
            plan={"POST /2/users/{me}/likes": {"tweet_id": tweet_id}},
            validate=lambda: _checked_id(tweet_id, "tweet_id"),
        )
        return await _run(runtime, call, approval)

    return handler


def repost_post(runtime: "Runtime", spec: "ToolSpec") -> Handler:
    async def handler(
        approval: Annotated[ElicitationResult[Approval], Resolve(confirmation(runtime, spec))],
        tweet_id: Annotated[str, Field(description="The ID of the post to repost.", json_schema_extra=_POST_ID_SCHEMA)],
    ) -> Annotated[CallToolResult, RepostPostResult]:
        call = ToolCall(
            spec,
            action=lambda: engagement.repost_post(runtime.client, runtime.users, tweet_id),
            summary=lambda r: f"Reposted post {r.data.id}." if r.data.retweeted else f"X did not repost {tweet_id}.",
            cost=_price(runtime, "repost"),
            ids={"post_id": str(tweet_id)},
            plan={"POST /2/users/{me}/retweets": {"tweet_id": tweet_id}},
            validate=lambda: _checked_id(tweet_id, "tweet_id"),
        )
        return await _run(runtime, call, approval)

    return handler


def unlike_post(runtime: "Runtime", spec: "ToolSpec") -> Handler:
    async def handler(
        approval: Annotated[ElicitationResult[Approval], Resolve(confirmation(runtime, spec))],
        tweet_id: Annotated[
            str, Field(description="The ID of the post to stop liking.", json_schema_extra=_POST_ID_SCHEMA)
        ],
    ) -> Annotated[CallToolResult, UnlikePostResult]:
        call = ToolCall(
            spec,
            action=lambda: engagement.unlike_post(runtime.client, runtime.users, tweet_id),
            summary=lambda r: f"Post {tweet_id} is {'still' if r.data.liked else 'not'} liked.",
            cost=_price(runtime, "interaction_delete"),
            ids={"post_id": str(tweet_id)},
            plan={"DELETE /2/users/{me}/likes/{tweet_id}": {"tweet_id": tweet_id}},
            validate=lambda: _checked_id(tweet_id, "tweet_id"),
        )
        return await _run(runtime, call, approval)

    return handler


def unrepost_post(runtime: "Runtime", spec: "ToolSpec") -> Handler:
    async def handler(
        approval: Annotated[ElicitationResult[Approval], Resolve(confirmation(runtime, spec))],
        tweet_id: Annotated[
            str,
            Field(
                description="The ID of the post that was reposted (not the id of the repost).",
                json_schema_extra=_POST_ID_SCHEMA,
            ),
        ],
    ) -> Annotated[CallToolResult, UnrepostPostResult]:
        call = ToolCall(
            spec,
            action=lambda: engagement.unrepost_post(runtime.client, runtime.users, tweet_id),
            summary=lambda r: f"Post {tweet_id} is {'still' if r.data.retweeted else 'not'} reposted.",
            cost=_price(runtime, "interaction_delete"),
            ids={"post_id": str(tweet_id)},
            plan={"DELETE /2/users/{me}/retweets/{source_tweet_id}": {"source_tweet_id": tweet_id}},
            validate=lambda: _checked_id(tweet_id, "tweet_id"),
        )
        return await _run(runtime, call, approval)

    return handler


def send_direct_message(runtime: "Runtime", spec: "ToolSpec") -> Handler:
    async def handler(
        ctx: Context,
        approval: Annotated[ElicitationResult[Approval], Resolve(confirmation(runtime, spec))],
        username: Annotated[
            str,
            Field(
                description="The username of the recipient, with or without the @.",
                json_schema_extra=_USERNAME_SCHEMA,
            ),
        ],
        text: Annotated[str, Field(description="The text of the message.")],
        media: Annotated[
            list[FileEntry] | None,
            Field(
                description="One image or GIF to attach (X takes one attachment per message).",
                json_schema_extra={"maxItems": MAX_DM_ATTACHMENTS},
            ),
        ] = None,
    ) -> Annotated[CallToolResult, SendDirectMessageResult]:
        recipient = str(username).lstrip("@")
        call = ToolCall(
            spec,
            action=lambda: messages.send_direct_message(
                runtime.client, runtime.users, runtime.media, username, text, media, progress=_progress(ctx)
            ),
            summary=lambda r: f"Sent a direct message to @{recipient} (event {r.data.dm_event_id}).",
            cost=_price(runtime, "dm"),
            ids={"recipient": recipient},
            # The message itself stays private: only its length is recorded.
            detail=f"{len(text or '')} characters" + (f", {len(media)} attachment(s)" if media else ""),
            uses_media=bool(media),
            plan={
                "POST /2/dm_conversations/with/{participant_id}/messages": {
                    "recipient": recipient,
                    "text": text,
                    "attachments": len(media or []),
                }
            },
            validate=lambda: messages.prepare_message(runtime.media, username, text, media),
            result_ids=lambda r: {"dm_event_id": r.data.dm_event_id, "dm_conversation_id": r.data.dm_conversation_id},
        )
        return await _run(runtime, call, approval)

    return handler


def get_new_posts(runtime: "Runtime", spec: "ToolSpec") -> Handler:
    async def handler(
        username: Annotated[
            str,
            Field(
                description="Whose posts to read: a username, with or without the @.",
                json_schema_extra=_USERNAME_SCHEMA,
            ),
        ],
        since_id: Annotated[
            str | None,
            Field(
                description="Return posts newer than this post id (the next_since_id of the previous call).",
                json_schema_extra=_POST_ID_SCHEMA,
            ),
        ] = None,
    ) -> Annotated[CallToolResult, timeline.NewPosts]:
        call = ToolCall(
            spec,
            action=lambda: timeline.get_new_posts(runtime.client, runtime.users, username, since_id),
            summary=lambda r: f"{len(r.posts)} post(s) by @{username.lstrip('@')}; next since_id: {r.next_since_id}.",
            ids={"username": str(username).lstrip("@")},
        )
        return await _run(runtime, call)

    return handler
