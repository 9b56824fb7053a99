"""Post text is measured as X measures it: twitter-text v3 weighted length, 280 at most."""

from __future__ import annotations

import warnings

import pytest

from xcourier.server import audit
from xcourier.tools.client import XClient
from xcourier.tools.errors import InvalidInputError
from xcourier.tools.media import MediaLoader
from xcourier.tools.posts import create_post
from xcourier.tools.text import MAX_TEXT_UTF16, cashtags, check_post_text, has_url, utf16_length, weighted_length

from .captured import json_body

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from twitter_text import parse_tweet


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


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("see x.ai", id="x.ai"),
        pytest.param("Impressum: beispiel.de", id="de"),
        pytest.param("about.me/someone", id="me"),
        pytest.param("read https://example.org/a?b=c", id="protocol"),
        pytest.param("short link t.co/abc123", id="t.co"),
        pytest.param("日本語のリンク https://例え.jp/ です", id="idn"),
    ],
)
def test_has_url_finds_the_links_twitter_text_finds(text: str):
    assert has_url(text)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("no links here.", id="sentence"),
        pytest.param("version 2.0 is out", id="number"),
        pytest.param("file.txt and e.g. this", id="not-a-tld"),
        pytest.param("mail me: someone@example.com", id="email"),
        pytest.param("a." * 1500, id="dotted-3000"),
    ],
)
def test_has_url_ignores_what_twitter_text_does_not_call_a_link(text: str):
    assert not has_url(text)


def test_has_url_prices_a_post_with_a_link_at_x_s_url_price():
    assert audit.has_url("launch notes at x.ai/news")
    assert audit.has_url("Termine: verein.de")
    assert not audit.has_url("plain words")
    assert not audit.has_url(None)


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("$TSLA to the moon", ["$TSLA"]),
        ("buy $aapl, sell $BRK.A", ["$aapl", "$BRK.A"]),
        ("costs $5 or $20", []),
        ("US$ and $TOOLONGX", []),
        ("price$TSLA", []),
        ("$A$B", ["$A"]),
    ],
)
def test_cashtags_are_found_as_twitter_text_finds_them(text: str, found: list[str]):
    assert cashtags(text) == found


def test_one_cashtag_per_post_passes():
    check_post_text("Earnings day for $TSLA")


def test_a_second_cashtag_is_refused_locally_with_x_s_rule():
    with pytest.raises(InvalidInputError) as refused:
        check_post_text("Watching $TSLA and $AAPL today")
    message = str(refused.value)
    assert "2 cashtags ($TSLA, $AAPL)" in message
    assert "at most 1 cashtag per post" in message and "self-serve" in message


def test_the_cashtag_rule_can_be_lifted_for_enterprise_accounts():
    check_post_text("Watching $TSLA and $AAPL today", max_cashtags=None)


@pytest.mark.anyio
async def test_a_post_with_two_cashtags_never_reaches_x(x, client: XClient):
    with pytest.raises(InvalidInputError, match="cashtags"):
        await create_post(client, MediaLoader(), text="$TSLA $AAPL")
    assert not x.calls


def test_text_over_the_size_bound_is_refused_with_its_length_and_the_limit():
    with pytest.raises(InvalidInputError) as refused:
        check_post_text("a" * (MAX_TEXT_UTF16 + 1))
    message = str(refused.value)
    assert f"{MAX_TEXT_UTF16 + 1:,} characters long" in message
    assert f"over {MAX_TEXT_UTF16:,}" in message and "X allows 280" in message


def test_the_size_bound_counts_utf16_units_as_x_does():
    # An emoji outside the BMP is two UTF-16 units: 2,049 of them are 4,098 units.
    with pytest.raises(InvalidInputError, match="4,098 characters long"):
        check_post_text("😀" * 2049)


def test_a_lone_surrogate_is_measured_not_crashed_on():
    assert utf16_length("\ud800") == 1
    with pytest.raises(InvalidInputError, match="characters long"):
        check_post_text("\ud800" * (MAX_TEXT_UTF16 + 1))


def test_a_long_text_of_many_links_says_it_is_at_least_its_counted_length():
    with pytest.raises(InvalidInputError, match=r"at least \d+ weighted characters; X allows 280"):
        check_post_text("x.com " * 300)


def test_line_endings_count_as_parse_tweet_counts_them():
    assert weighted_length("a\r\nb") == 3
    assert weighted_length("a\rb.com") == 25


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("#\ufe0f\u20e3 1\ufe0f\u20e3", 5, id="keycaps-begin-with-ascii"),
        pytest.param("\U0001f1ef\U0001f1f5\U0001f1e9\U0001f1ea", 4, id="two-flags"),
        pytest.param("\U0001f44d\U0001f3fd", 2, id="skin-tone"),
        pytest.param("\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f", 2, id="tag-sequence"),
        pytest.param("\u00a9 \u2122 \u203c", 8, id="emoji-in-weight-1-ranges"),
        pytest.param("\U0001f3fb", 2, id="lone-skin-tone"),
    ],
)
def test_emoji_of_every_shape_count_as_parse_tweet_counts_them(text: str, expected: int):
    assert weighted_length(text) == parse_tweet(text).weightedLength == expected


def test_a_lone_surrogate_in_short_text_weighs_2_where_parse_tweet_crashes():
    # parse_tweet raises UnicodeEncodeError measuring it; the weight is twitter-text's default for a code
    # point outside its weight-1 ranges.
    assert weighted_length("漢字\ud800かな") == 10
