"""Post text is measured as X measures it: twitter-text v3 weighted length, 280 at most."""

from __future__ import annotations

import pytest

from xcourier.tools.client import XClient
from xcourier.tools.errors import InvalidInputError
from xcourier.tools.media import MediaLoader
from xcourier.tools.posts import create_post
from xcourier.tools.text import check_post_text, weighted_length

from .captured import json_body


@pytest.mark.parametrize(
    "url",
    ["https://example.com", "https://example.com/a/very/long/path/that/goes/on/and/on?with=query&and=more", "x.com"],
)
def test_a_url_counts_23_whatever_its_length(url: str):
    assert weighted_length(url) == 23


def test_latin_letters_count_one_each():
    assert weighted_length("a" * 280) == 280


def test_cjk_characters_count_two_each():
    assert weighted_length("漢字") == 4


def test_an_emoji_counts_two_even_as_a_zwj_sequence():
    assert weighted_length("😀") == 2
    assert weighted_length("👨‍👩‍👧‍👦") == 2


def test_text_is_measured_after_nfc_normalisation():
    assert weighted_length("e\u0301" * 280) == 280
    check_post_text("e\u0301" * 280)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("a" * 280, id="280-latin"),
        pytest.param("あ" * 140, id="140-cjk"),
        pytest.param("😀" * 140, id="140-emoji"),
        pytest.param("https://example.com/" + "x" * 300 + " " + "a" * 256, id="long-url-plus-256"),
    ],
)
def test_text_of_exactly_280_weighted_characters_passes(text: str):
    check_post_text(text)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("a" * 281, id="281-latin"),
        pytest.param("あ" * 141, id="141-cjk"),
        pytest.param("😀" * 141, id="141-emoji"),
        pytest.param("https://example.com " + "a" * 257, id="url-plus-257"),
    ],
)
def test_text_over_280_weighted_characters_fails(text: str):
    with pytest.raises(InvalidInputError, match="X allows 280"):
        check_post_text(text)


@pytest.mark.anyio
@pytest.mark.parametrize("text", ["😀" * 140, "あ" * 140, "a" * 280], ids=["140-emoji", "140-cjk", "280-latin"])
async def test_a_full_length_post_is_sent_unchanged(x, client: XClient, text: str):
    route = x.post("/2/tweets").respond(201, json={"data": {"id": "1", "text": text, "edit_history_tweet_ids": ["1"]}})

    await create_post(client, MediaLoader(), text=text)

    assert json_body(route.calls.last.request) == {"text": text}
