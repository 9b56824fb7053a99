"""Shared helpers for the benchmarks: statistics, tables, JSON results, spawning, the sandbox.

Everything here talks only to processes the benchmark starts on 127.0.0.1.
"""

from __future__ import annotations

import atexit
import json
import math
import os
import platform
import queue
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
RESULTS = Path(__file__).resolve().parent / "results"
BENCH = Path(__file__).resolve().parent
PYTHON = sys.executable
# Upper bound on waiting for any process to announce itself.
STARTUP_TIMEOUT = 60.0


def xcourier_command() -> list[str]:
    """The installed `xcourier` console script next to this interpreter, as a user runs it."""
    script = Path(PYTHON).with_name("xcourier")
    if script.exists():
        return [str(script)]
    found = shutil.which("xcourier")
    return [found] if found else [PYTHON, "-m", "xcourier.server"]


# Where the benchmarks' child processes keep their bytecode (PYTHONPYCACHEPREFIX).
PYCACHE = RESULTS / "pycache"


_home: Path | None = None


def bench_home() -> Path:
    """A HOME of the benchmarks' own (removed at exit): a server they start reads no config file and
    writes no store in the user's real HOME or XDG dirs."""
    global _home
    if _home is None:
        _home = Path(tempfile.mkdtemp(prefix="xcourier-bench-home-"))
        atexit.register(shutil.rmtree, _home, ignore_errors=True)
    return _home


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("XCOURIER_")}
    env.setdefault("PYTHONPATH", str(ROOT))
    home = bench_home()
    env["HOME"] = str(home)
    for name, folder in (
        ("XDG_CONFIG_HOME", ".config"),
        ("XDG_DATA_HOME", ".local/share"),
        ("XDG_STATE_HOME", ".local/state"),
        ("XDG_CACHE_HOME", ".cache"),
    ):
        env[name] = str(home / folder)
    # Bytecode as an installed package has it (pip compiles at install): with PYTHONDONTWRITEBYTECODE, every
    # module edited since its .pyc was written is compiled from source at every spawn (~5 ms for a large
    # one), which charged a developer's work tree to xcourier's start-up and not to the floor's (the SDK's
    # files are never edited). A cache of the benchmarks' own, written by the first (warm-up) spawn, keeps
    # the work tree's __pycache__ untouched.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    env.update(extra)
    return env


# ---- statistics ---------------------------------------------------------------------------------


def percentile(samples: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(samples)
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def summary(samples: Sequence[float]) -> dict[str, float]:
    return {
        "n": len(samples),
        "median": statistics.median(samples) if samples else math.nan,
        "p99": percentile(samples, 99),
        "min": min(samples) if samples else math.nan,
        "max": max(samples) if samples else math.nan,
        "mean": statistics.fmean(samples) if samples else math.nan,
    }


def fmt(value: Any, digits: int = 2) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:.{digits}f}"
    return str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], title: str = "") -> str:
    cells = [[fmt(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |"
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in cells]
    return "\n".join(([f"### {title}", ""] if title else []) + [line, sep, *body])


def machine() -> dict[str, Any]:
    model = platform.processor() or ""
    try:
        for text in Path("/proc/cpuinfo").read_text().splitlines():
            if text.startswith("model name"):
                model = text.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        from importlib.metadata import version

        mcp_version = version("mcp")
    except Exception:
        mcp_version = "?"
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "mcp": mcp_version,
    }


def load_average() -> list[float]:
    """The 1, 5 and 15-minute load averages: on a 2-core machine shared with other work, above ~1.5 the
    benchmark competes for a core and its ratios spread."""
    return [round(x, 2) for x in os.getloadavg()]


def load_note() -> str:
    one, five, fifteen = load_average()
    return f"load average {one:.2f} / {five:.2f} / {fifteen:.2f} (1 / 5 / 15 min) on {os.cpu_count()} cores"


def write_results(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {
        "benchmark": name,
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "load_at_end": load_average(),
        **data,
    }
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return path


# ---- processes ----------------------------------------------------------------------------------


class Process:
    """A child process whose stdout/stderr lines are pumped into queues; stopped on exit."""

    def __init__(self, argv: Sequence[str], *, env: dict[str, str] | None = None, stdin: Any = None) -> None:
        self.popen = subprocess.Popen(
            list(argv),
            stdin=subprocess.PIPE if stdin is None else stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env or child_env(),
            cwd=ROOT,
        )
        self.out: queue.Queue[str | None] = queue.Queue()
        self.err: queue.Queue[str | None] = queue.Queue()
        self.stderr_lines: list[str] = []
        threading.Thread(target=self._pump, args=(self.popen.stdout, self.out, None), daemon=True).start()
        threading.Thread(target=self._pump, args=(self.popen.stderr, self.err, self.stderr_lines), daemon=True).start()

    @staticmethod
    def _pump(stream: Any, lines: queue.Queue[str | None], sink: list[str] | None) -> None:
        for line in iter(stream.readline, ""):
            lines.put(line)
            if sink is not None:
                sink.append(line)
        lines.put(None)

    def wait_line(self, marker: str, *, stream: str = "out", timeout: float = STARTUP_TIMEOUT) -> str:
        lines = self.out if stream == "out" else self.err
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(
                    f"no line with {marker!r} in {timeout}s; stderr: {''.join(self.stderr_lines)[-2000:]}"
                )
            try:
                line = lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                raise RuntimeError(f"process exited before {marker!r}; stderr: {''.join(self.stderr_lines)[-2000:]}")
            if marker in line:
                return line

    def send(self, text: str) -> None:
        assert self.popen.stdin is not None
        self.popen.stdin.write(text)
        self.popen.stdin.flush()

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)

    def __enter__(self) -> Process:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class SandboxProcess(Process):
    """`python -m tests.bench.sandbox_proc`: a sandbox in its own process (its own GIL)."""

    def __init__(self, *, limit: int = 10**9, ttl: float = 7200.0, plan: str | None = None) -> None:
        super().__init__(
            [
                PYTHON,
                "-m",
                "tests.bench.sandbox_proc",
                "--limit",
                str(limit),
                "--ttl",
                str(ttl),
                *(["--plan", plan] if plan else []),
            ]
        )
        info = json.loads(self.wait_line("base_url"))
        self.base_url: str = info["base_url"]
        self.token: str = info["access_token"]
        self.user_id: str = info["user_id"]
        self.username: str = info["username"]

    def stop(self) -> None:
        if self.popen.poll() is None and self.popen.stdin is not None:
            try:
                self.popen.stdin.close()  # the sandbox exits when its stdin closes
                self.popen.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                pass
        super().stop()


def rss_bytes(pid: int) -> int:
    """Resident set size of a process (psutil if installed, else /proc)."""
    try:
        import psutil

        return int(psutil.Process(pid).memory_info().rss)
    except ImportError:
        for text in Path(f"/proc/{pid}/status").read_text().splitlines():
            if text.startswith("VmRSS:"):
                return int(text.split()[1]) * 1024
        raise RuntimeError("no VmRSS") from None
