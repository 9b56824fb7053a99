"""Typed shapes at the boundary: the seed's inputs (FILE_ENTRY) and outputs, and X's answers.

X's answers are read tolerantly: every model requires only what X's OpenAPI spec (2.167) requires,
accepts both of X's vocabularies (`edit_history_tweet_ids` / `edit_history_post_ids`, `id` /
`rest_id`) and ignores fields it doesn't know, because X adds fields and renames them between
spec versions while the live API keeps answering in the older words. The results xcourier returns
keep their documented shapes; where X may leave a field out, the Field description says what is
filled in instead.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import AnswerUnreadableError

ModelT = TypeVar("ModelT", bound=BaseModel)


class _Model(BaseModel):
    # Validators and serializers are built on a model's first use, not at import: a stdio server is spawned
    # per client session, and most of these (X's answers to calls not yet made, the posting toolset's
    # inputs) are not needed to answer tools/list. The tools' own schemas still build theirs at start-up.
    model_config = ConfigDict(defer_build=True)


class FileEntry(_Model):
    """A file as workflow tools pass it. Only `url` is required; the rest are hints."""

    model_config = ConfigDict(extra="ignore")

    url: str = Field(
        description="Where the image, GIF or video is: an https URL, a data: URI (data:image/png;base64,...), or "
        "a local file path / file:// URL under a directory the server allows (--media-root). For a large video a "
        "local file or a URL is best: it is read in segments, never whole."
    )
    extension: str | None = Field(default=None, description="File extension hint, e.g. 'png' or 'mp4'.")
    mimeType: str | None = Field(default=None, description="MIME type hint, e.g. 'image/png' or 'video/mp4'.")
    name: str | None = Field(default=None, description="File name, used in messages only.")


# CreatePostsRequest.reply_settings in spec 2.167: who may reply (everyone when left out).
ReplySettings = Literal["following", "mentionedUsers", "subscribers", "verified"]
POLL_MIN_OPTIONS, POLL_MAX_OPTIONS, POLL_OPTION_MAX_CHARS = 2, 4, 25
POLL_MIN_MINUTES, POLL_MAX_MINUTES = 5, 10080


class Poll(_Model):
    """A poll to attach to a post (CreatePostsPoll in spec 2.167). Checked by tools/posts.py, so a bad
    poll is refused with a message saying what to change rather than a schema error."""

    model_config = ConfigDict(extra="forbid")

    options: list[str] = Field(
        description=f"The choices: {POLL_MIN_OPTIONS} to {POLL_MAX_OPTIONS}, each 1 to {POLL_OPTION_MAX_CHARS} "
        "characters.",
        json_schema_extra={"minItems": POLL_MIN_OPTIONS, "maxItems": POLL_MAX_OPTIONS},
    )
    duration_minutes: int = Field(
        description=f"How long the poll stays open, in minutes: {POLL_MIN_MINUTES} to {POLL_MAX_MINUTES} (7 days).",
        json_schema_extra={"minimum": POLL_MIN_MINUTES, "maximum": POLL_MAX_MINUTES},
    )


EDIT_HISTORY = AliasChoices("edit_history_tweet_ids", "edit_history_post_ids")


def fill_edit_history(value: Any) -> Any:
    """A post X sent without its edit history is its own only version: `[id]`.

    X documents that posts made before edits existed (2022-09-29) have no edit history, and spec
    2.167 makes the field optional and spells it `edit_history_post_ids`; both spellings are read.
    """
    if not isinstance(value, dict):
        return value
    if any(value.get(name) is not None for name in EDIT_HISTORY.choices):
        return value
    post_id = value.get("id")
    return {**value, "edit_history_tweet_ids": [post_id]} if isinstance(post_id, str) else value


class ReadablePost(BaseModel):
    """What every post read from a page of X's shares: spec 2.167's Post requires nothing, so a post
    without text is read as "" (media-only posts come with an empty one), its edit history is filled
    (fill_edit_history), and an id that is no snowflake makes the post unusable (its page skips it).
    Subclasses declare the fields, with the descriptions their own output schema shows."""

    model_config = ConfigDict(extra="ignore")

    @model_validator(mode="before")
    @classmethod
    def _fill(cls, value: Any) -> Any:
        value = fill_edit_history(value)
        # Done here, not as a default, to keep `text` required in output schemas: it is always there.
        if isinstance(value, dict) and value.get("text") is None:
            return {**value, "text": ""}
        return value

    @field_validator("id", check_fields=False)
    @classmethod
    def _snowflake(cls, value: str) -> str:
        if not value.isascii() or not value.isdigit():
            raise ValueError("a post id is digits")
        return value


class PostData(_Model):
    # Read straight from X's POST /2/tweets answer, whose CreatePostsResponseData requires only
    # `id` and `text` (spec 2.167); the edit history is filled from the answer's own id.
    model_config = ConfigDict(extra="ignore")

    id: str = Field(description="The post's id.")
    text: str = Field(description="The post's text as X stored it (links shortened to t.co).")
    edit_history_tweet_ids: list[str] = Field(
        validation_alias=EDIT_HISTORY,
        description="Ids of the post's versions, oldest first. X may call this edit_history_post_ids (copied here) "
        "or leave it out: then it is [id], a new post being its own only version.",
    )

    @model_validator(mode="before")
    @classmethod
    def _fill_edit_history(cls, value: Any) -> Any:
        return fill_edit_history(value)


class CreatePostResult(_Model):
    model_config = ConfigDict(extra="ignore")

    data: PostData


class ThreadPost(_Model):
    """One post of a thread: text, media, or both."""

    model_config = ConfigDict(extra="forbid")

    text: str | None = Field(
        default=None, description="The post's text: up to 280 weighted characters (links count 23, emoji 2)."
    )
    media: list[FileEntry] | None = Field(
        default=None,
        description="Media to attach: up to 4 JPEG, PNG or WEBP images (5 MB each), or one GIF (15 MB), or one "
        "MP4/MOV video (512 MB).",
        json_schema_extra={"maxItems": 4},
    )


class ThreadData(_Model):
    posts: list[PostData] = Field(
        description="The thread's posts as created, in order; each replies to the one before."
    )
    last_id: str = Field(description="The last post's id: pass it as continue_from to add to the thread later.")


class CreateThreadResult(_Model):
    data: ThreadData


class DeletedData(_Model):
    model_config = ConfigDict(extra="ignore")

    # DeletePostsResponseData requires `deleted` (spec 2.167).
    deleted: bool = Field(description="Whether X deleted the post.")


class DeletePostResult(_Model):
    model_config = ConfigDict(extra="ignore")

    data: DeletedData


class LikedData(_Model):
    liked: bool = Field(
        description="Whether the signed-in user now likes the post. When X's answer leaves it out, true: inferred "
        "from X's success status."
    )


class LikePostResult(_Model):
    data: LikedData


class RepostData(_Model):
    id: str = Field(
        description="The reposted post's id (X's `rest_id`). When X's answer leaves it out, the tweet_id passed in."
    )
    retweeted: bool = Field(
        description="Whether the signed-in user has now reposted the post. When X's answer leaves it out, true: "
        "inferred from X's success status."
    )


class RepostPostResult(_Model):
    data: RepostData


class UnlikedData(_Model):
    liked: bool = Field(
        description="Whether the signed-in user still likes the post: false once undone. When X's answer leaves it "
        "out, false: inferred from X's success status."
    )


class UnlikePostResult(_Model):
    data: UnlikedData


class UnrepostedData(_Model):
    retweeted: bool = Field(
        description="Whether the signed-in user still reposts the post: false once undone. When X's answer leaves "
        "it out, false: inferred from X's success status."
    )


class UnrepostPostResult(_Model):
    data: UnrepostedData


class DirectMessageData(_Model):
    # CreateDirectMessagesByParticipantIdResponseData requires both ids (spec 2.167): they are the
    # only way to find the message again, so an answer without them is unreadable, not filled in.
    model_config = ConfigDict(extra="ignore")

    dm_conversation_id: str = Field(description="The conversation the message was sent to.")
    dm_event_id: str = Field(description="The id of the message (its DM event).")


class SendDirectMessageResult(_Model):
    model_config = ConfigDict(extra="ignore")

    data: DirectMessageData


class User(_Model):
    """A user as xcourier uses one: the id to act on, and the handle."""

    model_config = ConfigDict(extra="ignore")

    id: str
    username: str
    name: str | None = None


# --- X's answers, as sent: everything optional that spec 2.167 leaves optional -------------------


class _Answer(_Model):
    model_config = ConfigDict(extra="ignore")


class LikeAnswerData(_Answer):
    # LikePostResponseData requires `liked` (spec 2.167), but `data` itself is optional there.
    liked: bool | None = None


class LikeAnswer(_Answer):
    """POST /2/users/{id}/likes, as X may send it."""

    data: LikeAnswerData | None = None


class RepostAnswerData(_Answer):
    # Spec 2.167's RepostPostResponseData names the id `rest_id`; older answers say `id`, and
    # older specs make both fields optional.
    id: str | None = Field(default=None, validation_alias=AliasChoices("rest_id", "id"))
    retweeted: bool | None = None


class RepostAnswer(_Answer):
    """POST /2/users/{id}/retweets, as X may send it."""

    data: RepostAnswerData | None = None


class UnlikeAnswerData(_Answer):
    # UnlikePostResponseData requires `liked` (spec 2.167); `data` itself is optional.
    liked: bool | None = None


class UnlikeAnswer(_Answer):
    """DELETE /2/users/{id}/likes/{tweet_id}, as X may send it."""

    data: UnlikeAnswerData | None = None


class UnrepostAnswerData(_Answer):
    # UnrepostPostResponseData requires `retweeted` (spec 2.167); `data` itself is optional.
    retweeted: bool | None = None


class UnrepostAnswer(_Answer):
    """DELETE /2/users/{id}/retweets/{source_tweet_id}, as X may send it."""

    data: UnrepostAnswerData | None = None


class UserAnswerData(_Answer):
    # Spec 2.167's User schema requires nothing; the caller decides what it can't do without.
    id: str | None = None
    username: str | None = None
    name: str | None = None


class UserAnswer(_Answer):
    """GET /2/users/me and GET /2/users/by/username/{username}, as X may send them."""

    data: UserAnswerData | None = None


def answer_unreadable(endpoint: str, what: str, status: int | None = None) -> AnswerUnreadableError:
    """X accepted the call (2xx) but `what` could not be read from its answer.

    The message names the endpoint and the missing part, never the body: it may hold secrets.
    """
    answered = f"HTTP {status}" if status is not None else "a success status"
    return AnswerUnreadableError(
        f"X accepted {endpoint} ({answered}), but xcourier could not read its answer: {what}.",
        status=status,
        endpoint=endpoint,
    )


def _where(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "the body"


def _describe(exc: ValidationError) -> str:
    # pydantic's messages name the expected type, not the value received: safe to repeat.
    problems = [
        f"{_where(error['loc'])} " + ("is missing" if error["type"] == "missing" else f"is wrong: {error['msg']}")
        for error in exc.errors(include_input=False, include_url=False)
    ]
    shown = "; ".join(problems[:3])
    return shown + (f" (and {len(problems) - 3} more)" if len(problems) > 3 else "")


def parse_response(model: type[ModelT], body: dict[str, Any], endpoint: str, status: int | None = None) -> ModelT:
    """Read X's success body into `model`; a shape that can't be read raises AnswerUnreadableError.

    Only 2xx bodies get here, so X did what was asked: the error says so rather than inviting a retry.
    """
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise answer_unreadable(endpoint, _describe(exc), status) from None
