"""`auth login` and a confidential client's secret: read where no other user of the machine can see it."""

from __future__ import annotations

import queue
import subprocess
import threading
from pathlib import Path

import httpx
import pytest

from xcourier.server.sandbox import CONFIDENTIAL_CLIENT_ID, CONFIDENTIAL_CLIENT_SECRET

from ..e2e.conftest import XCOURIER, child_env, wait_for_line

pytestmark = pytest.mark.slow


def _login(sandbox_url: str, store: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            *XCOURIER,
            *("auth", "login", "--no-browser", "--port", "0", "--client-id", CONFIDENTIAL_CLIENT_ID),
            *("--api-base-url", sandbox_url, "--store", str(store), *extra),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(),
    )


def _stderr_lines(process: subprocess.Popen[str], seen: list[str]) -> queue.Queue[str | None]:
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        for line in iter(process.stderr.readline, ""):  # type: ignore[union-attr]
            seen.append(line)
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def _process_table_entry(pid: int) -> bytes:
    """What any local user reads about the process: its command line (ps, top, /proc/PID/cmdline)."""
    return Path(f"/proc/{pid}/cmdline").read_bytes()


def test_a_secret_read_from_stdin_never_reaches_the_process_list(sandbox, tmp_path: Path):
    process = _login(sandbox.base_url, tmp_path / "s.db", "--client-secret-stdin")
    seen: list[str] = []
    try:
        assert process.stdin is not None
        process.stdin.write(CONFIDENTIAL_CLIENT_SECRET + "\n")
        process.stdin.close()
        lines = _stderr_lines(process, seen)
        url = wait_for_line(lines, "/i/oauth2/authorize?", []).strip()
        # While the login waits for the browser (the longest it lives), the process table has no secret.
        assert CONFIDENTIAL_CLIENT_SECRET.encode() not in _process_table_entry(process.pid)
        httpx.get(httpx.get(url).headers["location"])  # the browser: X's page, then the callback
        process.wait(timeout=60)
        stdout = process.stdout.read()  # type: ignore[union-attr]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=20)
    # The sandbox takes a confidential client's code only with its secret: logging in proves it was read.
    assert process.returncode == 0, "".join(seen)
    assert "Logged in as @" in stdout
    assert "warning" not in "".join(seen)


def test_a_secret_on_the_command_line_is_warned_about(sandbox, tmp_path: Path):
    process = _login(sandbox.base_url, tmp_path / "s.db", "--client-secret", CONFIDENTIAL_CLIENT_SECRET)
    seen: list[str] = []
    try:
        lines = _stderr_lines(process, seen)
        wait_for_line(lines, "/i/oauth2/authorize?", [])
    finally:
        process.kill()
        process.wait(timeout=20)
    warning = next(line for line in seen if "warning" in line)
    assert "process list" in warning and "--client-secret-stdin" in warning
    assert CONFIDENTIAL_CLIENT_SECRET not in "".join(seen)  # the warning names the flag, not the secret


def test_an_empty_secret_on_stdin_is_a_clear_error(tmp_path: Path):
    completed = subprocess.run(
        [*XCOURIER, "auth", "login", "--no-browser", "--client-id", "c", "--client-secret-stdin"],
        input="\n",
        capture_output=True,
        text=True,
        timeout=60,
        env=child_env(),
    )
    assert completed.returncode == 1
    assert "--client-secret-stdin: standard input gave no secret" in completed.stderr
    assert "Traceback" not in completed.stderr
