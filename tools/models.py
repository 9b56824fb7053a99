"""Typed shapes at the boundary: the seed's inputs (FILE_ENTRY) and outputs, and X's users."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError

from .errors import XError

ModelT = TypeVar("ModelT", bound=BaseModel)


class FileEntry(BaseModel):
    """A file as workflow tools pass it. Only `url` is required; the rest are hints."""

    model_config = ConfigDict(extra="ignore")

    url: str = Field(
        description="Where the image or GIF is: an https URL, a data: URI (data:image/png;base64,...), or a local "
        "file path / file:// URL under a directory the server allows (--media-root)."
    )
    extension: str | None = Field(default=None, description="File extension hint, e.g. 'png'.")
    mimeType: str | None = Field(default=None, description="MIME type hint, e.g. 'image/png'.")
    name: str | None = Field(default=None, description="File name, used in messages only.")


class PostData(BaseModel):
    id: str
    text: str
    edit_history_tweet_ids: list[str]


class CreatePostResult(BaseModel):
    data: PostData


class DeletedData(BaseModel):
    deleted: bool


class DeletePostResult(BaseModel):
    data: DeletedData


class LikedData(BaseModel):
    liked: bool


class LikePostResult(BaseModel):
    data: LikedData


class RepostData(BaseModel):
    # X's newer spec names the field rest_id; older responses say id. The output is always `id`.
    id: str = Field(validation_alias=AliasChoices("id", "rest_id"))
    retweeted: bool


class RepostPostResult(BaseModel):
    data: RepostData


class DirectMessageData(BaseModel):
    dm_conversation_id: str
    dm_event_id: str


class SendDirectMessageResult(BaseModel):
    data: DirectMessageData


class User(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    username: str
    name: str | None = None


def parse_response(model: type[ModelT], body: dict[str, Any], endpoint: str) -> ModelT:
    """Validate X's success body; a shape we don't know is an error, not a crash."""
    try:
        return model.model_validate(body)
    except ValidationError:
        raise XError(
            f"X answered {endpoint} with a response xcourier does not understand (expected {model.__name__}).",
            endpoint=endpoint,
        ) from None
