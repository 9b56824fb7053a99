"""The suite never reads or writes the user's own xcourier files (login store, audit trail, config)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from xcourier.server.auth.store import default_store_path
from xcourier.server.config_file import config_path

from .conftest import _TEST_SWITCHES, REAL_USER_DIRS


def test_every_test_has_its_own_home_and_xdg_dirs(isolated_user_dirs: Path) -> None:
    assert os.environ["HOME"] == str(isolated_user_dirs)
    assert os.environ["HOME"] != REAL_USER_DIRS["HOME"]
    assert default_store_path().is_relative_to(isolated_user_dirs)
    assert config_path().is_relative_to(isolated_user_dirs)


def test_no_xcourier_setting_from_the_shell_reaches_a_test() -> None:
    assert not [name for name in os.environ if name.startswith("XCOURIER_") and name not in _TEST_SWITCHES]


def test_a_spawned_xcourier_sees_the_test_home_not_the_users(isolated_user_dirs: Path) -> None:
    script = (
        "from xcourier.server.auth.store import default_store_path;"
        "from xcourier.server.config_file import config_path;"
        "print(default_store_path()); print(config_path())"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60)
    store, config = (Path(line) for line in out.stdout.split())
    assert store.is_relative_to(isolated_user_dirs)
    assert config.is_relative_to(isolated_user_dirs)
