"""`xcourier sandbox --plan` and `xcourier serve --sandbox --sandbox-plan`."""

from __future__ import annotations

import json
import queue
import subprocess
import threading

import httpx
import pytest

from xcourier.server.cli import build_parser, settings_from_args
from xcourier.server.settings import SettingsError

from ..e2e.conftest import XCOURIER, child_env, wait_for_line


@pytest.mark.parametrize("plan", ["pay-per-use", "basic", "pro", "enterprise"])
def test_sandbox_takes_each_plan(plan: str) -> None:
    assert build_parser().parse_args(["sandbox", "--plan", plan]).plan == plan


def test_sandbox_plays_pay_per_use_unless_told() -> None:
    assert build_parser().parse_args(["sandbox"]).plan == "pay-per-use"


def test_an_unknown_plan_names_the_choices(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["sandbox", "--plan", "free"])
    assert "invalid choice: 'free' (choose from 'pay-per-use', 'basic', 'pro', 'enterprise')" in capsys.readouterr().err


def test_serve_passes_the_sandbox_plan_into_the_settings() -> None:
    args = build_parser().parse_args(["serve", "--sandbox", "--sandbox-plan", "enterprise"])
    assert settings_from_args(args, {}).sandbox_plan == "enterprise"
    default = build_parser().parse_args(["serve", "--sandbox"])
    assert settings_from_args(default, {}).sandbox_plan == "pay-per-use"


def test_a_sandbox_plan_without_the_sandbox_is_refused() -> None:
    args = build_parser().parse_args(["serve", "--sandbox-plan", "pro"])
    with pytest.raises(SettingsError, match="only with --sandbox"):
        settings_from_args(args, {})


def test_the_sandbox_command_runs_the_plan_it_was_given() -> None:
    process = subprocess.Popen(
        [*XCOURIER, "sandbox", "--plan", "enterprise"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=child_env(),
    )
    try:
        lines: queue.Queue[str | None] = queue.Queue()

        def pump() -> None:
            assert process.stdout is not None
            for line in iter(process.stdout.readline, ""):
                lines.put(line)
            lines.put(None)

        threading.Thread(target=pump, daemon=True).start()
        announced = json.loads(wait_for_line(lines, "base_url", []))
        assert announced["plan"] == "enterprise"
        with httpx.Client(base_url=announced["base_url"]) as admin:
            assert admin.get("/_sandbox/plan").json()["plan"] == "enterprise"
    finally:
        process.terminate()
        process.wait(timeout=20)
