"""Run the benchmarks: `python -m tests.bench.run [NAME ...]` from the repository root.

NAME is any of latency, coldstart, refresh, memory, watcher, push, hosted, text, store (default: all, in
that order); issue 14's table, with its goal column, is printed last from the latest results.
Each prints its table and writes tests/bench/results/<name>.json; a summary of every table is
written to tests/bench/results/summary.md. Everything runs on 127.0.0.1 against sandboxes the
benchmarks start themselves (hosted also a redis-server on a unix socket, and is skipped without
one); nothing reaches X. About 6 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import time

import anyio

from . import coldstart, hosted, latency, memory, push, refresh, store, text, watcher
from .common import RESULTS, load_note, machine
from .issue import issue_table

BENCHMARKS = {
    "latency": lambda: anyio.run(latency.run),
    "coldstart": lambda: anyio.run(coldstart.run),
    "refresh": lambda: refresh.run(),
    "memory": lambda: memory.run(2),
    "watcher": lambda: anyio.run(watcher.run),
    "push": lambda: anyio.run(push.run),
    "hosted": lambda: anyio.run(hosted.run),
    "text": lambda: text.main([]),
    "store": lambda: anyio.run(store.run),
}


class Tee(io.TextIOBase):
    def __init__(self, *streams: io.TextIOBase) -> None:
        self.streams = streams

    def write(self, text: str) -> int:
        for stream in self.streams:
            stream.write(text)
        return len(text)

    def flush(self) -> None:
        for stream in self.streams:
            stream.flush()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", metavar="NAME", help=", ".join(BENCHMARKS))
    names = parser.parse_args().names or list(BENCHMARKS)
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    info = machine()
    captured = io.StringIO()
    header = (
        f"machine: {info['cpu']}, {info['cores']} cores, Python {info['python']}, mcp {info['mcp']}, "
        f"{info['platform']}\n"
    )
    started = time.perf_counter()
    with contextlib.redirect_stdout(Tee(sys.stdout, captured)):  # type: ignore[type-var]
        print(header)
        print(f"before: {load_note()}\n")
        for name in names:
            began = time.perf_counter()
            BENCHMARKS[name]()
            print(f"({name}: {time.perf_counter() - began:.0f} s; {load_note()})\n")
        print(issue_table())
        print(f"\nall done in {time.perf_counter() - started:.0f} s")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "summary.md").write_text(captured.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
