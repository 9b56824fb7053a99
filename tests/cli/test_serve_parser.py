"""`xcourier serve` builds only its own parser (start-up time); it must parse exactly as the full one."""

from __future__ import annotations

import pytest

from xcourier.server.cli import build_parser

COMMAND_LINES = [
    ["serve"],
    ["serve", "--sandbox", "--sandbox-plan", "enterprise", "--poll-interval", "5", "--no-search"],
    ["serve", "--transport", "http", "--port", "0", "--host", "127.0.0.1", "--read-only"],
    ["serve", "--toolsets", "all", "--exclude-tools", "likePost", "--confirm", "writes", "--dry-run"],
    ["serve", "--max-writes-per-hour", "3", "--daily-budget", "1.5", "--watch", "poll"],
    ["serve", "--store", "redis://127.0.0.1:1/0", "--auth", "x", "--public-url", "https://x.example"],
]


@pytest.mark.parametrize("argv", COMMAND_LINES, ids=lambda argv: " ".join(argv[1:]) or "bare")
def test_the_serve_only_parser_parses_like_the_full_one(argv: list[str]) -> None:
    assert vars(build_parser(serve_only=True).parse_args(argv)) == vars(build_parser().parse_args(argv))


def test_the_serve_only_parser_refuses_what_the_full_one_refuses() -> None:
    for parser in (build_parser(serve_only=True), build_parser()):
        with pytest.raises(SystemExit):
            parser.parse_args(["serve", "--port", "abc"])
