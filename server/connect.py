"""`xcourier connect CLIENT`: write (or print) an MCP client's configuration for this xcourier.

Each client keeps its servers in a JSON file of its own, under a key of its own. The entry names the
absolute path of the running `xcourier`, because clients spawn servers without the user's shell (no
activated venv, often a reduced PATH), so a bare `xcourier` fails with ENOENT.

Where each client looks, and the shape it reads:
- VS Code: `.vscode/mcp.json` in the workspace, servers under "servers", stdio entries with
  "type": "stdio", "command", "args".
  https://code.visualstudio.com/docs/copilot/reference/mcp-configuration
- Cursor: `~/.cursor/mcp.json` for every project (`.cursor/mcp.json` for one), servers under "mcpServers",
  entries with "command" and "args".  https://cursor.com/docs/mcp
- Claude Desktop: `claude_desktop_config.json` in `~/Library/Application Support/Claude/` (macOS) or
  `%APPDATA%\\Claude\\` (Windows), servers under "mcpServers".
  https://modelcontextprotocol.io/docs/develop/connect-local-servers
  Linux has no official build; community builds read `~/.config/Claude/` (inferred, not documented).
- Claude Code: project scope is `.mcp.json` at the project root, servers under "mcpServers" (stdio is the
  default "type"); `claude mcp add NAME -- COMMAND ARGS...` writes the same entry to the user's config.
  https://code.claude.com/docs/en/mcp
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

ClientName = Literal["vscode", "cursor", "claude-desktop", "claude-code"]
CLIENTS: tuple[ClientName, ...] = ("vscode", "cursor", "claude-desktop", "claude-code")


class ConnectError(Exception):
    """The configuration can't be written as asked; the message says what to do instead."""


@dataclass(frozen=True)
class ClientConfig:
    client: ClientName
    path: Path
    key: str  # the top-level object the client reads its servers from
    typed: bool  # whether stdio entries carry "type": "stdio"
    next_step: str


def config_for(client: ClientName, *, cwd: Path, home: Path, environ: Mapping[str, str]) -> ClientConfig:
    """Where `client` reads its MCP servers from, and in which shape."""
    if client == "vscode":
        return ClientConfig(
            client,
            cwd / ".vscode" / "mcp.json",
            "servers",
            True,
            "In VS Code, open this folder and run 'MCP: List Servers' from the Command Palette to start it.",
        )
    if client == "cursor":
        return ClientConfig(
            client,
            home / ".cursor" / "mcp.json",
            "mcpServers",
            False,
            "Restart Cursor (or reload its MCP settings) to pick it up.",
        )
    if client == "claude-desktop":
        return ClientConfig(
            client,
            _claude_desktop_dir(home, environ) / "claude_desktop_config.json",
            "mcpServers",
            False,
            "Quit Claude Desktop completely and start it again: it reads this file at start-up.",
        )
    return ClientConfig(
        client,
        cwd / ".mcp.json",
        "mcpServers",
        True,
        "Start `claude` in this folder and approve the project's server when asked.",
    )


def _claude_desktop_dir(home: Path, environ: Mapping[str, str]) -> Path:
    if sys.platform == "darwin":
        return home / "Library" / "Application Support" / "Claude"
    if sys.platform == "win32":
        return Path(environ.get("APPDATA") or home / "AppData" / "Roaming") / "Claude"
    # Inferred: no official Linux build; unofficial ones follow XDG.
    return Path(environ.get("XDG_CONFIG_HOME") or home / ".config") / "Claude"


def launcher(argv0: str = sys.argv[0], executable: str = sys.executable) -> list[str]:
    """The command that starts this very xcourier, as an absolute path a client can spawn."""
    script = Path(argv0)
    if script.name in ("xcourier", "xcourier.exe") and script.exists():
        return [os.path.abspath(script)]
    # Run as `python -m xcourier.server` (or from a test): the script sits beside the interpreter.
    bindir = Path(executable).parent
    for name in ("xcourier", "xcourier.exe"):
        beside = bindir / name
        if beside.exists():
            return [os.path.abspath(beside)]
    return [os.path.abspath(executable), "-m", "xcourier.server"]


def server_entry(command: Sequence[str], *, sandbox: bool, read_only: bool, typed: bool) -> dict[str, Any]:
    args = [*command[1:], "serve"]
    if sandbox:
        args.append("--sandbox")
    if read_only:
        args.append("--read-only")
    entry: dict[str, Any] = {"type": "stdio"} if typed else {}
    entry.update(command=command[0], args=args)
    return entry


def default_name(sandbox: bool) -> str:
    return "xcourier-sandbox" if sandbox else "xcourier"


@dataclass(frozen=True)
class Outcome:
    path: Path
    changed: bool
    backup: Path | None


def merge(config: ClientConfig, name: str, entry: dict[str, Any]) -> Outcome:
    """Add or replace one server in the client's file, leaving every other key and server as it was."""
    document: dict[str, Any] = {}
    if config.path.exists():
        text = config.path.read_text(encoding="utf-8")
        try:
            document = json.loads(text) if text.strip() else {}
        except json.JSONDecodeError as exc:
            # VS Code's mcp.json may hold comments (JSONC): rewriting it would drop them, so leave it alone.
            raise ConnectError(
                f"{config.path} is not plain JSON ({exc.msg}, line {exc.lineno}); it may contain comments. "
                f'Nothing was changed: add the entry printed by `--print` under "{config.key}" by hand.'
            ) from None
        if not isinstance(document, dict):
            raise ConnectError(f"{config.path}: expected a JSON object at the top. Nothing was changed.")
    servers = document.setdefault(config.key, {})
    if not isinstance(servers, dict):
        raise ConnectError(f'{config.path}: "{config.key}" is not a JSON object. Nothing was changed.')
    if servers.get(name) == entry:
        return Outcome(config.path, changed=False, backup=None)
    servers[name] = entry
    backup = _backup(config.path) if config.path.exists() else None
    _write_atomically(config.path, json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    return Outcome(config.path, changed=True, backup=backup)


def _backup(path: Path) -> Path:
    # Never overwrite an earlier backup: the first one may be the only copy of the user's original file.
    candidate = path.with_name(path.name + ".bak")
    number = 1
    while candidate.exists():
        candidate = path.with_name(f"{path.name}.bak.{number}")
        number += 1
    shutil.copy2(path, candidate)
    return candidate


def _default_mode() -> int:
    # mkstemp makes 0600 files; a new config file gets what the user's umask gives any other file.
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o777 if path.exists() else _default_mode()
    # A crash mid-write must leave the client's old file, not half of a new one.
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def run_connect(
    client: ClientName,
    *,
    sandbox: bool,
    read_only: bool,
    print_only: bool,
    name: str | None = None,
    file: Path | None = None,
    command: Sequence[str] | None = None,
    cwd: Path | None = None,
    home: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> int:
    env = os.environ if environ is None else environ
    config = config_for(client, cwd=cwd or Path.cwd(), home=home or Path.home(), environ=env)
    if file is not None:
        config = ClientConfig(config.client, file.expanduser().absolute(), config.key, config.typed, config.next_step)
    command = list(command or launcher())
    server_name = name or default_name(sandbox)
    entry = server_entry(command, sandbox=sandbox, read_only=read_only, typed=config.typed)
    if print_only:
        print(json.dumps({config.key: {server_name: entry}}, indent=2))
        print(f"(for {config.path}; nothing was written)", file=sys.stderr)
        return 0
    try:
        outcome = merge(config, server_name, entry)
    except ConnectError as exc:
        print(f"xcourier: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(
            f"xcourier: could not write {config.path}: {exc.strerror or exc}. Use --print and add it by hand.",
            file=sys.stderr,
        )
        return 1
    if not outcome.changed:
        print(f"{server_name} is already configured in {outcome.path}; nothing changed.")
    else:
        saved = f" (the previous file is in {outcome.backup})" if outcome.backup else ""
        print(f"Wrote server {server_name!r} to {outcome.path}{saved}.")
    print(f"  runs: {shlex.join([entry['command'], *entry['args']])}")
    if not sandbox:
        print("  it acts on your X account: log in first with `xcourier auth login` (check with `xcourier doctor`).")
    if client == "claude-code":
        user_wide = ["claude", "mcp", "add", "--scope", "user", server_name, "--", entry["command"], *entry["args"]]
        print(f"  for every project instead: {shlex.join(user_wide)}")
    print(config.next_step)
    return 0
