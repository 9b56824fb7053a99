"""Hosted mode when its Redis is not there: refused at start in one line, and while running, one log
line per retry (the traceback only with --log-level DEBUG), never a stream of tracebacks."""

from __future__ import annotations

import contextlib
import queue
import re
import socket
import subprocess
import threading
from pathlib import Path

import anyio
import pytest

from xcourier.server.sandbox import PUBLIC_CLIENT_ID, SandboxServer

from ..e2e.conftest import XCOURIER, _pump, child_env, wait_for_line
from ..redis_server import redis_server
from .conftest import STORE_KEY, Instance
from .test_fleet import Subscriber, tokens_for

pytestmark = pytest.mark.anyio

# A log line as configure_logging writes it: anything else on stderr is a traceback's continuation.
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) \S+: ")


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed on leaving: nothing listens there


def hosted_args(sandbox: SandboxServer, store: str) -> list[str]:
    return [
        *XCOURIER,
        "serve",
        "--transport",
        "http",
        "--port",
        "0",
        "--auth",
        "x",
        "--api-base-url",
        sandbox.base_url,
        "--store",
        store,
        "--poll-interval",
        "0.2",
        "--no-search",
        "--lease-ttl",
        "1.5",
    ]


def hosted_env() -> dict[str, str]:
    return child_env(XCOURIER_X_CLIENT_ID=PUBLIC_CLIENT_ID, XCOURIER_STORE_KEY=STORE_KEY)


def test_hosted_mode_with_no_redis_at_start_is_one_line_and_exit_code_4(sandbox: SandboxServer, closed_port: int):
    store = f"redis://127.0.0.1:{closed_port}/0"
    completed = subprocess.run(
        hosted_args(sandbox, store), capture_output=True, text=True, timeout=60, env=hosted_env()
    )
    assert completed.returncode == 4, completed.stderr
    assert "Traceback" not in completed.stderr
    last = completed.stderr.strip().splitlines()[-1]
    assert last.startswith(f"xcourier: The store {store} can't be reached (")
    assert "Start Redis there" in last


async def test_a_redis_that_goes_away_is_one_log_line_per_retry(sandbox: SandboxServer, admin, tmp_path: Path):
    folder = tmp_path / "redis"
    folder.mkdir()
    with contextlib.ExitStack() as redis_running:
        url = redis_running.enter_context(redis_server(folder))
        process = subprocess.Popen(
            hosted_args(sandbox, url), stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=hosted_env()
        )
        lines: queue.Queue[str | None] = queue.Queue()
        instance = Instance(url="", process=process)
        threading.Thread(target=_pump, args=(process.stderr, lines, instance.stderr), daemon=True).start()
        try:
            line = wait_for_line(lines, "serving MCP over streamable HTTP at ", [])
            instance.url = line.split(" at ", 1)[1].strip()
            subscriber = Subscriber(instance, await tokens_for(instance, admin, "alice"), legacy=True)
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(subscriber.run)
                with anyio.fail_after(60):
                    await subscriber.ready.wait()
                # Redis stops under a running instance that watches bob: its leases, cursors and news feed.
                stopped_at = len(instance.stderr)
                redis_running.close()
                seen = await anyio.to_thread.run_sync(retries, lines)
                assert process.poll() is None, "the server must ride out a Redis outage"
                subscriber.stop.set()
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=20)
    after = instance.stderr[stopped_at:]
    assert not any("Traceback" in line for line in after), "".join(after)
    strays = [line for line in after if not LOG_LINE.match(line)]
    assert not strays, f"lines that are not one log line each: {strays[:5]}"
    assert all("can't be reached" in line for line in seen if "could not renew leases" in line)
    logs = "".join(instance.stderr)
    assert not [s for s in sandbox.sandbox.issued_secrets() if s in logs] and STORE_KEY not in logs


def retries(lines: queue.Queue[str | None]) -> list[str]:
    """Lines until the news feed has retried three times (a growing delay: 1, 2, 4 s) and the watcher has
    failed to renew its lease at least once; bounded by STARTUP_TIMEOUT per line."""
    seen: list[str] = []
    while sum("fleet: the news feed is down" in line for line in seen) < 3 or not any(
        "could not renew leases" in line for line in seen
    ):
        wait_for_line(lines, "", seen)
    return seen
