"""Post text counting, before (twitter-text's parse_tweet) and after (tools/text.py).

`python -m tests.bench.text [--slow]` from the repository root. Prints five tables and writes
tests/bench/results/text.json:

- per-call time of the count for createPost-sized texts (37 and 280 weighted characters, ASCII and
  CJK/emoji), before and after, interleaved, medians and min-max;
- pathological inputs: the longest single hold of the event loop while validate_post_text runs
  (a heartbeat task's longest gap), and parse_tweet on the same text (``--slow`` runs the minute-long
  ones; otherwise smaller sizes show its growth);
- the slowest short non-ASCII texts found, which validate_post_text counts on the event loop (up to
  INLINE_UTF16 UTF-16 units): the loop holds their count costs;
- the first count in a fresh process (the lazy twitter-text import), before and after.

Timings only; the tests assert behaviour (tests/unit/test_text_attack.py).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any

import anyio

from xcourier.tools import text as text_module

from .common import table, write_results

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from twitter_text import parse_tweet

URL = "https://example.com/a/path"
SIZED = {
    "37 ASCII": "Shipping the new release today, yay!!",
    "37 ASCII + link": "New release: " + URL,
    "280 ASCII + link": ("Release notes for version two, with fixes and docs. " * 6)[:257] + URL[:-3],
    "37 CJK/emoji": "新しいリリースを公開しました😀🎉",
    "280 CJK/emoji": "新しいリリースを公開しました。" * 8 + "😀🎉👨\u200d👩\u200d👧" * 4 + "https://例え.jp/",
}
PATHOLOGICAL = {
    '"a." * 1500': "a." * 1500,
    '"a." * 2048': "a." * 2048,
    '"é" * 4000 + " x.com"': "é" * 4000 + " x.com",
    '"a." * 1500 + "ж.com"': "a." * 1500 + "ж.com",
    '"x.com " * 680': "x.com " * 680,
    "4,096 CJK": "漢" * 4096,
    "10 MB plain": "a" * 10_000_000,
    "4 MB sentences": "word. " * 700_000,
}
# parse_tweet on these takes from seconds to minutes: measured with --slow, else on smaller sizes.
SLOW = {'"a." * 1500', '"a." * 2048', '"é" * 4000 + " x.com"', '"a." * 1500 + "ж.com"', "10 MB plain", "4 MB sentences"}
GROWTH = {'"a." * 100': "a." * 100, '"a." * 200': "a." * 200, '"a." * 400': "a." * 400}


def _fit(text: str) -> str:
    while text_module.utf16_length(text) > text_module.INLINE_UTF16:
        text = text[:-1]
    return text


# Non-ASCII text short enough to be counted on the event loop, the costliest kinds found by a random search
# over repeated pieces: dotted non-ASCII domains (the TLD regex tried at each dot), digits and emoji (each a
# place an emoji can begin: the emoji regex is tried there), and the benchmark's post.
INLINE = {
    '"ж.рф_" * 60': _fit("ж.рф_" * 60),
    '"ж.рф." * 60': _fit("ж.рф." * 60),
    '"1.рф " * 60': _fit("1.рф " * 60),
    '"é.co" * 75': _fit("é.co" * 75),
    '"1" * 299 + "é"': "1" * 299 + "é",
    '"😀" * 150': "😀" * 150,
    '"漢" * 300': "漢" * 300,
    "280 CJK/emoji post": _fit(SIZED["280 CJK/emoji"]),
}


def per_call_ms(function: Callable[[str], Any], text: str, repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        function(text)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def check(text: str) -> None:
    # An over-long text is refused: that is the work measured.
    with contextlib.suppress(Exception):
        text_module.check_post_text(text, max_cashtags=None)


def sized_rows(rounds: int) -> list[list[Any]]:
    rows = []
    for name, text in SIZED.items():
        before: list[float] = []
        after: list[float] = []
        for _ in range(rounds):  # interleaved, so machine noise lands on both sides
            before += per_call_ms(parse_tweet, text, 5)
            after += per_call_ms(check, text, 5)
        b, a = statistics.median(before), statistics.median(after)
        rows.append(
            [
                name,
                text_module.weighted_length(text),
                f"{b:.3f} ({min(before):.3f}-{max(before):.3f})",
                f"{a:.3f} ({min(after):.3f}-{max(after):.3f})",
                f"{b / a:.1f}x",
            ]
        )
    return rows


async def longest_loop_hold_ms(text: str) -> float:
    """The longest gap between a heartbeat's wake-ups while validate_post_text runs."""
    gaps: list[float] = []
    done = anyio.Event()

    async def heartbeat() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await anyio.sleep(0)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    async def validate() -> None:
        with contextlib.suppress(Exception):
            await text_module.validate_post_text(text, max_cashtags=None)
        done.set()

    async with anyio.create_task_group() as group:
        group.start_soon(heartbeat)
        group.start_soon(validate)
    return max(gaps) * 1000


def pathological_rows(slow: bool) -> list[list[Any]]:
    rows = []
    for name, text in PATHOLOGICAL.items():
        holds = [anyio.run(longest_loop_hold_ms, text) for _ in range(5)]
        # The median is the method's figure; the max includes the machine's scheduling noise.
        hold = f"{statistics.median(holds):.1f} (max {max(holds):.1f})"
        after = statistics.median(per_call_ms(check, text, 3))
        if name in SLOW and not slow:
            before = "skipped (--slow)"
        else:
            before = f"{statistics.median(per_call_ms(parse_tweet, text, 1)):.1f}"
        rows.append([name, f"{len(text):,}", before, f"{after:.2f}", hold])
    for name, text in GROWTH.items():
        before = statistics.median(per_call_ms(parse_tweet, text, 1))
        after = statistics.median(per_call_ms(check, text, 3))
        rows.append([name, f"{len(text):,}", f"{before:.1f}", f"{after:.2f}", "-"])
    return rows


# The first count in a fresh process, after `import xcourier.tools.text` (not timed): before, the old
# weighted_length imported twitter_text on first use; after, check_post_text loads what the text needs.
FIRST_CALL = {
    "before: import twitter_text + parse_tweet": "import warnings; warnings.simplefilter('ignore'); "
    "from twitter_text import parse_tweet; parse_tweet(TEXT)",
    "after: check_post_text": "T.check_post_text(TEXT)",
}
FIRST_TEXTS = {
    "37 ASCII": SIZED["37 ASCII"],
    "37 ASCII + link": SIZED["37 ASCII + link"],
    "37 CJK/emoji": SIZED["37 CJK/emoji"],
}
PROGRAM = """import sys, time
import xcourier.tools.text as T
TEXT = sys.argv[1]
started = time.perf_counter()
{statement}
print((time.perf_counter() - started) * 1000)
print(int("twitter_text.regexp.emoji" in sys.modules or "_xcourier_twitter_text.regexp.emoji" in sys.modules))
print(int("_xcourier_twitter_text.extract_urls" in sys.modules or "twitter_text.extract_urls" in sys.modules))
"""


def inline_rows() -> list[list[Any]]:
    rows = []
    for name, text in INLINE.items():
        assert text_module._ready_to_count_inline(text), name
        holds = [anyio.run(longest_loop_hold_ms, text) for _ in range(5)]
        samples = per_call_ms(check, text, 20)
        rows.append(
            [
                name,
                text_module.utf16_length(text),
                f"{statistics.median(samples):.2f} (max {max(samples):.2f})",
                f"{statistics.median(holds):.1f} (max {max(holds):.1f})",
            ]
        )
    return rows


def first_call_rows(rounds: int) -> list[list[Any]]:
    rows = []
    for text_name, text in FIRST_TEXTS.items():
        for name, statement in FIRST_CALL.items():
            samples = []
            loaded = ""
            for _ in range(rounds):
                program = PROGRAM.format(statement=statement)
                out = subprocess.run([sys.executable, "-c", program, text], capture_output=True, text=True, check=True)
                milliseconds, emoji, urls = out.stdout.split()
                samples.append(float(milliseconds))
                loaded = "emoji tables + URL rules" if emoji == "1" else "URL rules" if urls == "1" else "nothing"
            spread = f"{statistics.median(samples):.0f} ({min(samples):.0f}-{max(samples):.0f})"
            rows.append([text_name, name, spread, loaded])
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slow", action="store_true", help="also time parse_tweet on the minute-long inputs")
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args(argv)
    text_module._url_rules().tld_after_dot  # noqa: B018 - compiled, as after the first dotted non-ASCII post
    text_module._weight_rules()

    sized = sized_rows(args.rounds)
    print(table(["text", "weighted", "before ms (min-max)", "after ms (min-max)", "speed-up"], sized, "Per call"))
    pathological = pathological_rows(args.slow)
    print()
    print(
        table(
            ["input", "chars", "before: parse_tweet ms", "after: check ms", "after: longest loop hold ms, median of 5"],
            pathological,
            "Pathological inputs (goal: no loop hold over 50 ms)",
        )
    )
    inline = inline_rows()
    print()
    print(
        table(
            ["input", "UTF-16 units", "check ms (max)", "longest loop hold ms, median of 5 (max)"],
            inline,
            f"Short non-ASCII text, counted on the event loop (up to {text_module.INLINE_UTF16} UTF-16 units)",
        )
    )
    first = first_call_rows(5)
    print()
    print(
        table(["text", "first call in a fresh process", "ms incl. imports (min-max)", "loaded"], first, "First count")
    )
    path = write_results(
        "text", {"per_call": sized, "pathological": pathological, "inline": inline, "first_call": first}
    )
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
