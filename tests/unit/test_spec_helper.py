"""The spec helper really checks: bodies X would refuse fail against its schemas."""

from __future__ import annotations

import jsonschema
import pytest

from .spec import maximal_body, minimal_body, validate_query, validate_request_body, validate_response_body

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
            "POST", "/2/media/upload", {"media": "<binary>", "media_category": "tweet_audio"}, "multipart/form-data"
        )


def test_one_shot_upload_form_with_a_media_type_fails_validation():
    # Spec 2.167: the one-shot body has additionalProperties false and no media_type.
    with pytest.raises(jsonschema.ValidationError):
        validate_request_body(
            "POST",
            "/2/media/upload",
            {"media": "<binary>", "media_category": "tweet_image", "media_type": "image/png"},
            "multipart/form-data",
        )


def test_multipart_fields_are_read_as_the_numbers_their_schema_says():
    validate_request_body(
        "POST", "/2/media/upload/{id}/append", {"media": "<binary>", "segment_index": "7"}, "multipart/form-data"
    )
    with pytest.raises(jsonschema.ValidationError):
        validate_request_body(
            "POST", "/2/media/upload/{id}/append", {"media": "<binary>", "segment_index": "x"}, "multipart/form-data"
        )


@pytest.mark.parametrize(
    ("path", "params"),
    [
        pytest.param("/2/users/{id}/tweets", {"tweet.fields": "created_at"}, id="old-fields-name-on-timeline"),
        pytest.param("/2/users/{id}/tweets", {"post.fields": "created_at,author_id"}, id="author-id-is-an-expansion"),
        pytest.param("/2/users/{id}/tweets", {"max_results": "101"}, id="page-too-large"),
        pytest.param("/2/tweets/search/recent", {"query": "from:a", "since_id": "abc"}, id="non-numeric-since-id"),
    ],
)
def test_queries_x_does_not_document_fail_validation(path: str, params: dict[str, str]):
    with pytest.raises(jsonschema.ValidationError):
        validate_query("GET", path, params)


def test_generated_answers_are_valid_and_the_minimal_one_holds_only_what_is_required():
    assert minimal_body("POST", "/2/tweets") == {}  # spec 2.167 makes even `data` optional
    created = minimal_body("POST", "/2/tweets", keep={"data"})
    assert set(created["data"]) == {"id", "text"}
    page = maximal_body("GET", "/2/users/{id}/tweets")
    assert "edit_history_post_ids" in page["data"][0] and "next_token" in page["meta"]
    for method, path, body in [("POST", "/2/tweets", created), ("GET", "/2/users/{id}/tweets", page)]:
        validate_response_body(method, path, body)


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
