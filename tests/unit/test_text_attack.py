"""Counting post text can't be turned against the server: exact like parse_tweet, never its worst case.

twitter-text's URL regex is super-linear (``"a." * 1500`` took 9.6 s in parse_tweet) and holds the GIL
while it runs. tools/text.py counts exactly as parse_tweet does while trying that regex only where a
URL can start. These tests hold it to both halves of that claim without timing anything: equality with
parse_tweet on generated texts, and spies that show the slow paths are never reached.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import string
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from xcourier.tools import text as text_module
from xcourier.tools.errors import InvalidInputError
from xcourier.tools.text import (
    INLINE_UTF16,
    MAX_TEXT_UTF16,
    check_post_text,
    extract_urls,
    has_url,
    link_check_is_fast,
    validate_post_text,
    weighted_length,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import twitter_text
    from twitter_text import extract_urls_with_indices, parse_tweet
    from twitter_text.regexp.emoji import emoji as twitter_text_emoji
    from twitter_text.regexp.emoji import emoji_list

# Deterministic (derandomize) and bounded: the reference, parse_tweet, is the slow thing under test.
EXACTNESS = settings(max_examples=400, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])

TLDS = ["com", "COM", "de", "me", "ai", "io", "co", "uk", "jp", "onion", "xn--p1ai", "museum", "x", "a", "comx", "c0m"]
ASCII_PIECES = [
    " ", "  ", "\n", "\r\n", "\r", "\t", ".", "..", "/", "//", ":", "?", "#", "@", "$", "-", "_", "(", ")", ",",
    "!", "'", '"', "`", "=", "&", "%", "+", "~", "|", "[", "]", "<", ">", "{", "}", "\\", "^", "*", ";",
    "http://", "https://", "HTTPS://", "t.co/", "www.", "a", "b1", "word", "x", "e.g.", "2.0", "\x01",
]  # fmt: skip
UNICODE_PIECES = [
    "漢字", "あ", "한국", "é", "e\u0301", "ж", "Ω", "😀", "👨\u200d👩\u200d👧\u200d👦", "🇩🇪", "#\ufe0f\u20e3",
    "\u200d", "\ufeff", "\u202a", "\u3000", "\xa0", "例え", "中国", "ö", "\u017f", "\u212a",
    "\U0001f3f4\U000e0067\U000e0062\U000e007f",
]  # fmt: skip


@st.composite
def url_like(draw: st.DrawFn, alphabet: list[str]) -> str:
    protocol = draw(st.sampled_from(["", "", "http://", "https://", "HTTP://"]))
    labels = draw(st.lists(st.sampled_from(["a", "b-c", "d_e", "x", "t", "例え", "1", "-", "ab", '"q']), max_size=4))
    tld = draw(st.sampled_from(TLDS + [piece for piece in alphabet if piece.isalpha()]))
    port = draw(st.sampled_from(["", "", ":80", ":"]))
    path = draw(st.sampled_from(["", "", "/", "/p", "/a.b", "/(x)", "/x(y(z))", "/@u/", "/a-", "/é", "/q.", "/x.comz"]))
    query = draw(st.sampled_from(["", "", "?q=1", "?a.b", "?x=(1)", "?"]))
    return protocol + ".".join([*labels, tld]) + port + path + query


def texts(alphabet: list[str], max_size: int) -> st.SearchStrategy[str]:
    piece = st.one_of(st.sampled_from(alphabet), url_like(alphabet), st.sampled_from(TLDS))
    return st.lists(piece, max_size=max_size).map("".join)


def reference_urls(text: str) -> list[tuple[int, str]]:
    return [(entity["indices"][0], entity["url"]) for entity in extract_urls_with_indices(text)]


@EXACTNESS
@given(texts(ASCII_PIECES, max_size=40))
def test_the_ascii_fast_path_counts_exactly_as_parse_tweet(text: str):
    assert weighted_length(text) == parse_tweet(text).weightedLength


@EXACTNESS
@given(texts(ASCII_PIECES, max_size=40))
def test_the_url_search_finds_exactly_what_twitter_text_s_extractor_finds(text: str):
    assert extract_urls(text) == reference_urls(text)


@EXACTNESS
@given(texts(ASCII_PIECES + UNICODE_PIECES, max_size=30))
def test_the_full_count_matches_parse_tweet_on_any_text(text: str):
    assert weighted_length(text) == parse_tweet(text).weightedLength
    normalized = text_module._normalize(text)
    assert extract_urls(normalized) == reference_urls(normalized)


@settings(max_examples=300, derandomize=True, deadline=None)
@given(
    st.sampled_from([*TLDS, "vermögensberatung", "삼성", "中国", "xn--", "xn--a", "xn--@", "co", "ko"]),
    st.sampled_from(["", " ", "/", "-", "@", "+", "1", "a", ".", "é", "ж", "\u212a"]),
    st.booleans(),
)
def test_the_tld_set_lookup_agrees_with_twitter_text_s_tld_regex(tld: str, after: str, upper: bool):
    rules = text_module._url_rules()
    text = "a." + (tld.upper() if upper else tld) + after
    assert rules.tld_follows(text, 1) == (rules.tld_after_dot.match(text, 1) is not None)


def test_every_listed_tld_is_found_by_the_set_lookup():
    rules = text_module._url_rules()
    assert rules.ascii_tlds  # the lists parsed: otherwise every lookup falls back to the regex
    for tld in sorted(rules.ascii_tlds):
        for follower in ("", "/", " ", "x"):
            text = f"a.{tld}{follower}"
            assert rules.tld_follows(text, 1) == (rules.tld_after_dot.match(text, 1) is not None), text


def test_no_non_ascii_tld_character_folds_to_ascii():
    # What lets tld_follows decide ASCII runs by set lookup: re.IGNORECASE folds e.g. U+212A to "k".
    rules = text_module._url_rules()
    listed = "|".join(rules.tld_after_dot.pattern.split("|"))
    non_ascii = {character for character in listed if not character.isascii()}
    folding = re.compile("[" + re.escape("".join(sorted(non_ascii))) + "]", re.IGNORECASE)
    assert folding.search(string.printable) is None


class CountingPattern:
    """extract_url with only ``match``: finditer, the super-linear search, would raise."""

    def __init__(self, pattern: re.Pattern[str]) -> None:
        self.pattern = pattern
        self.attempts = 0

    def match(self, text: str, position: int) -> Any:
        self.attempts += 1
        return self.pattern.match(text, position)


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> Iterator[CountingPattern]:
    """Counts twitter-text URL regex attempts; parse_tweet and its extractor fail the test if called."""
    rules = text_module._url_rules()
    counting = CountingPattern(rules.extract_url)
    monkeypatch.setattr(
        text_module, "_url_rules", functools.cache(lambda: dataclasses.replace(rules, extract_url=counting))
    )

    def forbidden(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("twitter-text's super-linear path was called")

    for module in (twitter_text, twitter_text.parse_tweet, twitter_text.extract_urls):
        for name in ("parse_tweet", "extract_urls_with_indices", "extract_urls"):
            if hasattr(module, name) and callable(getattr(module, name)):
                monkeypatch.setattr(module, name, forbidden)
    yield counting


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("a." * 1500, id="a-dot-1500"),
        pytest.param("é" * 3000 + " x", id="unspaced-non-ascii"),
        pytest.param('"' * 3000, id="quote-run"),
        pytest.param("a-" * 1500 + ". x", id="dashed-run"),
    ],
)
def test_pathological_text_is_counted_without_the_regex_failing_at_every_position(counted, text: str):
    with pytest.raises(InvalidInputError, match="X allows 280"):
        check_post_text(text)
    # finditer on these tries the URL regex at every position and backtracks through every label.
    assert counted.attempts <= 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("a." * 1500 + "com", 23, id="ascii"),
        # A domain with a non-ASCII label: twitter-text then runs valid_ascii_domain over the domain
        # (quadratic as well), finds no ASCII domain ending it, and counts no link.
        pytest.param("a." * 1500 + "ж.com", 3005, id="non-ascii-label"),
    ],
)
def test_a_domain_of_many_labels_is_decided_in_one_attempt(counted, text: str, expected: int):
    assert weighted_length(text) == expected
    assert counted.attempts == 1


def test_text_of_many_links_stops_counting_past_the_limit(counted):
    with pytest.raises(InvalidInputError, match="at least"):
        check_post_text("x.com " * 680)
    assert counted.attempts <= 13  # 12 links of 23 pass 280; not all 680


@pytest.fixture
def nothing_parses(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*_args: object) -> None:
        raise AssertionError("the text was parsed")

    for name in ("_iter_urls", "_url_rules", "_weight_rules", "_twitter_text", "_full_weighted_length"):
        monkeypatch.setattr(text_module, name, forbidden)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("a" * 10_000_000, id="10MB-plain"),
        pytest.param("word. " * 2_000_000, id="12MB-sentences"),
        pytest.param("漢" * (MAX_TEXT_UTF16 + 1), id="cjk-over-bound"),
        pytest.param("a." * (MAX_TEXT_UTF16 // 2 + 1), id="dotted-over-bound"),
    ],
)
def test_text_over_the_bound_is_refused_before_anything_parses_it(nothing_parses, text: str):
    with pytest.raises(InvalidInputError, match=f"over {MAX_TEXT_UTF16:,} characters without counting"):
        check_post_text(text)


@pytest.mark.anyio
async def test_the_event_loop_check_refuses_over_long_text_before_parsing(nothing_parses):
    with pytest.raises(InvalidInputError, match="characters long"):
        await validate_post_text("a." * 5_000_000)


@pytest.mark.anyio
async def test_ascii_text_without_a_dot_needs_nothing_from_twitter_text(nothing_parses):
    await validate_post_text("a" * 280)
    with pytest.raises(InvalidInputError, match="281 weighted characters"):
        await validate_post_text("a" * 281)


def test_text_without_a_dot_is_looked_at_for_links_at_once_with_nothing_loaded(nothing_parses, monkeypatch):
    # Before any text with a "." loaded the URL rules, every plain post was priced in a worker thread.
    monkeypatch.setattr(text_module, "url_rules_loaded", lambda: False)
    assert link_check_is_fast("a plain post, no link #tag 123")
    assert has_url("a plain post, no link #tag 123") is False
    assert not link_check_is_fast("see example.com")  # this one waits for the rules, off the event loop


@pytest.fixture
def offloaded(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The functions validate_post_text hands to a worker thread (run here, in order)."""
    names: list[str] = []

    async def run_sync(function: Any, *args: Any) -> Any:
        names.append(function.__name__)
        return function(*args)

    monkeypatch.setattr(text_module.anyio.to_thread, "run_sync", run_sync)
    return names


@pytest.mark.anyio
async def test_long_non_ascii_text_is_counted_in_a_worker_thread(offloaded: list[str]):
    # 40 ZWJ families of 8 UTF-16 units each: over INLINE_UTF16, yet 80 weighted characters.
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    await validate_post_text(family * 40 + " 漢字 https://example.com")
    assert offloaded == ["_load_and_count"]
    with pytest.raises(InvalidInputError, match="X allows 280"):
        await validate_post_text("漢" * (INLINE_UTF16 + 1))
    assert offloaded == ["_load_and_count", "_load_and_count"]


@pytest.mark.anyio
async def test_short_non_ascii_text_is_counted_inline_once_twitter_text_is_loaded(offloaded: list[str]):
    text_module._load_and_count("漢字 https://例え.jp 😀")
    await validate_post_text("漢字 https://example.com 😀")
    await validate_post_text("新しいリリースを公開しました😀🎉" * 8)
    with pytest.raises(InvalidInputError, match="282 weighted characters"):
        await validate_post_text("漢" * 141)
    assert offloaded == []


@pytest.mark.anyio
async def test_the_first_short_non_ascii_text_loads_the_tables_in_a_worker_thread(
    monkeypatch: pytest.MonkeyPatch, offloaded: list[str]
):
    # A fresh cache: as in a process that has counted no non-ASCII text yet.
    monkeypatch.setattr(text_module, "_weight_rules", functools.cache(text_module._weight_rules.__wrapped__))
    await validate_post_text("漢字 😀")
    await validate_post_text("漢字 😀 again")
    assert offloaded == ["_load_and_count"]


@pytest.mark.anyio
async def test_short_text_with_a_dot_waits_for_the_tld_regex_before_counting_inline(
    monkeypatch: pytest.MonkeyPatch, offloaded: list[str]
):
    # Compiling the TLD regex takes ~50 ms: never on the event loop.
    rules = dataclasses.replace(text_module._url_rules())
    monkeypatch.setattr(text_module, "_url_rules", functools.cache(lambda: rules))
    text_module._weight_rules()
    await validate_post_text("例え.jp と x.com")
    await validate_post_text("例え.jp と y.com")
    assert offloaded == ["_load_and_count"]
    assert "tld_after_dot" in vars(rules)


@pytest.mark.anyio
async def test_the_event_loop_check_counts_exactly_what_the_sync_check_counts():
    await validate_post_text("https://example.com/" + "x" * 300 + " " + "a" * 256)
    with pytest.raises(InvalidInputError, match="281 weighted characters"):
        await validate_post_text("https://example.com " + "a" * 256 + ".")


# -- CJK and emoji ---------------------------------------------------------------------------------

EMOJI = sorted({entry.emoji for entry in emoji_list})
# Pieces of emoji sequences that are not emoji themselves, or only begin one: skin tones, ZWJ, VS16, the
# keycap mark, regional indicators, tag characters, hair components.
EMOJI_PARTS = [
    "\U0001f3fb", "\U0001f3ff", "\u200d", "\ufe0f", "\ufe0e", "\u20e3", "\U0001f1e6", "\U0001f1ff",
    "\U000e0067", "\U000e007f", "\U0001f9b0", "#", "*", "7", "\xa9", "\u2122",
]  # fmt: skip


@st.composite
def emoji_piece(draw: st.DrawFn) -> str:
    emoji = draw(st.sampled_from(EMOJI))
    # A whole emoji, or a cut one (a ZWJ sequence's head, a keycap without its mark).
    return emoji if draw(st.booleans()) else emoji[: draw(st.integers(1, max(1, len(emoji) - 1)))]


CJK_PIECES = st.one_of(
    st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF),  # CJK ideographs
    st.characters(min_codepoint=0x3040, max_codepoint=0x30FF),  # kana
    st.characters(min_codepoint=0xAC00, max_codepoint=0xD7A3),  # Hangul syllables
    st.characters(min_codepoint=0x3000, max_codepoint=0x303F),  # CJK punctuation
    st.characters(min_codepoint=0xFF00, max_codepoint=0xFFEF),  # full-width forms
    st.characters(min_codepoint=0x20000, max_codepoint=0x2A6DF),  # CJK extension B (two UTF-16 units)
)
CJK_EMOJI_TEXT = st.lists(
    st.one_of(
        emoji_piece(),
        emoji_piece(),
        CJK_PIECES,
        CJK_PIECES,
        st.sampled_from(EMOJI_PARTS),
        st.sampled_from(UNICODE_PIECES + ASCII_PIECES),
        url_like(UNICODE_PIECES),
        st.characters(blacklist_categories=("Cs",)),  # any code point at all
    ),
    max_size=160,
).map("".join)
# A fixed seed and a bounded count: parse_tweet, the reference, takes ~2 ms a text.
CJK_EXACTNESS = settings(max_examples=300, database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@seed(14)
@CJK_EXACTNESS
@given(CJK_EMOJI_TEXT)
def test_cjk_and_emoji_heavy_text_counts_exactly_as_parse_tweet(text: str):
    assert weighted_length(text) == parse_tweet(text).weightedLength


@seed(14)
@CJK_EXACTNESS
@given(CJK_EMOJI_TEXT)
def test_the_emoji_search_finds_exactly_what_twitter_text_s_finditer_finds(text: str):
    normalized = text_module._normalize(text)
    expected = {match.start(): match.group(0) for match in twitter_text_emoji.finditer(normalized)}
    assert text_module._emoji_entities(text_module._weight_rules(), normalized) == expected


def test_the_characters_that_can_begin_an_emoji_are_read_from_twitter_text_s_regex():
    rules = text_module._weight_rules()
    # None would mean the regex is tried at every character again (e.g. after a Python or twitter-text
    # upgrade changed what the parser sees): exact, but slow.
    assert rules.emoji_start is not None
    # Checked against emoji-test.txt as twitter-text parsed it, not the regex: each entry's first code point.
    firsts = {chr(int(entry.codepoint.split()[0], 16)) for entry in emoji_list}
    assert all(rules.emoji_start.match(first) for first in firsts)
    assert not any(rules.emoji_start.match(character) for character in "漢字かなカナ한국。、a.é")


@pytest.mark.parametrize(
    ("pattern", "ranges"),
    [
        pytest.param("ab|c[d-f]|[x-z0]", [(48, 48), (97, 97), (99, 99), (120, 122)], id="alts"),
        pytest.param("(?:a|b)?c", [(ord("a"), ord("c"))], id="optional-group"),
        pytest.param("a*b", [(ord("a"), ord("b"))], id="star"),
        pytest.param("a|(?=b)b", None, id="lookahead"),
        pytest.param("a|[^b]", None, id="negated-class"),
        pytest.param("a|\\w", None, id="category"),
        pytest.param("a?", None, id="matches-empty"),
        pytest.param("(?i)a", None, id="case-folding"),
        pytest.param("(?i:a)b", None, id="case-folding-group"),
    ],
)
def test_first_code_points_of_a_pattern_or_none_where_it_can_t_tell(pattern: str, ranges: list[tuple[int, int]] | None):
    assert text_module._first_code_points(re.compile(pattern)) == ranges


class CountingEmoji:
    """An emoji regex (twitter-text's, or its cut for one first character) with only ``match`` (finditer and
    search would raise), its tries counted in a list the patterns share."""

    def __init__(self, pattern: re.Pattern[str], tried: list[int]) -> None:
        self.pattern = pattern
        self.tried = tried

    def match(self, text: str, position: int) -> Any:
        self.tried.append(position)
        return self.pattern.match(text, position)


@pytest.fixture
def emoji_tries(monkeypatch: pytest.MonkeyPatch) -> CountingEmoji:
    rules = text_module._weight_rules()
    assert rules.emoji_by_start is not None
    counting = CountingEmoji(rules.emoji, [])
    by_start = {first: CountingEmoji(pattern, counting.tried) for first, pattern in rules.emoji_by_start.items()}
    counted = dataclasses.replace(rules, emoji=counting, emoji_by_start=by_start)
    monkeypatch.setattr(text_module, "_weight_rules", functools.cache(lambda: counted))
    return counting


def test_the_emoji_regex_is_never_tried_on_cjk_text(emoji_tries: CountingEmoji):
    assert weighted_length("漢字かなカナ한국。" * 30) == 540
    assert emoji_tries.tried == []


def test_the_emoji_regex_is_tried_once_at_each_emoji_and_not_inside_one(emoji_tries: CountingEmoji):
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # begins with a character that begins emoji
    text = "新しい😀リリース" + family + "🎉"
    assert weighted_length(text) == parse_tweet(text).weightedLength == 20
    assert emoji_tries.tried == [3, 8, 13]


@EXACTNESS
@given(texts(ASCII_PIECES + UNICODE_PIECES, max_size=30))
def test_the_cut_emoji_patterns_match_what_the_whole_regex_matches_at_every_position(text: str):
    rules = text_module._weight_rules()
    assert rules.emoji_by_start is not None
    for position, character in enumerate(text):
        cut = rules.emoji_by_start.get(character)
        whole = twitter_text_emoji.match(text, position)
        if cut is None:
            assert whole is None
        else:
            found = cut.match(text, position)
            assert (found and found.group()) == (whole and whole.group())


def test_every_emoji_of_twitter_text_s_list_is_matched_whole_by_its_cut_pattern():
    by_start = text_module._weight_rules().emoji_by_start
    assert by_start is not None
    for entry in emoji_list:
        for after in ("", " ", "\ufe0f", "\u200d"):
            sample = entry.emoji + after
            whole = twitter_text_emoji.match(sample)
            cut = by_start[sample[0]].match(sample)
            assert whole is not None and cut is not None and cut.group() == whole.group(), entry.emoji


@pytest.mark.parametrize(
    ("pattern", "cut"),
    [
        pytest.param("ab|ac|b", {"a": ["ab", "ac"], "b": ["b"]}, id="literals"),
        pytest.param("[a-c]x|b|[bd]", {"a": ["ax"], "b": ["bx", "b"], "c": ["cx"], "d": ["d"]}, id="classes"),
        pytest.param("a|(?=b)b", None, id="lookahead"),
        pytest.param("a|[^b]", None, id="negated-class"),
        pytest.param("a|b*", None, id="repeat"),
        pytest.param("(?i)a|b", None, id="case-folding"),
    ],
)
def test_alternatives_cut_by_first_character_or_none(pattern: str, cut: dict[str, list[str]] | None):
    found = text_module._alternatives_by_first_character(re.compile(pattern))
    if cut is None:
        assert found is None
        return
    assert found is not None and sorted(found) == sorted(cut)
    for first, matches in cut.items():
        for expected in matches:
            # Each cut pattern, at a text that starts with its character, matches as the whole pattern does.
            assert found[first].match(expected + "z").group() == re.compile(pattern).match(expected + "z").group()
