"""`xcourier connect CLIENT`: each client's file, merged without touching other servers, with a backup."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from xcourier.server import connect
from xcourier.server.cli import main


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


def test_vscode_gets_the_absolute_path_of_this_xcourier_in_the_workspace_file(project: Path):
    assert main(["connect", "vscode", "--sandbox"]) == 0
    written = json.loads((project / ".vscode" / "mcp.json").read_text())
    entry = written["servers"]["xcourier-sandbox"]
    assert entry["type"] == "stdio"
    assert Path(entry["command"]).is_absolute() and Path(entry["command"]).exists()
    assert entry["args"][-2:] == ["serve", "--sandbox"]


def test_cursor_merge_keeps_other_servers_and_keys_and_backs_up_the_original(isolated_user_dirs: Path, project):
    target = isolated_user_dirs / ".cursor" / "mcp.json"
    target.parent.mkdir(parents=True)
    original = json.dumps({"mcpServers": {"other": {"command": "other-server"}}, "theme": "dark"}, indent=4)
    target.write_text(original)

    assert main(["connect", "cursor", "--read-only"]) == 0

    merged = json.loads(target.read_text())
    assert merged["mcpServers"]["other"] == {"command": "other-server"}
    assert merged["theme"] == "dark"
    assert merged["mcpServers"]["xcourier"]["args"][-2:] == ["serve", "--read-only"]
    assert "type" not in merged["mcpServers"]["xcourier"]
    assert (target.parent / "mcp.json.bak").read_text() == original


def test_print_writes_nothing(isolated_user_dirs: Path, project: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["connect", "claude-code", "--sandbox", "--print"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["mcpServers"]["xcourier-sandbox"]["args"][-2:] == ["serve", "--sandbox"]
    assert not (project / ".mcp.json").exists()
    assert list(isolated_user_dirs.rglob("*.json")) == []


def test_running_it_again_changes_nothing_and_makes_no_backup(project: Path, capsys):
    assert main(["connect", "claude-code", "--sandbox"]) == 0
    first = (project / ".mcp.json").read_text()
    assert main(["connect", "claude-code", "--sandbox"]) == 0
    assert (project / ".mcp.json").read_text() == first
    assert not (project / ".mcp.json.bak").exists()
    assert "already configured" in capsys.readouterr().out


def test_a_later_backup_never_overwrites_an_earlier_one(project: Path):
    target = project / ".mcp.json"
    target.write_text('{"mcpServers": {}}')
    main(["connect", "claude-code", "--sandbox"])
    main(["connect", "claude-code"])
    assert (project / ".mcp.json.bak").read_text() == '{"mcpServers": {}}'
    assert "xcourier-sandbox" in (project / ".mcp.json.bak.1").read_text()
    assert set(json.loads(target.read_text())["mcpServers"]) == {"xcourier-sandbox", "xcourier"}


def test_a_file_with_comments_is_left_alone_with_a_clear_message(project: Path, capsys):
    target = project / ".vscode" / "mcp.json"
    target.parent.mkdir()
    target.write_text('{\n  // my servers\n  "servers": {}\n}\n')
    assert main(["connect", "vscode"]) == 1
    assert "comments" in capsys.readouterr().err
    assert target.read_text().startswith("{\n  // my servers")
    assert not (target.parent / "mcp.json.bak").exists()


def test_claude_code_also_shows_the_user_wide_claude_mcp_add_command(project: Path, capsys):
    assert main(["connect", "claude-code", "--sandbox"]) == 0
    out = capsys.readouterr().out
    assert "claude mcp add --scope user xcourier-sandbox -- /" in out


@pytest.mark.parametrize(
    ("platform", "parts"),
    [
        ("darwin", ("Library", "Application Support", "Claude", "claude_desktop_config.json")),
        ("linux", (".config", "Claude", "claude_desktop_config.json")),
    ],
)
def test_claude_desktop_file_location(monkeypatch, tmp_path: Path, platform: str, parts: tuple[str, ...]):
    monkeypatch.setattr(sys, "platform", platform)
    config = connect.config_for("claude-desktop", cwd=tmp_path, home=tmp_path, environ={})
    assert config.path == tmp_path.joinpath(*parts) and config.key == "mcpServers"


def test_windows_claude_desktop_file_is_under_appdata(monkeypatch, tmp_path: Path):
    monkeypatch.setattr(sys, "platform", "win32")
    config = connect.config_for("claude-desktop", cwd=tmp_path, home=tmp_path, environ={"APPDATA": "C:/AppData"})
    assert config.path == Path("C:/AppData") / "Claude" / "claude_desktop_config.json"


def test_launcher_falls_back_to_the_interpreter_when_no_script_is_found(tmp_path: Path):
    python = tmp_path / "bin" / "python"
    assert connect.launcher(argv0="-c", executable=str(python)) == [str(python), "-m", "xcourier.server"]


def test_launcher_prefers_the_script_it_was_started_as(tmp_path: Path):
    script = tmp_path / "xcourier"
    script.write_text("")
    assert connect.launcher(argv0=str(script), executable="/nowhere/python") == [str(script)]


@pytest.mark.slow
@pytest.mark.anyio
async def test_the_written_vscode_configuration_starts_a_server_that_lists_the_tools(project: Path):
    from mcp import Client, StdioServerParameters

    assert main(["connect", "vscode", "--sandbox"]) == 0
    entry = json.loads((project / ".vscode" / "mcp.json").read_text())["servers"]["xcourier-sandbox"]
    async with Client(StdioServerParameters(command=entry["command"], args=entry["args"]), mode="legacy") as client:
        tools = {tool.name for tool in (await client.list_tools()).tools}
    assert {"createPost", "deletePost", "likePost", "repostPost", "sendDirectMessage"} <= tools
