"""What a new user meets first: bad flags, busy ports, a terminal, noisy loggers. One line, no traceback."""

from __future__ import annotations

import logging
import os
import pty
import queue
import socket
import subprocess
import threading
from collections.abc import Iterator

import pytest

from xcourier.server import cli

from ..e2e.conftest import XCOURIER, child_env, wait_for_line


def _run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*XCOURIER, *args], capture_output=True, text=True, timeout=60, env=child_env(**env), stdin=subprocess.DEVNULL
    )


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_a_port_that_is_not_a_number_is_named_plainly():
    completed = _run("serve", "--port", "abc")
    assert completed.returncode == 2
    assert "'abc' is not a port number" in completed.stderr and "_port" not in completed.stderr


@pytest.mark.parametrize("source", ["flag", "env"])
def test_a_zero_poll_interval_is_refused_not_read_as_the_default(source: str):
    if source == "flag":
        completed = _run("serve", "--sandbox", "--poll-interval", "0")
    else:
        completed = _run("serve", "--sandbox", XCOURIER_POLL_INTERVAL="0")
    assert completed.returncode == 2
    assert "above 0" in completed.stderr and "Traceback" not in completed.stderr


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (("serve", "--sandbox", "--transport", "http", "--port"), "--port"),
        (("sandbox", "--port"), "--port"),
        (("serve", "--sandbox", "--sandbox-port"), "--sandbox-port"),
    ],
)
def test_a_port_in_use_is_one_line_naming_it(busy_port: int, args: tuple[str, ...], flag: str):
    completed = _run(*args, str(busy_port))
    assert completed.returncode == 3
    assert "Traceback" not in completed.stderr
    assert f"{flag} {busy_port}: address already in use" in completed.stderr


def test_either_client_id_variable_works_for_login_and_hosted_mode(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("XCOURIER_X_CLIENT_ID", "from-hosted-name")
    assert cli._environ()["XCOURIER_CLIENT_ID"] == "from-hosted-name"
    monkeypatch.delenv("XCOURIER_X_CLIENT_ID")
    monkeypatch.setenv("XCOURIER_CLIENT_ID", "from-login-name")
    monkeypatch.setenv("XCOURIER_CLIENT_SECRET", "s")
    env = cli._environ()
    assert env["XCOURIER_X_CLIENT_ID"] == "from-login-name" and env["XCOURIER_X_CLIENT_SECRET"] == "s"


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root, ours = logging.getLogger(), logging.getLogger("xcourier")
    saved = (root.handlers[:], root.level, ours.level)
    yield
    root.handlers[:], root.level = saved[0], saved[1]
    ours.setLevel(saved[2])


@pytest.mark.usefixtures("restore_logging")
def test_third_party_info_lines_stay_off_stderr_unless_debug():
    cli.configure_logging("INFO")
    assert logging.getLogger("httpx2").getEffectiveLevel() == logging.WARNING
    assert logging.getLogger("mcp.server").getEffectiveLevel() == logging.WARNING
    assert logging.getLogger("xcourier.watcher").getEffectiveLevel() == logging.INFO
    cli.configure_logging("DEBUG")
    assert logging.getLogger("httpx2").getEffectiveLevel() == logging.DEBUG


@pytest.mark.slow
def test_serve_on_a_terminal_says_it_is_waiting_for_a_client_and_how_to_try_it():
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [*XCOURIER, "serve", "--sandbox"],
        stdin=terminal,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(),
    )
    os.close(terminal)
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        for line in iter(process.stderr.readline, ""):
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    try:
        hint = wait_for_line(lines, "waiting for an MCP client", [])
        assert "xcourier demo" in hint and "xcourier connect" in hint
    finally:
        process.terminate()
        process.wait(timeout=20)
        os.close(controller)


def test_serve_on_a_pipe_prints_no_hint():
    completed = subprocess.run(
        [*XCOURIER, "serve", "--sandbox"], input="", capture_output=True, text=True, timeout=60, env=child_env()
    )
    assert "waiting for an MCP client" not in completed.stderr


@pytest.mark.slow
def test_auth_login_on_a_port_in_use_is_one_line_naming_it(busy_port: int):
    completed = _run("auth", "login", "--sandbox", "--no-browser", "--port", str(busy_port))
    assert completed.returncode == 1
    assert "Traceback" not in completed.stderr
    assert f"Can't listen on 127.0.0.1:{busy_port}" in completed.stderr
    assert len(completed.stderr.strip().splitlines()) == 1, completed.stderr
