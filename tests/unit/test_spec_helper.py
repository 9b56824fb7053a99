"""The spec helper really checks: bodies X would refuse fail against its schemas."""

from __future__ import annotations

import jsonschema
import pytest

from .spec import validate_request_body

DM_PATH = "/2/dm_conversations/with/{participant_id}/messages"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        pytest.param("POST", "/2/users/{id}/likes", {"tweet_id": 1228393702244134912}, id="numeric-tweet-id"),
        pytest.param("POST", "/2/users/{id}/retweets", {"tweet_id": "1", "extra": True}, id="retweet-extra-key"),
        pytest.param("POST", "/2/tweets", {"media": {"media_ids": ["1", "2", "3", "4", "5"]}}, id="five-media-ids"),
        pytest.param("POST", "/2/tweets", {"media": {"media_ids": ["abc"]}}, id="non-numeric-media-id"),
        pytest.param("POST", DM_PATH, {"text": ""}, id="empty-dm-text"),
        pytest.param("POST", DM_PATH, {"attachments": [{"id": "1"}]}, id="attachment-without-media-id"),
    ],
)
def test_bodies_x_would_refuse_fail_validation(method: str, path: str, body: dict):
    with pytest.raises(jsonschema.ValidationError):
        validate_request_body(method, path, body)


def test_upload_form_with_an_unknown_category_fails_validation():
    with pytest.raises(jsonschema.ValidationError):
        validate_request_body(
            "POST", "/2/media/upload", {"media": "<binary>", "media_category": "tweet_gif"}, "multipart/form-data"
        )


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        pytest.param("POST", "/2/tweets", {"text": "hello"}, id="text-post"),
        pytest.param("POST", "/2/users/{id}/likes", {"tweet_id": "1228393702244134912"}, id="like"),
        pytest.param("POST", DM_PATH, {"text": "hi", "attachments": [{"media_id": "1"}]}, id="dm-with-attachment"),
    ],
)
def test_bodies_x_accepts_pass_validation(method: str, path: str, body: dict):
    validate_request_body(method, path, body)
