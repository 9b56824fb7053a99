"""xcourier's entry point inside the Claude Desktop bundle (.mcpb); bundle/build.py copies it to server/main.py.

The host runs it as the manifest's `mcp_config` says, with the user's settings substituted into the
arguments: `python3 -I server/main.py --sandbox=true --account= --read-only=false --confirm=none`.
It turns those into `xcourier serve` flags and serves over stdio from the packages vendored in
server/lib. Standard library only until the version check has passed: the vendored packages include
compiled extensions built for one Python version.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
LIB = HERE / "lib"
# Written by bundle/build.py: the interpreter the compiled packages in lib/ were built for.
TARGET = HERE / "target.json"

EXIT_WRONG_PYTHON = 3
EXIT_BAD_SETTING = 2


# The settings as the manifest's user_config titles them, so an error names what the user sees.
TITLES = {
    "sandbox": "Use the built-in X sandbox",
    "account": "X account",
    "read_only": "Read-only",
    "confirm": "Ask before acting",
}
CONFIRM_CHOICES = ("none", "destructive", "writes")


class SettingError(Exception):
    """An extension setting has a value xcourier can't use; the message names the setting."""


def _unsubstituted(value: str) -> bool:
    # A host that has no value for a setting leaves `${user_config.NAME}` as it is (mcpb's
    # replaceVariables in dist/shared/config.js keeps an unknown variable verbatim): read it as unset.
    return value.startswith("${") and value.endswith("}")


def _text(value: str) -> str:
    value = value.strip()
    return "" if _unsubstituted(value) else value


def _boolean(name: str, value: str, default: bool) -> bool:
    # mcpb substitutes a boolean setting as the string "true" or "false" (getMcpConfigForManifest in
    # @anthropic-ai/mcpb dist/shared/config.js: "Convert booleans to 'true'/'false' strings as per spec").
    text = _text(value).lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    if not text:  # unset: the manifest's default
        return default
    raise SettingError(f'the setting "{TITLES[name]}" is {value!r}: use true or false.')


def parse_settings(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="xcourier (Claude Desktop bundle)",
        description="Serve xcourier over stdio with the bundle's settings (as the manifest's mcp_config passes them).",
    )
    parser.add_argument("--sandbox", default="", metavar="true|false")
    parser.add_argument("--account", default="", metavar="NAME")
    parser.add_argument("--read-only", default="", metavar="true|false")
    parser.add_argument("--confirm", default="", metavar="|".join(CONFIRM_CHOICES))
    raw = parser.parse_args(argv)
    confirm = _text(raw.confirm).lower()
    if confirm and confirm not in CONFIRM_CHOICES:
        raise SettingError(
            f'the setting "{TITLES["confirm"]}" is {raw.confirm!r}: use one of {", ".join(CONFIRM_CHOICES)}.'
        )
    return argparse.Namespace(
        sandbox=_boolean("sandbox", raw.sandbox, default=True),
        account=_text(raw.account),
        read_only=_boolean("read_only", raw.read_only, default=False),
        confirm=confirm,
    )


def serve_arguments(settings: argparse.Namespace) -> list[str]:
    """The `xcourier` command line for these settings.

    Safety switches are only ever added, never turned off: with read-only unticked or confirm at
    `none`, the user's own XCOURIER_* environment and config file still decide, as they do for
    `xcourier serve` run by hand.
    """
    arguments = ["serve"]
    if settings.sandbox:
        # The sandbox always acts as its own signed-in user, so an account name has nothing to pick.
        arguments.append("--sandbox")
    elif settings.account:
        arguments += ["--account", settings.account]
    if settings.read_only:
        arguments.append("--read-only")
    if settings.confirm and settings.confirm != "none":
        arguments += ["--confirm", settings.confirm]
    return arguments


def wrong_python() -> str | None:
    """Why this interpreter can't load the vendored packages, or None when it can."""
    try:
        target = json.loads(TARGET.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return f"this bundle is incomplete ({TARGET.name}: {exc}); rebuild it with `python3 bundle/build.py`."
    running = {
        "python": f"{sys.version_info.major}.{sys.version_info.minor}",
        "platform": sys.platform,
        "machine": platform.machine().lower(),
    }
    if running == {key: str(target.get(key, "")).lower() for key in running}:
        return None
    return (
        f"this bundle was built for Python {target.get('python')} on {target.get('platform')} "
        f"({target.get('machine')}), but was started with Python {running['python']} on {running['platform']} "
        f"({running['machine']}) at {sys.executable}. Install Python {target.get('python')} as `python3`, or build "
        "the bundle with the Python you have: `python3 bundle/build.py` in a clone of xcourier."
    )


def main(argv: Sequence[str] | None = None) -> int:
    problem = wrong_python()
    if problem:
        print(f"xcourier: {problem}", file=sys.stderr)
        return EXIT_WRONG_PYTHON
    try:
        settings = parse_settings(sys.argv[1:] if argv is None else argv)
    except SettingError as exc:
        print(f"xcourier: {exc} Change it in Claude Desktop's settings for this extension.", file=sys.stderr)
        return EXIT_BAD_SETTING
    # The vendored packages go first, so nothing installed for this interpreter can shadow them
    # (the manifest also starts Python with -I: no user site-packages, no PYTHONPATH).
    sys.path.insert(0, str(LIB))
    from xcourier.server.cli import main as xcourier

    return xcourier(serve_arguments(settings))


if __name__ == "__main__":
    raise SystemExit(main())
