"""Run the official MCP conformance suite (npm @modelcontextprotocol/conformance) against a URL.

The suite needs Node >= 22 (it imports `fs.globSync`); package.json here pins the npm package
`node@22`, whose binary lands in node_modules/.bin/node, so the machine's own node can stay older.
Install both with `npm install --prefix tests/conformance` (.ci/run does).

As a script, it starts `xcourier serve --sandbox --transport http --port 0` (or uses --url) and
runs the scenarios given (default: all of the suite's server scenarios), printing one line each:

    python -m tests.conformance.runner [--url URL] [SCENARIO ...]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).parent
NODE = HERE / "node_modules" / ".bin" / "node"
CLI = HERE / "node_modules" / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"
# One scenario takes well under a second against the sandbox; this only bounds a hang.
SCENARIO_TIMEOUT = 60.0


def installed() -> bool:
    return NODE.is_file() and CLI.is_file()


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("XCOURIER_")}
    # Everything the suite talks to is on loopback; never route it through a proxy.
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost,::1"
    env["NO_COLOR"] = "1"
    return env


def _cli(*args: str, timeout: float = SCENARIO_TIMEOUT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(NODE), str(CLI), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=_env(),
        cwd=HERE,
        stdin=subprocess.DEVNULL,
    )


def server_scenarios() -> list[str]:
    """Every server scenario this version of the suite knows (`conformance list --server`)."""
    completed = _cli("list", "--server")
    if completed.returncode != 0:
        raise RuntimeError(f"conformance list failed: {completed.stderr}")
    names = []
    for line in completed.stdout.splitlines():
        line = line.strip()
        if line.startswith("- "):
            names.append(line[2:].split(" [", 1)[0].strip())
    return names


@dataclass
class ScenarioResult:
    scenario: str
    returncode: int
    checks: list[dict] = field(default_factory=list)
    output: str = ""

    def with_status(self, *statuses: str) -> list[dict]:
        return [check for check in self.checks if check.get("status") in statuses]

    @property
    def passed(self) -> bool:
        """The suite's own rule (exit 0: no FAILURE check), and at least one SUCCESS check."""
        return self.returncode == 0 and not self.with_status("FAILURE") and bool(self.with_status("SUCCESS"))

    def summary(self) -> str:
        lines = [f"{self.scenario}: exit {self.returncode}"]
        for check in self.checks:
            if check.get("status") in ("SUCCESS", "FAILURE", "WARNING"):
                message = check.get("errorMessage") or ""
                lines.append(f"  {check['status']} {check.get('id')} {message}".rstrip())
        if not self.checks:
            lines.append(self.output[-4000:])
        return "\n".join(lines)


def run_scenario(url: str, scenario: str, timeout: float = SCENARIO_TIMEOUT) -> ScenarioResult:
    """`conformance server --url URL --scenario S`, its checks read from the checks.json it writes."""
    with tempfile.TemporaryDirectory(prefix="conformance-") as out:
        completed = _cli("server", "--url", url, "--scenario", scenario, "--output-dir", out, timeout=timeout)
        checks: list[dict] = []
        for path in sorted(Path(out).glob("*/checks.json")):
            checks.extend(json.loads(path.read_text()))
    return ScenarioResult(scenario, completed.returncode, checks, completed.stdout + completed.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="an MCP streamable HTTP URL (default: start the xcourier sandbox server)")
    parser.add_argument("--verbose", action="store_true", help="print every check of every scenario")
    parser.add_argument("scenarios", nargs="*", help="scenario names (default: all server scenarios)")
    args = parser.parse_args(argv)
    if not installed():
        print("the conformance suite is not installed: npm install --prefix tests/conformance", file=sys.stderr)
        return 2
    scenarios = args.scenarios or server_scenarios()

    def run_all(url: str) -> int:
        failed = 0
        for scenario in scenarios:
            result = run_scenario(url, scenario)
            failed += not result.passed
            print(f"{'PASS' if result.passed else 'FAIL'}  {scenario}")
            if args.verbose or not result.passed:
                print("\n".join("      " + line for line in result.summary().splitlines()[1:]))
        return 1 if failed else 0

    if args.url:
        return run_all(args.url)
    from tests.e2e.conftest import _serve_http

    server = _serve_http()
    url, _ = next(server)
    try:
        return run_all(url)
    finally:
        server.close()  # stops the server


if __name__ == "__main__":
    sys.exit(main())
