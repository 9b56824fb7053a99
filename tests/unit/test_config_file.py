"""The optional config file: read when it exists, and no cost to start-up when it doesn't."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from xcourier.server.config_file import ConfigError, load_config


def test_without_a_config_file_tomllib_is_never_imported(tmp_path: Path):
    # A fresh interpreter: this test process may have imported tomllib already.
    program = (
        "import sys\n"
        "from xcourier.server.config_file import load_config\n"
        "print(load_config(), 'tomllib' in sys.modules)\n"
    )
    env = {**os.environ, "XCOURIER_CONFIG": str(tmp_path / "absent.toml"), "HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.split() == ["{}", "False"]


def test_an_existing_config_file_is_read(tmp_path: Path):
    path = tmp_path / "config.toml"
    path.write_text('[serve]\ntoolsets = ["default", "reading"]\n')
    assert load_config({"XCOURIER_CONFIG": str(path)}) == {"serve": {"toolsets": ["default", "reading"]}}


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        pytest.param(b"[serve\n", "Expected ']'", id="bad-toml"),
        pytest.param(b'[auth]\nclient_id = "\xff"\n', "codec can't decode", id="not-utf-8"),
    ],
)
def test_an_unreadable_config_file_is_named_with_its_problem(tmp_path: Path, content: bytes, problem: str):
    path = tmp_path / "config.toml"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=f"Can't read the config file {re.escape(str(path))}: .*{problem}"):
        load_config({"XCOURIER_CONFIG": str(path)})


def test_a_config_path_that_is_a_directory_is_named(tmp_path: Path):
    with pytest.raises(ConfigError, match=f"Can't read the config file {re.escape(str(tmp_path))}: .*Is a directory"):
        load_config({"XCOURIER_CONFIG": str(tmp_path)})
