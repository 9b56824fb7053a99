"""The optional config file (TOML): defaults for flags, e.g. the X app's client id and secret.

[auth]
client_id = "..."
client_secret = "..."          # confidential clients only
scopes = ["tweet.read", ...]

[serve]
toolsets = ["default", "reading"]   # or "posting,engagement"; see `xcourier serve --help`
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

ENV_CONFIG = "XCOURIER_CONFIG"


class ConfigError(ValueError):
    """The config file can't be read; the message names the file and the problem."""


def config_path(environ: dict[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    if env.get(ENV_CONFIG):
        return Path(env[ENV_CONFIG]).expanduser()
    from platformdirs import user_config_dir

    return Path(user_config_dir("xcourier", appauthor=False)) / "config.toml"


def load_config(environ: dict[str, str] | None = None) -> dict[str, Any]:
    path = config_path(environ)
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"Can't read the config file {path}: {exc}") from None
    # Imported only when there is a file to parse: ~3 ms of every server's start-up otherwise.
    import tomllib

    with handle:
        try:
            return tomllib.load(handle)
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"Can't read the config file {path}: {exc}") from None


def section(config: dict[str, Any], name: str) -> dict[str, Any]:
    value = config.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError(f"The config file's [{name}] must be a table.")
    return value
