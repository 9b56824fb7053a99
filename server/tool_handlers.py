"""The five tools as MCP sees them: top-level parameters with the seed's names, typed results.

Each factory closes over the Runtime and returns the function MCPServer registers; its
signature is the tool's input schema and its `Annotated[CallToolResult, Model]` return
is the output schema.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any

from mcp_types import CallToolResult
from pydantic import BaseModel, Field

from xcourier.tools import engagement, messages, posts, timeline
from xcourier.tools.errors import MissingScopeError, XError
from xcourier.tools.media import MAX_DM_ATTACHMENTS, MAX_POST_IMAGES
from xcourier.tools.models import (
    CreatePostResult,
    DeletePostResult,
    FileEntry,
    LikePostResult,
    RepostPostResult,
    SendDirectMessageResult,
)

from . import results
from .runtime import Runtime

if TYPE_CHECKING:
    from .inventory import ToolSpec

Handler = Callable[..., Awaitable[CallToolResult]]

# Patterns are advertised for clients that validate early; the server checks them itself so
# a violation comes back as an actionable message rather than a schema dump.
_POST_ID_SCHEMA = {"pattern": "^[0-9]{1,19}$"}
_USERNAME_SCHEMA = {"pattern": "^@?[A-Za-z0-9_]{1,15}$"}


def _missing_scopes(runtime: Runtime, spec: ToolSpec, uses_media: bool) -> MissingScopeError | None:
    granted = runtime.granted_scopes()
    if granted is None:  # a bare access token: X will say if a scope is missing
        return None
    needed = spec.scopes + (spec.media_scopes if uses_media else ())
    missing = tuple(scope for scope in needed if scope not in granted)
    if not missing:
        return None
    return MissingScopeError(f"{spec.name} needs the scope(s) {' '.join(missing)}", scopes=missing)


async def _run(
    runtime: Runtime,
    spec: ToolSpec,
    action: Callable[[], Awaitable[BaseModel]],
    summary: Callable[[Any], str],
    *,
    uses_media: bool = False,
) -> CallToolResult:
    def failed(exc: XError) -> CallToolResult:
        return results.failure(exc, tool=spec.name, writes=spec.writes, on_sandbox=runtime.on_sandbox)

    missing = _missing_scopes(runtime, spec, uses_media)
    if missing is not None:
        return failed(missing)
    try:
        result = await action()
    except XError as exc:
        return failed(exc)
    return results.success(result, summary(result), on_sandbox=runtime.on_sandbox)


def create_post(runtime: Runtime, spec: ToolSpec) -> Handler:
    async def handler(
        text: Annotated[
            str | None,
            Field(description="The text of the post: up to 280 weighted characters (links count 23, emoji 2)."),
        ] = None,
        media: Annotated[
            list[FileEntry] | None,
            Field(
                description=f"Images to attach (JPEG, PNG or WEBP, up to 5 MB each, at most {MAX_POST_IMAGES}).",
                json_schema_extra={"maxItems": MAX_POST_IMAGES},
            ),
        ] = None,
    ) -> Annotated[CallToolResult, CreatePostResult]:
        def summary(r: CreatePostResult) -> str:
            return f"Created post {r.data.id}."

        def action() -> Awaitable[CreatePostResult]:
            return posts.create_post(runtime.client, runtime.media, text, media)

        return await _run(runtime, spec, action, summary, uses_media=bool(media))

    return handler


def delete_post(runtime: Runtime, spec: ToolSpec) -> Handler:
    async def handler(
        id: Annotated[str, Field(description="The ID of the post to delete.", json_schema_extra=_POST_ID_SCHEMA)],
    ) -> Annotated[CallToolResult, DeletePostResult]:
        def summary(r: DeletePostResult) -> str:
            return f"Deleted post {id}." if r.data.deleted else f"X did not delete post {id}."

        return await _run(runtime, spec, lambda: posts.delete_post(runtime.client, id), summary)

    return handler


def like_post(runtime: Runtime, spec: ToolSpec) -> Handler:
    async def handler(
        tweet_id: Annotated[str, Field(description="The ID of the post to like.", json_schema_extra=_POST_ID_SCHEMA)],
    ) -> Annotated[CallToolResult, LikePostResult]:
        def summary(r: LikePostResult) -> str:
            return f"Liked post {tweet_id}." if r.data.liked else f"X did not like post {tweet_id}."

        return await _run(runtime, spec, lambda: engagement.like_post(runtime.client, runtime.users, tweet_id), summary)

    return handler


def repost_post(runtime: Runtime, spec: ToolSpec) -> Handler:
    async def handler(
        tweet_id: Annotated[str, Field(description="The ID of the post to repost.", json_schema_extra=_POST_ID_SCHEMA)],
    ) -> Annotated[CallToolResult, RepostPostResult]:
        def summary(r: RepostPostResult) -> str:
            return f"Reposted post {r.data.id}." if r.data.retweeted else f"X did not repost post {tweet_id}."

        return await _run(
            runtime, spec, lambda: engagement.repost_post(runtime.client, runtime.users, tweet_id), summary
        )

    return handler


def send_direct_message(runtime: Runtime, spec: ToolSpec) -> Handler:
    async def handler(
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
                description="One image to attach (X takes one attachment per message).",
                json_schema_extra={"maxItems": MAX_DM_ATTACHMENTS},
            ),
        ] = None,
    ) -> Annotated[CallToolResult, SendDirectMessageResult]:
        def summary(r: SendDirectMessageResult) -> str:
            return f"Sent a direct message to @{username.lstrip('@')} (event {r.data.dm_event_id})."

        def action() -> Awaitable[SendDirectMessageResult]:
            return messages.send_direct_message(runtime.client, runtime.users, runtime.media, username, text, media)

        return await _run(runtime, spec, action, summary, uses_media=bool(media))

    return handler


def get_new_posts(runtime: Runtime, spec: ToolSpec) -> Handler:
    async def handler(
        username: Annotated[
            str,
            Field(
                description="The user whose posts to read, with or without the @.", json_schema_extra=_USERNAME_SCHEMA
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
        def summary(r: timeline.NewPosts) -> str:
            return f"{len(r.posts)} post(s) by @{username.lstrip('@')}; next since_id: {r.next_since_id}."

        return await _run(
            runtime, spec, lambda: timeline.get_new_posts(runtime.client, runtime.users, username, since_id), summary
        )

    return handler
