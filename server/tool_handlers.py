"""The five tools as MCP sees them: top-level parameters with the seed's names, typed results.

Each factory closes over the Runtime and returns the function MCPServer registers; its
signature is the tool's input schema and its `Annotated[CallToolResult, Model]` return
is the output schema.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from mcp_types import CallToolResult
from pydantic import BaseModel, Field

from xcourier.tools import engagement, messages, posts
from xcourier.tools.errors import XError
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

Handler = Callable[..., Awaitable[CallToolResult]]

# Patterns are advertised for clients that validate early; the server checks them itself so
# a violation comes back as an actionable message rather than a schema dump.
_POST_ID_SCHEMA = {"pattern": "^[0-9]{1,19}$"}
_USERNAME_SCHEMA = {"pattern": "^@?[A-Za-z0-9_]{1,15}$"}


async def _run(
    runtime: Runtime,
    tool: str,
    writes: bool,
    action: Awaitable[BaseModel],
    summary: Callable[[Any], str],
) -> CallToolResult:
    try:
        result = await action
    except XError as exc:
        return results.failure(exc, tool=tool, writes=writes, on_sandbox=runtime.on_sandbox)
    return results.success(result, summary(result), on_sandbox=runtime.on_sandbox)


def create_post(runtime: Runtime) -> Handler:
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

        return await _run(
            runtime,
            "createPost",
            True,
            posts.create_post(runtime.client, runtime.media, text, media),
            summary,
        )

    return handler


def delete_post(runtime: Runtime) -> Handler:
    async def handler(
        id: Annotated[str, Field(description="The ID of the post to delete.", json_schema_extra=_POST_ID_SCHEMA)],
    ) -> Annotated[CallToolResult, DeletePostResult]:
        def summary(r: DeletePostResult) -> str:
            return f"Deleted post {id}." if r.data.deleted else f"X did not delete post {id}."

        return await _run(runtime, "deletePost", True, posts.delete_post(runtime.client, id), summary)

    return handler


def like_post(runtime: Runtime) -> Handler:
    async def handler(
        tweet_id: Annotated[str, Field(description="The ID of the post to like.", json_schema_extra=_POST_ID_SCHEMA)],
    ) -> Annotated[CallToolResult, LikePostResult]:
        def summary(r: LikePostResult) -> str:
            return f"Liked post {tweet_id}." if r.data.liked else f"X did not like post {tweet_id}."

        action = engagement.like_post(runtime.client, runtime.users, tweet_id)
        return await _run(runtime, "likePost", True, action, summary)

    return handler


def repost_post(runtime: Runtime) -> Handler:
    async def handler(
        tweet_id: Annotated[str, Field(description="The ID of the post to repost.", json_schema_extra=_POST_ID_SCHEMA)],
    ) -> Annotated[CallToolResult, RepostPostResult]:
        def summary(r: RepostPostResult) -> str:
            return f"Reposted post {r.data.id}." if r.data.retweeted else f"X did not repost post {tweet_id}."

        action = engagement.repost_post(runtime.client, runtime.users, tweet_id)
        return await _run(runtime, "repostPost", True, action, summary)

    return handler


def send_direct_message(runtime: Runtime) -> Handler:
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

        action = messages.send_direct_message(runtime.client, runtime.users, runtime.media, username, text, media)
        return await _run(runtime, "sendDirectMessage", True, action, summary)

    return handler
