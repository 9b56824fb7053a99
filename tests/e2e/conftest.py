"""Helpers to run `xcourier` as a real process, as a user or an MCP client would."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

XCOURIER = [sys.executable, "-m", "xcourier.server"]
# Upper bound on waiting for a process to announce itself; it normally takes about a second.
STARTUP_TIMEOUT = 60.0


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("XCOURIER_")}
    env.update(extra)
    return env


@dataclass
class Running:
    process: subprocess.Popen[str]
    stderr_lines: list[str]


def wait_for_line(lines: queue.Queue[str | None], marker: str, seen: list[str]) -> str:
    """Read lines until one contains `marker`; bounded by STARTUP_TIMEOUT, no polling."""
    while True:
        try:
            line = lines.get(timeout=STARTUP_TIMEOUT)
        except queue.Empty:
            raise AssertionError(f"no line with {marker!r} within {STARTUP_TIMEOUT}s; saw: {seen}") from None
        if line is None:
            raise AssertionError(f"process exited before printing {marker!r}; saw: {seen}")
        seen.append(line)
        if marker in line:
            return line


def _pump(stream: object, lines: queue.Queue[str | None], sink: list[str]) -> None:
    for line in iter(stream.readline, ""):  # type: ignore[attr-defined]
        lines.put(line)
        sink.append(line)
    lines.put(None)


@pytest.fixture
def http_server() -> Iterator[tuple[str, Running]]:
    """`xcourier serve --sandbox --transport http --port 0`, yielding its MCP URL."""
    yield from _serve_http()


@pytest.fixture
def chatty_http_server() -> Iterator[str]:
    """The same, with bob posting every 0.2 s and the watcher polling as often."""
    for url, _ in _serve_http("--sandbox-chatter", "0.2", "--poll-interval", "0.2"):
        yield url


def _serve_http(*extra: str) -> Iterator[tuple[str, Running]]:
    process = subprocess.Popen(
        [*XCOURIER, "serve", "--sandbox", "--transport", "http", "--port", "0", *extra],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(),
    )
    lines: queue.Queue[str | None] = queue.Queue()
    stderr_lines: list[str] = []
    threading.Thread(target=_pump, args=(process.stderr, lines, stderr_lines), daemon=True).start()
    try:
        line = wait_for_line(lines, "serving MCP over streamable HTTP at ", [])
        url = line.split(" at ", 1)[1].strip()
        yield url, Running(process, stderr_lines)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=20)
