"""The wheelhouse: wheels of xcourier's build requirements and of every dependency, made ahead of the
test run (with the network) so that the packaging and bundle tests build and install offline.

The suite talks only to servers it starts on loopback. Building a wheel with build isolation and
installing it into a fresh venv would otherwise download setuptools, wheel and every dependency from
PyPI, so those tests take them from here with `pip --no-index --find-links`. `.ci/run` makes it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
DEFAULT = ROOT / "build" / "wheelhouse"
# A test switch (tests/conftest.py keeps it through the isolation fixture): another folder than DEFAULT.
VARIABLE = "XCOURIER_WHEELHOUSE"
# The build requirements are named beside `.` because pip wheel puts only runtime dependencies in the
# folder, and an isolated build needs pyproject.toml's [build-system] requires too.
COMMAND = '.venv/bin/pip wheel --wheel-dir build/wheelhouse . "setuptools>=68" wheel'


def location() -> Path:
    configured = os.environ.get(VARIABLE)
    return Path(configured).resolve() if configured else DEFAULT


def offline_pip_env(wheelhouse: Path, base: dict[str, str] | None = None) -> dict[str, str]:
    """`base` (default: this process's environment) with every pip started in it (also build's isolated
    one) held to the wheelhouse: pip reads its options from PIP_* variables."""
    env = dict(os.environ if base is None else base)
    env.update({"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheelhouse), "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    return env


def required() -> Path:
    """The wheelhouse, or a skip that says how to make it (a failure under CI, which must make it)."""
    wheelhouse = location()
    if not any(wheelhouse.glob("*.whl")):
        where = f"${VARIABLE}={wheelhouse}" if os.environ.get(VARIABLE) else str(wheelhouse)
        missing = f"no wheelhouse at {where}"
        if os.environ.get("CI"):
            pytest.fail(f"{missing}; .ci/run must make it: {COMMAND}")
        pytest.skip(f"{missing}; make it with: {COMMAND}")
    return wheelhouse


def stale_hint(output: str) -> str:
    """pip's own words, then what to do when it could not find a distribution offline."""
    return f"{output}\n(if a dependency or build requirement changed, remake the wheelhouse: {COMMAND})"
