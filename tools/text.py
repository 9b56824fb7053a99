"""Post text rules: X counts weighted characters (twitter-text v3), not code points.

X's counting rules (docs.x.com "Counting Characters", xdevplatform/docs fundamentals/counting-characters.mdx):
280 weighted characters, URLs 23, emoji and CJK 2, after NFC; X points to twitter-text for the exact count.
twitter-text-parser's ``parse_tweet`` is that count, but its URL regex backtracks super-linearly on
dotted or unspaced text (``"a." * 1500`` takes seconds), and ``re`` holds the GIL while it does, so a
thread does not keep the event loop free. This module counts exactly as ``parse_tweet`` does in time
close to linear:

- text over ``MAX_TEXT_UTF16`` UTF-16 code units is refused in O(n) before anything parses it;
- URLs are found with twitter-text's own regex and rules, but the regex is only tried where a URL can
  start (``_url_match_starts``), which is where ``finditer`` would spend its time failing;
- ASCII text takes a fast path (no NFC, no emoji, every character weighs 1) that needs only the URL
  rules, and text without a "." needs nothing from twitter-text at all;
- everything else runs ``parse_tweet``'s loop with the same URL entities, and twitter-text's emoji regex
  tried only at characters that can begin an emoji (``_emoji_entities``): short text on the event loop,
  longer text in a worker thread (``validate_post_text``).
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import re
import sys
import threading
import types
import unicodedata
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import anyio.to_thread

from .errors import InvalidInputError

MAX_WEIGHTED_LENGTH = 280
URL_WEIGHT = 23
# A post is at most 280 weighted characters: 140 emoji of up to 15 UTF-16 units each stay under 2,100,
# and only links (23 whatever their length) can make longer text fit. Text over this bound is refused
# without counting. It also caps what one count costs: at the bound ~20 ms for ASCII text (counted on
# the event loop) and ~0.1 s of CPU for other text (counted in a worker thread); tests/bench/text.py.
MAX_TEXT_UTF16 = 4_096
# Non-ASCII text up to this many UTF-16 units is counted on the event loop once twitter-text's tables are
# loaded: the worst measured at this size is ~5 ms (tests/bench/text.py, "inline" rows: dotted Cyrillic
# domains, which try the TLD regex at every dot), a tenth of the 50 ms the loop may be held, while the hop
# to a worker thread costs more than counting a 280-character CJK post (~0.1 ms). A 280-character post
# is 140 units of CJK characters, or 280 of emoji of one code point each; longer text goes to a thread.
INLINE_UTF16 = 300
# X: "Posts created via the API are limited to a maximum of 1 cashtag (e.g. `$TICKER`) per post.
# Requests that include more than 1 cashtag will be rejected." Self-serve plans only; Enterprise is
# exempt (xdevplatform/docs x-api/posts/manage-tweets/integrate.mdx, "Post creation restrictions").
MAX_CASHTAGS = 1

# twitter-text's cashtag extractor, ported from js/src/regexp/validCashtag.js and cashtag.js
# (twitter/twitter-text; twitter-text-parser has no cashtag extractor). JS's `i` flag without `u` folds
# ASCII letters only, so [A-Za-z] without re.IGNORECASE (which would also fold U+017F and U+212A);
# the lookahead's \s is JavaScript's whitespace set, spelled out because Python's differs.
_SPACES = r"\x09-\x0D\x20\x85\xA0\u1680\u180E\u2000-\u200A\u2028\u2029\u202F\u205F\u3000"
_JS_WHITESPACE = r"\t\n\v\f\r \xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000\uFEFF"
_PUNCT = r"\!'#%&'\(\)*\+,\\\-\.\/:;<=>\?@\[\]\^_{|}~\$/"
_CASHTAG = re.compile(
    rf"(^|[{_SPACES}])(\$)([A-Za-z]{{1,6}}(?:[._][A-Za-z]{{1,2}})?)(?=$|[{_JS_WHITESPACE}]|[{_PUNCT}])"
)
_TLD_RUN = re.compile(r"[0-9a-zA-Z@+-]*")
_PUNYCODE_CHAR = re.compile(r"[-0-9a-z]")
# How valid_gtld and valid_cctld are written: one alternation of literal TLDs, then the lookahead.
_TLD_LIST = re.compile(r"\(\?:\(\?:(.*)\)\(\?=\[\^0-9a-zA-Z@\+-\]\|\$\)\)", re.DOTALL)
# parse_tweet's convert_line_ending.
_LINE_ENDINGS = re.compile(r"\r\n|\r|\n")

_PACKAGE = "_xcourier_twitter_text"
_package_lock = threading.Lock()


def _twitter_text(module: str) -> Any:
    """A twitter_text submodule, imported without running ``twitter_text/__init__.py``.

    That ``__init__`` imports parse_tweet, which reads the emoji tables through pkg_resources (about
    0.3 s); the URL rules need none of it. The submodules are imported under a private package name
    that shares twitter_text's directory, so their relative imports resolve and nothing is patched.
    """
    with _package_lock:
        if _PACKAGE not in sys.modules:
            spec = importlib.util.find_spec("twitter_text")
            if spec is None or spec.submodule_search_locations is None:
                raise ImportError("twitter-text-parser is not installed")
            package = types.ModuleType(_PACKAGE)
            package.__path__ = list(spec.submodule_search_locations)
            sys.modules[_PACKAGE] = package
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return importlib.import_module(f"{_PACKAGE}.{module}")


@dataclass(frozen=True)
class _UrlRules:
    """twitter-text's URL regexes and helpers (twitter_text/extract_urls.py), plus what the search needs."""

    extract_url: re.Pattern[str]
    is_valid_url: Callable[[str, str, str], bool]
    invalid_preceding_without_protocol: re.Pattern[str]
    valid_ascii_domain: re.Pattern[str]
    valid_tco_url: re.Pattern[str]
    default_protocol: str
    max_tco_slug_length: int
    # "." followed by a TLD, exactly as the domain pattern ends: (?:gtld|cctld|punycode) after `\.`.
    tld_after_dot_pattern: str
    domain_char: re.Pattern[str]
    # A "." a TLD can follow; a run of domain characters, "-", "_" and "." holding one (see _url_rules).
    tld_dot: re.Pattern[str]
    dotted_chain: re.Pattern[str]
    preceding_char: re.Pattern[str]
    protocol: re.Pattern[str]
    # valid_ascii_domain's label characters, and everything else.
    not_ascii_label_char: re.Pattern[str]
    # The ASCII TLDs of the gtld and cctld lists, lowercased, for tld_follows on ASCII text.
    ascii_tlds: frozenset[str] | None

    @functools.cached_property
    def tld_after_dot(self) -> re.Pattern[str]:
        # Compiled on first need (~50 ms): tld_follows rarely needs more than the set lookup.
        return re.compile(self.tld_after_dot_pattern, re.IGNORECASE)

    def tld_follows(self, text: str, dot: int) -> bool:
        """``tld_after_dot.match(text, dot)``, by a set lookup where that is the same answer.

        The regex tries ~1,500 alternatives (~40 us a dot). An ASCII TLD is followed, by its lookahead,
        by none of [0-9a-zA-Z@+-], so it is the whole run of those characters after the dot. A non-ASCII
        TLD needs a non-ASCII character in the text (none folds to ASCII under re.IGNORECASE:
        tests/unit/test_text_attack.py), which would stand right after that run; so unless one does, the
        set decides. Punycode (xn--[-0-9a-z]+) has no lookahead.
        """
        run = _TLD_RUN.match(text, dot + 1)
        after = run.end() if run else dot + 1
        if self.ascii_tlds is None or (after < len(text) and not text[after].isascii()):
            return self.tld_after_dot.match(text, dot) is not None
        word = run.group(0).lower() if run else ""
        return word in self.ascii_tlds or (word.startswith("xn--") and _PUNYCODE_CHAR.match(word, 4) is not None)


def _ascii_tlds(*patterns: str) -> frozenset[str] | None:
    tlds: set[str] = set()
    for pattern in patterns:
        listed = _TLD_LIST.fullmatch(pattern)
        if listed is None:
            return None  # written differently from twitter-text-parser 3.0: use the regex
        for tld in listed.group(1).split("|"):
            if re.escape(tld) != tld:
                return None
            if tld.isascii():
                tlds.add(tld.lower())
    return frozenset(tlds)


@functools.cache
def _url_rules() -> _UrlRules:
    extract = _twitter_text("extract_urls")
    regexp = "regexp."
    gtld = _twitter_text(regexp + "valid_gtld").valid_gtld.pattern
    cctld = _twitter_text(regexp + "valid_cctld").valid_cctld.pattern
    punycode = _twitter_text(regexp + "valid_punycode").valid_punycode.pattern
    domain_char = _twitter_text(regexp + "valid_domain_chars").valid_domain_chars.pattern
    preceding = _twitter_text(regexp + "valid_url_preceding_chars").valid_url_preceding_chars.pattern
    latin = _twitter_text(regexp + "latin_accent_chars").latin_accent_chars.pattern
    # The same flags as extract_url (re.IGNORECASE, Unicode), so each piece matches what it matches there.
    flags = re.IGNORECASE
    return _UrlRules(
        extract_url=_twitter_text(regexp + "extract_url").extract_url,
        is_valid_url=extract.is_valid_url,
        invalid_preceding_without_protocol=extract.invalid_url_without_protocol_preceding_chars,
        valid_ascii_domain=extract.valid_ascii_domain,
        valid_tco_url=extract.valid_tco_url,
        default_protocol=extract.default_protocol,
        max_tco_slug_length=extract.max_tco_slug_length,
        tld_after_dot_pattern=rf"\.(?:{gtld}|{cctld}|{punycode})",
        domain_char=re.compile(domain_char, flags),
        # A domain ends in "." and a TLD, and every TLD (gtld, cctld, punycode) begins with a domain
        # character: text without such a dot has no URL. Most text has none ("docs. Next"), and this
        # search is a literal scan in C.
        tld_dot=re.compile(rf"\.(?={domain_char})", flags),
        # A whole run of domain characters, "-", "_" and "." that has such a dot: the lookbehind starts
        # it only at a run's first character, so every other run costs one failed try, in C, instead
        # of a match handed to Python.
        dotted_chain=re.compile(
            rf"(?<!{domain_char}|[-_.])(?:{domain_char}|[-_.])*\.(?={domain_char})(?:{domain_char}|[-_.])*", flags
        ),
        # Without its `|^`: position 0 is always a candidate start anyway.
        preceding_char=re.compile(preceding.replace("|^)", ")"), flags),
        protocol=re.compile(r"https?:\/\/", flags),
        not_ascii_label_char=re.compile(rf"[^\-a-z0-9{latin}]", flags),
        ascii_tlds=_ascii_tlds(gtld, cctld),
    )


def _label_runs(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """The runs between dots in text[start:end], each (run start, position of the dot that ends it)."""
    runs = []
    run_start = start
    dot = text.find(".", start, end)
    while dot != -1:
        runs.append((run_start, dot))
        run_start = dot + 1
        dot = text.find(".", run_start, end)
    return runs


def _domain_starts(rules: _UrlRules, text: str) -> list[int]:
    """Every position where twitter-text's domain pattern can match, and no others.

    valid_domain is ``valid_subdomain* valid_domain_name (gtld|cctld|punycode)``: labels of domain
    characters, "-" and "_" (valid_domain_name: no "_") that start and end with a domain character, each
    followed by ".", the last "." followed by a TLD. Walking each run of such characters right to left
    finds the positions a label sequence reaching a TLD can start from; everywhere else the regex can
    only fail, which is what makes it quadratic on ``"a." * n`` or on long unspaced text.
    """
    starts: list[int] = []

    def is_domain_char(position: int) -> bool:
        return rules.domain_char.match(text, position) is not None

    for chain in rules.dotted_chain.finditer(text):
        # Whether a whole run, taken from its first character, reaches a TLD: for the run after the
        # last dot, never (a label needs its ".").
        next_run_reaches = False
        found: list[range] = []
        for run_start, dot in reversed(_label_runs(text, *chain.span())):
            if run_start == dot or not is_domain_char(dot - 1):
                next_run_reaches = False
                continue
            tld_follows = rules.tld_follows(text, dot)
            last_underscore = text.rfind("_", run_start, dot)
            if next_run_reaches:
                first = run_start
            elif tld_follows:
                first = max(run_start, last_underscore + 1)
            else:
                first = dot
            found.append(range(first, dot))
            next_run_reaches = is_domain_char(run_start) and (
                (tld_follows and last_underscore < run_start) or next_run_reaches
            )
        for positions in reversed(found):
            starts.extend(position for position in positions if is_domain_char(position))
    return starts


def _url_match_starts(rules: _UrlRules, text: str) -> list[int]:
    """Where extract_url can match, as positions of its preceding-character group.

    A match is a preceding character (or the start of the text) then the URL: an optional
    http(s):// and a domain. Positions outside this list are ones where finditer would try and fail.
    """
    domains = _domain_starts(rules, text)
    domain_set = set(domains)
    url_starts = domains + [m.start() for m in rules.protocol.finditer(text) if m.end() in domain_set]
    starts = set()
    for url_start in url_starts:
        if url_start == 0:
            starts.add(0)
        elif rules.preceding_char.match(text, url_start - 1):
            starts.add(url_start - 1)
    return sorted(starts)


def _ascii_domain_matches(rules: _UrlRules, domain: str) -> list[re.Match[str]]:
    """``valid_ascii_domain.finditer(domain)``, trying the regex only where it can match.

    valid_ascii_domain is ``(?:[-a-z0-9 latin]+\\.)+ TLD``; on a domain of many labels that ends in a
    character outside that class, finditer is quadratic as well.
    """
    starts: list[int] = []
    next_run_reaches = False
    for run_start, dot in reversed(_label_runs(domain, 0, len(domain))):
        # The label starts after the run's last character outside the class.
        first = max((m.end() for m in rules.not_ascii_label_char.finditer(domain, run_start, dot)), default=run_start)
        tld_follows = rules.tld_follows(domain, dot)
        if first < dot and (tld_follows or next_run_reaches):
            starts.extend(range(dot - 1, first - 1, -1))
        next_run_reaches = first == run_start < dot and (tld_follows or next_run_reaches)
    matches = []
    position = 0
    for start in sorted(starts):
        if start < position:
            continue
        match = rules.valid_ascii_domain.match(domain, start)
        if match:
            matches.append(match)
            position = match.end()
    return matches


def _iter_urls(text: str) -> Iterator[tuple[int, str]]:
    """twitter-text's ``extract_urls_with_indices(text)`` as (start index, url), in near-linear time.

    The body is twitter_text/extract_urls.py's, step for step; only the regex search differs, in where
    it tries (see _url_match_starts). tests/unit/test_text_attack.py holds the two equal. Entities come
    in order of their start, each complete when yielded.
    """
    if text == "" or "." not in text:
        return
    rules = _url_rules()
    if rules.tld_dot.search(text) is None:
        return
    position = 0
    for candidate in _url_match_starts(rules, text):
        if candidate < position:
            continue
        url_match = rules.extract_url.match(text, candidate)
        if url_match is None:
            continue
        position = url_match.end()
        _, before, url, protocol, domain, _, path, _ = url_match.groups()
        end_position = url_match.end()
        start_position = end_position - len(url)
        if not rules.is_valid_url(url, protocol or rules.default_protocol, domain):
            continue
        if protocol is None:
            if rules.invalid_preceding_without_protocol.match(before):
                continue
            found = [
                (start_position + ascii_domain.start(), ascii_domain.group(0))
                for ascii_domain in _ascii_domain_matches(rules, domain)
            ]
            if not found:
                continue
            if path:
                last_start, last_url = found[-1]
                found[-1] = (last_start, url.replace(domain, last_url))
            yield from found
        else:
            tco = rules.valid_tco_url.search(url)
            if tco:
                slug = tco.group(1)
                if slug and len(slug) > rules.max_tco_slug_length:
                    continue
                url = tco.group(0)
            yield start_position, url


def extract_urls(text: str) -> list[tuple[int, str]]:
    """The URLs twitter-text finds in ``text``, as (start index, url); see _iter_urls."""
    return list(_iter_urls(text))


def url_rules_loaded() -> bool:
    """Whether the URL rules are loaded, so that a look for links costs microseconds, not a regex compile."""
    return _url_rules.cache_info().currsize > 0


def link_check_is_fast(text: str) -> bool:
    """Whether has_url(text) runs without compiling a regex (0.05-0.3 s), so it may run on the event loop:
    the URL rules are loaded and, for non-ASCII text with a dot, so is the TLD regex it may need. Text
    without a dot needs neither: has_url answers at once (a link needs a ".")."""
    if "." not in text:
        return True
    if not url_rules_loaded():
        return False
    return text.isascii() or "tld_after_dot" in vars(_url_rules())


def preload() -> None:
    """Load the URL rules now (~0.1-0.3 s), e.g. in a worker thread at start-up, not on a first post."""
    _url_rules()


def utf16_length(text: str) -> int:
    """Length in UTF-16 code units, as X and twitter-text index text."""
    if text.isascii():
        return len(text)
    # surrogatepass: JSON can carry a lone surrogate, which must be measured, not crash the check.
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def has_url(text: str) -> bool:
    """Whether twitter-text finds a link in the text (X bills a post with one at a higher price)."""
    if "." not in text or utf16_length(text) > MAX_TEXT_UTF16:
        # Over the bound the post is refused before it reaches X, so it is never billed.
        return False
    return next(_iter_urls(_normalize(text)), None) is not None


def cashtags(text: str) -> list[str]:
    """The cashtags twitter-text finds (extractCashtagsWithIndices), e.g. ``["$TSLA"]``."""
    if "$" not in text:
        return []
    return ["$" + match.group(3) for match in _CASHTAG.finditer(text)]


def _normalize(text: str) -> str:
    if not text.isascii():
        text = unicodedata.normalize("NFC", text)
    return _LINE_ENDINGS.sub("\n", text) if "\r" in text else text


def _ascii_weighted_length(text: str, stop_above: int | None = None) -> tuple[int, bool]:
    """parse_tweet's weightedLength for ASCII text, and whether it is exact.

    On ASCII text NFC changes nothing, no character is an emoji (emoji-test.txt sequences all need a
    non-ASCII code point) and every code point is in the weight-100 range, so the count is the length
    with each URL counted 23. Past ``stop_above`` it stops at the next link and returns a lower bound:
    finding a link costs ~0.1 ms, and text of many links needs no exact figure to be refused.
    """
    normalized = _normalize(text)
    if "." not in normalized:
        return len(normalized), True  # a URL needs a "." (extract_urls_with_indices' own shortcut)
    length = 0
    position = 0
    # parse_tweet's loop: at a URL's start add 23 and skip len(url) characters (not its span: the two
    # differ when twitter-text rewrites a URL's domain); URLs starting inside a skipped one are skipped.
    for start, url in _iter_urls(normalized):
        if start < position:
            continue
        length += start - position + URL_WEIGHT
        position = start + len(url)
        if stop_above is not None and length > stop_above:
            return length, False
    return length + max(0, len(normalized) - position), True


@dataclass(frozen=True)
class _WeightRules:
    emoji: re.Pattern[str]
    longest_emoji: int
    options: dict[str, Any]
    # twitter-text's get_character_weight with the default options, per character (cached: ~0.1 us
    # a character instead of ~0.5; the weight depends on the code point and the options only).
    character_weight: Callable[[str], int]
    # One character that can begin a match of ``emoji`` (None: not known, try everywhere).
    emoji_start: re.Pattern[str] | None
    # ``emoji`` cut down, for each character that can begin a match, to the alternatives that begin with
    # it (None: the pattern isn't a plain alternation of sequences, use ``emoji``).
    emoji_by_start: dict[str, re.Pattern[str]] | None = None


class _UnknownConstruct(Exception):
    """The pattern uses something _first_code_points does not model."""


def _first_code_points(pattern: re.Pattern[str]) -> list[tuple[int, int]] | None:
    """The code point ranges a match of ``pattern`` can begin with, read from its parse tree.

    Covers literals, character classes of literals and ranges, alternation, groups and repeats; for
    anything else (lookaround, anchors, negated or category classes, case folding, a pattern that can
    match the empty string) it answers None, and the caller tries the regex at every position as before.
    ``re._parser`` is the stdlib's own parser (what ``re.compile`` runs); a test fails if it stops
    answering, so a Python upgrade can't silently make the count slow.
    """
    try:
        from re import _constants as sre
        from re import _parser as parser
    except ImportError:  # pragma: no cover - present in every CPython 3.11+
        return None
    if pattern.flags & re.IGNORECASE:
        return None
    ranges: list[tuple[int, int]] = []

    def sequence(items: Any) -> bool:
        """Adds the first code points of a sequence; whether all of it can match empty."""
        return all(item(op, argument) for op, argument in items)

    def item(op: Any, argument: Any) -> bool:
        if op is sre.LITERAL:
            ranges.append((argument, argument))
            return False
        if op is sre.IN:
            for member, value in argument:
                if member is sre.LITERAL:
                    ranges.append((value, value))
                elif member is sre.RANGE:
                    ranges.append(value)
                else:
                    raise _UnknownConstruct(member)
            return False
        if op is sre.BRANCH:
            return any([sequence(alternative) for alternative in argument[1]])
        if op is sre.SUBPATTERN:
            _group, add_flags, _del_flags, body = argument
            if add_flags & re.IGNORECASE:
                raise _UnknownConstruct("(?i:...)")
            return sequence(body)
        if op in (sre.MAX_REPEAT, sre.MIN_REPEAT, getattr(sre, "POSSESSIVE_REPEAT", None)):
            low, _high, body = argument
            return sequence(body) or low == 0
        raise _UnknownConstruct(op)

    try:
        can_be_empty = sequence(parser.parse(pattern.pattern, pattern.flags))
    except (_UnknownConstruct, re.error, TypeError, ValueError):
        return None
    if can_be_empty:
        return None
    return _merged(ranges)


def _merged(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for low, high in sorted(ranges):
        if merged and low <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], high))
        else:
            merged.append((low, high))
    return merged


def _alternatives_by_first_character(pattern: re.Pattern[str]) -> dict[str, re.Pattern[str]] | None:
    """For each character that can begin a match of ``pattern``, a pattern that matches at a position
    holding that character exactly what ``pattern`` matches there; None unless ``pattern`` is an
    alternation whose alternatives are sequences of literals and classes of literals and ranges (no flags
    but Unicode).

    At a position only the alternatives whose first item takes the character there can match, and the
    first of them that matches is what the whole alternation matches; the first character being known,
    each is written as "any character, then the rest of the alternative". twitter-text's emoji pattern
    is ~2,500 sequences and a class of single code points: a try of it is ~5 us, of the handful of
    sequences that share a first character well under 1.
    """
    try:
        from re import _constants as sre
        from re import _parser as parser
    except ImportError:  # pragma: no cover - present in every CPython 3.11+
        return None
    if pattern.flags & ~re.UNICODE:
        return None

    def members(op: Any, argument: Any) -> list[tuple[int, int]]:
        if op is sre.LITERAL:
            return [(argument, argument)]
        if op is sre.IN and all(member in (sre.LITERAL, sre.RANGE) for member, _ in argument):
            return [(value, value) if member is sre.LITERAL else value for member, value in argument]
        raise _UnknownConstruct(op)

    def written(op: Any, argument: Any) -> str:
        ranges = members(op, argument)
        if op is sre.LITERAL:
            return rf"\U{argument:08x}"
        return "[" + "".join(rf"\U{low:08x}-\U{high:08x}" for low, high in ranges) + "]"

    try:
        tree = parser.parse(pattern.pattern, pattern.flags)
        if len(tree.data) != 1 or tree.data[0][0] is not sre.BRANCH:
            return None
        rests: dict[str, list[str]] = {}
        for alternative in tree.data[0][1][1]:
            if not alternative.data:
                return None  # an empty alternative matches anywhere
            (first_op, first_argument), *others = alternative.data
            rest = "".join(written(op, argument) for op, argument in others)
            for low, high in members(first_op, first_argument):
                for point in range(low, high + 1):
                    rests.setdefault(chr(point), []).append(rest)
    except (_UnknownConstruct, re.error, TypeError, ValueError):
        return None
    compiled: dict[tuple[str, ...], re.Pattern[str]] = {}
    for texts in rests.values():
        key = tuple(texts)
        if key not in compiled:
            # An empty rest (a single code point) ends the alternation where it stands, as in the original.
            compiled[key] = re.compile("(?s:.)" + ("(?:" + "|".join(texts) + ")" if texts != [""] else ""))
    return {first: compiled[tuple(texts)] for first, texts in rests.items()}


def _start_class(ranges: list[tuple[int, int]] | None) -> re.Pattern[str] | None:
    if ranges is None:
        return None
    return re.compile("[" + "".join(rf"\U{low:08x}-\U{high:08x}" for low, high in ranges) + "]")


@functools.cache
def _weight_rules() -> _WeightRules:
    emoji = _twitter_text("regexp.emoji")
    options = _twitter_text("config").config["defaults"]
    get_character_weight = _twitter_text("get_character_weight").get_character_weight

    # Bounded: text can hold any of 1.1 million code points.
    @functools.lru_cache(maxsize=4096)
    def character_weight(character: str) -> int:
        return int(get_character_weight(character, options))

    # ~35 ms to parse the ~92,000-character pattern and cut it, once, with the ~0.3 s import of the emoji tables.
    # The characters that begin a match are the cut's keys; only a pattern that can't be cut is parsed again
    # for them, by the general reader.
    by_start = _alternatives_by_first_character(emoji.emoji)
    firsts = _merged((ord(first), ord(first)) for first in by_start) if by_start else _first_code_points(emoji.emoji)
    return _WeightRules(
        emoji=emoji.emoji,
        # The pattern is an alternation of emoji-test.txt's sequences and a class of single code points.
        longest_emoji=max(len(entry.emoji) for entry in emoji.emoji_list),
        options=options,
        character_weight=character_weight,
        emoji_start=_start_class(firsts),
        emoji_by_start=by_start,
    )


# Without emoji_start, one emoji search covers this many characters (~2 ms on non-ASCII letters, 28 us
# each), so that the search, which holds the GIL while it runs, lets the event loop in often even from a
# worker thread.
_EMOJI_WINDOW = 64


def _emoji_entities(rules: _WeightRules, text: str) -> dict[int, str]:
    """``{m.start(): m.group(0) for m in emoji.finditer(text)}``, trying the regex only where it can match.

    finditer tries the regex at each position from the end of the last match; a match can only begin
    at a character of emoji_start, so trying exactly those positions (skipping any inside the last
    match) finds the same matches. Each try is ~5 us; CJK ideographs and kana are never tried.
    """
    if rules.emoji_start is not None:
        found: dict[int, str] = {}
        position = 0
        by_start = rules.emoji_by_start
        for candidate in rules.emoji_start.finditer(text):
            start = candidate.start()
            if start < position:
                continue
            emoji = rules.emoji if by_start is None else by_start.get(candidate.group(), rules.emoji)
            match = emoji.match(text, start)
            if match is not None:
                found[start] = match.group(0)
                position = match.end()
        return found
    return _emoji_entities_windowed(rules, text)


def _emoji_entities_windowed(rules: _WeightRules, text: str) -> dict[int, str]:
    """The same, searched a window at a time.

    A match starting at p is decided by text[p:p + longest_emoji] (no lookaround), so searching with
    endpos that far past the window finds exactly finditer's matches that start inside it.
    """
    found: dict[int, str] = {}
    position = 0
    while position < len(text):
        window_end = min(position + _EMOJI_WINDOW, len(text))
        match = rules.emoji.search(text, position, min(window_end + rules.longest_emoji, len(text)))
        if match is None or match.start() >= window_end:
            position = window_end
            continue
        found[match.start()] = match.group(0)
        position = match.end()
    return found


def _full_weighted_length(text: str) -> int:
    # twitter_text/parse_tweet.py's loop, step for step, with URL entities from _iter_urls.
    rules = _weight_rules()
    options = rules.options
    scale = options["scale"]
    normalized = _normalize(text)
    urls = dict(_iter_urls(normalized))
    emojis = _emoji_entities(rules, normalized)
    weighted = 0
    index = 0
    while index < len(normalized):
        if index in urls:
            weighted += options["transformed_url_length"] * scale
            index += len(urls[index]) - 1
        elif options["emoji_parsing_enabled"] and index in emojis:
            weighted += options["default_weight"]
            index += len(emojis[index]) - 1
        else:
            weighted += rules.character_weight(normalized[index])
        index += 1
    return int(weighted / scale)


def weighted_length(text: str) -> int:
    """Length as X counts it: URLs 23, CJK and emoji 2, most other characters 1, after NFC.

    Exactly twitter-text's ``parse_tweet(text).weightedLength``. Near-linear in the text's length, but
    callers bound the length first (check_post_text does).
    """
    if text.isascii():
        return _ascii_weighted_length(text)[0]
    return _full_weighted_length(text)


def _post_length(text: str) -> tuple[int, bool]:
    """The weighted length and whether it is exact (past the limit, ASCII text may stop early)."""
    if text.isascii():
        return _ascii_weighted_length(text, stop_above=MAX_WEIGHTED_LENGTH)
    return _full_weighted_length(text), True


def _check_size(text: str) -> None:
    if len(text) <= MAX_TEXT_UTF16 and text.isascii():
        return
    units = utf16_length(text)
    if units > MAX_TEXT_UTF16:
        raise InvalidInputError(
            f"The post text is {units:,} characters long (UTF-16 code units); X allows {MAX_WEIGHTED_LENGTH} "
            f"weighted characters (links count 23, emoji and CJK characters 2), and xcourier refuses text "
            f"over {MAX_TEXT_UTF16:,} characters without counting it. Shorten it or split it into several posts."
        )


def _check_cashtags(text: str, max_cashtags: int | None) -> None:
    if max_cashtags is None:
        return
    found = cashtags(text)
    if len(found) > max_cashtags:
        raise InvalidInputError(
            f"The post text has {len(found)} cashtags ({', '.join(found)}); X accepts at most {max_cashtags} "
            f"cashtag per post created through the API on self-serve plans (pay-per-use, Basic, Pro) and "
            f"rejects the post otherwise. Keep one and write the other symbols without the $."
        )


def _check_length(measured: tuple[int, bool]) -> None:
    length, exact = measured
    if length <= MAX_WEIGHTED_LENGTH:
        return
    at_least = "" if exact else "at least "
    raise InvalidInputError(
        f"The post text is {at_least}{length} weighted characters; X allows {MAX_WEIGHTED_LENGTH} "
        f"(links count 23, emoji and CJK characters count 2). Shorten it by {at_least}"
        f"{length - MAX_WEIGHTED_LENGTH} or split it into several posts."
    )


def check_post_text(text: str, *, max_cashtags: int | None = MAX_CASHTAGS) -> None:
    """Refuse text X would refuse for its length or cashtags. ``max_cashtags=None`` for Enterprise."""
    _check_size(text)
    _check_cashtags(text, max_cashtags)
    _check_length(_post_length(text))


def _ready_to_count_inline(text: str) -> bool:
    """Whether counting this non-ASCII text needs nothing loaded or compiled first (all cached)."""
    if len(text) > INLINE_UTF16 or utf16_length(text) > INLINE_UTF16:
        return False
    if not _weight_rules.cache_info().currsize:
        return False
    # No NFC composition yields a ".", so a text without one needs no URL rules (_iter_urls' shortcut).
    return "." not in text or (url_rules_loaded() and "tld_after_dot" in vars(_url_rules()))


def _load_and_count(text: str) -> tuple[int, bool]:
    """_post_length, after loading what counting such text needs, so the next short one runs inline."""
    _weight_rules()
    if "." in text:
        _url_rules().tld_after_dot  # noqa: B018 - compiles the cached TLD regex (~50 ms), once
    return _post_length(text)


async def validate_post_text(text: str, *, max_cashtags: int | None = MAX_CASHTAGS) -> None:
    """check_post_text for the event loop: nothing here holds the loop for long.

    The size and cashtag checks are linear and run inline. ASCII text is counted inline, once the URL
    rules are loaded (compiling twitter-text's regexes takes ~0.1 s of Python code, done in a worker
    thread, which lets the loop run between bytecodes). Other text needs NFC and the emoji tables: up to
    INLINE_UTF16 UTF-16 units it is counted inline once those are loaded (a few ms at worst), longer text
    (up to ~0.1 s at the size bound) in a worker thread, where each regex call is short.
    """
    _check_size(text)
    _check_cashtags(text, max_cashtags)
    if text.isascii():
        if "." in text and not _url_rules.cache_info().currsize:
            await anyio.to_thread.run_sync(_url_rules)
        _check_length(_post_length(text))
        return
    if _ready_to_count_inline(text):
        _check_length(_post_length(text))
        return
    _check_length(await anyio.to_thread.run_sync(_load_and_count, text))
