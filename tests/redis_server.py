"""A redis-server of its own on a unix socket, for tests and benchmarks (.ci/run installs the Debian package)."""

from __future__ import annotations

import contextlib
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def redis_server(folder: Path) -> Iterator[str]:
    """Start it in `folder` (no persistence), yield its unix:// URL, stop it on exit."""
    socket_path = folder / "redis.sock"
    process = subprocess.Popen(
        [
            "redis-server",
            "--port",
            "0",
            "--unixsocket",
            str(socket_path),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(folder),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        stdout = process.stdout
        assert stdout is not None
        for _ in range(200):  # bounded: redis says so within a few lines of starting
            line = stdout.readline()
            if not line or "ready to accept connections" in line.lower():
                break
        if not socket_path.exists():
            raise RuntimeError("redis-server did not start")
        # Keep draining its log so a full pipe can never stall it.
        threading.Thread(target=lambda: [None for _ in iter(stdout.readline, "")], daemon=True).start()
        yield f"unix://{socket_path}"
    finally:
        process.terminate()
        process.wait(timeout=20)
