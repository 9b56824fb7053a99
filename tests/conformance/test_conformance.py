"""The official MCP conformance suite against `xcourier serve --sandbox --transport http`.

Which of the suite's server scenarios apply to xcourier, and why the others don't, is recorded in
tests/conformance/SCENARIOS.md; the sets below must match it. Needs `npm install --prefix
tests/conformance` (.ci/run does it); skipped without it, except in CI, where it fails.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.conformance import runner
from tests.e2e.conftest import _serve_http

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not runner.installed() and not os.environ.get("CI"),
        reason="needs `npm install --prefix tests/conformance` (.ci/run does it)",
    ),
]

# Scenarios that apply to any MCP server over streamable HTTP, xcourier included: each must pass.
APPLICABLE = [
    "server-initialize",
    "ping",
    "tools-list",
    "resources-list",
    "server-sse-multiple-streams",
    "dns-rebinding-protection",
    "logging-set-level",
    "resources-subscribe",
    "resources-unsubscribe",
]

# Applicable, failing because of the server; the fixes are in SCENARIOS.md. strict: the day a fix
# lands the test XPASSes and fails, so the entry moves up to APPLICABLE.
KNOWN_FAILURES: dict[str, str] = {}

# Scenarios written for the suite's own test server (its test_* tools, test://* resources,
# test_* prompts) or for capabilities xcourier does not offer; SCENARIOS.md says why for each.
NOT_APPLICABLE = {
    "completion-complete",
    "tools-call-simple-text",
    "tools-call-image",
    "tools-call-audio",
    "tools-call-embedded-resource",
    "tools-call-mixed-content",
    "tools-call-with-logging",
    "tools-call-error",
    "tools-call-with-progress",
    "tools-call-sampling",
    "tools-call-elicitation",
    "json-schema-2020-12",
    "elicitation-sep1034-defaults",
    "server-sse-polling",
    "elicitation-sep1330-enums",
    "resources-read-text",
    "resources-read-binary",
    "resources-templates-read",
    "prompts-list",
    "prompts-get-simple",
    "prompts-get-with-args",
    "prompts-get-embedded-resource",
    "prompts-get-with-image",
}


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    """One `xcourier serve --sandbox --transport http --port 0` for the module (each scenario opens its
    own MCP session)."""
    if not runner.installed():
        pytest.fail("the conformance suite is not installed: run `npm install --prefix tests/conformance`")
    for url, _ in _serve_http():
        assert url.startswith("http://127.0.0.1:"), url
        yield url


def test_every_scenario_of_the_suite_is_classified():
    """A new version of the suite with new scenarios fails here until SCENARIOS.md and this file say
    whether they apply."""
    if not runner.installed():
        pytest.fail("the conformance suite is not installed: run `npm install --prefix tests/conformance`")
    known = set(APPLICABLE) | set(KNOWN_FAILURES) | NOT_APPLICABLE
    assert len(known) == len(APPLICABLE) + len(KNOWN_FAILURES) + len(NOT_APPLICABLE), "a scenario is listed twice"
    assert set(runner.server_scenarios()) == known


@pytest.mark.parametrize(
    "scenario",
    [
        *APPLICABLE,
        *(
            pytest.param(name, marks=pytest.mark.xfail(strict=True, raises=AssertionError, reason=why))
            for name, why in KNOWN_FAILURES.items()
        ),
    ],
)
def test_conformance_scenario_passes(server_url: str, scenario: str):
    result = runner.run_scenario(server_url, scenario)
    assert result.passed, result.summary()
