"""The Claude Desktop bundle (.mcpb): `bundle/build.py` builds it, `mcpb validate` accepts it, and the
packed server, started exactly as its manifest tells a host to, serves the seed tools on a bare Python.

The build runs offline from the current sources (`--wheelhouse`: every package from tests/wheelhouse.py's
folder), so what is tested is this checkout, never a bundle left over from an older one."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import anyio
import pytest
from mcp import Client, StdioServerParameters

from xcourier.server.inventory import TOOLS

from . import wheelhouse

ROOT = Path(__file__).parent.parent
TEMPLATE = ROOT / "bundle" / "manifest.json"
BUNDLE_TOOLS = Path(__file__).parent / "bundle_tools"
MCPB = BUNDLE_TOOLS / "node_modules" / ".bin" / "mcpb"
SEED_TOOLS = {"createPost", "deletePost", "likePost", "repostPost", "sendDirectMessage"}
# Bounds: installing every dependency from local wheels, byte-compiling, then zipping ~65 MB; normally
# well under a minute.
BUILD_TIMEOUT = 900
START_TIMEOUT = 120


def _entry_point() -> ModuleType:
    spec = importlib.util.spec_from_file_location("xcourier_bundle_main", ROOT / "bundle" / "main.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---- the manifest template and the entry point, without building -------------------------------


def test_the_manifest_lists_the_tools_a_default_server_exposes():
    manifest = json.loads(TEMPLATE.read_text())
    assert [tool["name"] for tool in manifest["tools"]] == [spec.name for spec in TOOLS if spec.default]


def test_every_user_setting_reaches_the_servers_command_line():
    manifest = json.loads(TEMPLATE.read_text())
    args = manifest["server"]["mcp_config"]["args"]
    assert set(manifest["user_config"]) == {"sandbox", "account", "read_only", "confirm"}
    for name in manifest["user_config"]:
        assert any(f"${{user_config.{name}}}" in arg for arg in args), name
    # The entry point names each setting by the title the user sees in the host.
    titles = {name: option["title"] for name, option in manifest["user_config"].items()}
    assert titles == _entry_point().TITLES


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        # What mcpb substitutes for the manifest's defaults.
        (["--sandbox=true", "--account=", "--read-only=false", "--confirm=none"], ["serve", "--sandbox"]),
        (["--sandbox=false", "--account=", "--read-only=false", "--confirm=none"], ["serve"]),
        (
            ["--sandbox=false", "--account=alice", "--read-only=false", "--confirm=none"],
            ["serve", "--account", "alice"],
        ),
        (["--sandbox=true", "--account=alice", "--read-only=false", "--confirm=none"], ["serve", "--sandbox"]),
        (
            ["--sandbox=true", "--read-only=true", "--confirm=writes"],
            ["serve", "--sandbox", "--read-only", "--confirm", "writes"],
        ),
        (["--sandbox=false", "--confirm=destructive"], ["serve", "--confirm", "destructive"]),
        # A host that substitutes nothing: the manifest's defaults.
        (["--sandbox=${user_config.sandbox}", "--account=${user_config.account}"], ["serve", "--sandbox"]),
    ],
)
def test_settings_become_xcourier_serve_flags(argv, expected):
    main = _entry_point()
    assert main.serve_arguments(main.parse_settings(argv)) == expected


# ---- the built bundle -----------------------------------------------------------------------------


def _tools_missing() -> str | None:
    if shutil.which("node") is None:
        return "node is not installed"
    if not MCPB.exists():
        return "the mcpb package is not installed: npm install --prefix tests/bundle_tools"
    return None


def _isolated_env(home: Path) -> dict[str, str]:
    """The environment for processes started outside a test's own HOME (module-scoped fixtures):
    none of the user's folders, no XCOURIER_* settings and no Python path from this test run."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("XCOURIER_") and name not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
    }
    env["HOME"] = str(home)
    for name, folder in (
        ("XDG_DATA_HOME", ".local/share"),
        ("XDG_CONFIG_HOME", ".config"),
        ("XDG_CACHE_HOME", ".cache"),
        ("XDG_STATE_HOME", ".local/state"),
    ):
        env[name] = str(home / folder)
    return env


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """The one command, as a release runs it; yields the .mcpb and where it was unzipped."""
    missing = _tools_missing()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"{missing}; .ci/run must install it")
        pytest.skip(f"{missing} (.ci/run installs node and the package)")
    wheels = wheelhouse.required()
    root = tmp_path_factory.mktemp("bundle")
    completed = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bundle" / "build.py"),
            "--work-dir",
            str(root / "work"),
            "--out-dir",
            str(root / "dist"),
            "--wheelhouse",
            str(wheels),
        ],
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
        env=wheelhouse.offline_pip_env(wheels, _isolated_env(root / "home")),
    )
    assert completed.returncode == 0, wheelhouse.stale_hint(completed.stderr)
    (bundle,) = (root / "dist").glob("*.mcpb")
    unpacked = root / "unpacked"
    with zipfile.ZipFile(bundle) as archive:
        archive.extractall(unpacked)
    yield bundle, unpacked


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder whose `python3` is this interpreter's version with nothing installed: what a user
    without xcourier has. A venv of a venv is made from the base interpreter, without our packages."""
    venv = tmp_path_factory.mktemp("bare-python")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", "--clear", str(venv)], check=True, timeout=120)
    return venv / ("Scripts" if sys.platform == "win32" else "bin")


def _host_command(unpacked: Path, user_config: dict, home: Path) -> dict:
    """The command, arguments and environment a host derives from the manifest (mcpb's own code)."""
    completed = subprocess.run(
        ["node", str(BUNDLE_TOOLS / "mcp_config.mjs"), str(unpacked), json.dumps(user_config), str(home)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=BUNDLE_TOOLS,
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


def _launch(unpacked: Path, bare: Path, user_config: dict, home: Path) -> tuple[str, list[str], dict[str, str]]:
    config = _host_command(unpacked, user_config, home)
    assert config["args"][1] == f"{unpacked}/server/main.py"  # ${__dirname} became the unpacked folder
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("XCOURIER_") and k not in ("PYTHONPATH", "VIRTUAL_ENV")
    }
    env["PATH"] = str(bare) + os.pathsep + env.get("PATH", "")
    env.update(config.get("env", {}))
    command = shutil.which(config["command"], path=env["PATH"])
    assert command is not None and Path(command).parent == bare, command  # the bare Python, not this venv's
    return command, config["args"], env


@pytest.mark.slow
def test_the_build_writes_a_versioned_bundle_that_mcpb_validates(built):
    bundle, unpacked = built
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert bundle.name == f"xcourier-{version}.mcpb"
    manifest = json.loads((unpacked / "manifest.json").read_text())
    assert manifest["version"] == version
    assert manifest["compatibility"]["platforms"] == [sys.platform]
    minor = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert manifest["compatibility"]["runtimes"]["python"].startswith(f">={minor},")
    validated = subprocess.run(
        [str(MCPB), "validate", str(unpacked / "manifest.json")], capture_output=True, text=True, timeout=120
    )
    assert validated.returncode == 0, validated.stdout + validated.stderr
    # Everything the server imports travels in the bundle; nothing from the build machine's paths.
    assert (unpacked / "server" / "lib" / "xcourier" / "server" / "cli.py").is_file()
    assert not (unpacked / "server" / "lib" / "bin").exists()


@pytest.mark.slow
@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_the_packed_server_starts_on_a_bare_python_and_lists_the_seed_tools(built, bare_python, mode):
    _, unpacked = built
    command, args, env = _launch(unpacked, bare_python, {}, Path(os.environ["HOME"]))
    assert "--sandbox=true" in args  # the manifest's default
    with anyio.fail_after(START_TIMEOUT):
        async with Client(StdioServerParameters(command=command, args=args, env=env), mode=mode) as client:
            tools = {tool.name for tool in (await client.list_tools()).tools}
            assert tools >= SEED_TOOLS
            if mode == "legacy":
                assert "sandbox" in (client.instructions or "").lower()
            created = await client.call_tool("createPost", {"text": "hello from the Claude Desktop bundle"})
            assert created.is_error is False, created.content
            assert set(created.structured_content["data"]) >= {"id", "text", "edit_history_tweet_ids"}


@pytest.mark.slow
@pytest.mark.anyio
async def test_read_only_in_the_bundle_settings_lists_no_write_tool(built, bare_python):
    _, unpacked = built
    command, args, env = _launch(unpacked, bare_python, {"read_only": True}, Path(os.environ["HOME"]))
    with anyio.fail_after(START_TIMEOUT):
        async with Client(StdioServerParameters(command=command, args=args, env=env), mode="legacy") as client:
            tools = (await client.list_tools()).tools
    assert tools, "read-only still serves the read tools"
    assert all(tool.annotations and tool.annotations.read_only_hint for tool in tools), [t.name for t in tools]
    assert not {tool.name for tool in tools} & SEED_TOOLS


@pytest.mark.slow
def test_a_bad_setting_names_it_in_one_line_without_a_traceback(built, bare_python):
    _, unpacked = built
    command, args, env = _launch(unpacked, bare_python, {"confirm": "sometimes"}, Path(os.environ["HOME"]))
    completed = subprocess.run(
        [command, *args], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, env=env
    )
    assert completed.returncode == 2
    assert completed.stderr.strip().splitlines() == [
        "xcourier: the setting \"Ask before acting\" is 'sometimes': use one of none, destructive, writes. "
        "Change it in Claude Desktop's settings for this extension."
    ]
    assert completed.stdout == ""


@pytest.mark.slow
def test_another_python_version_is_told_which_python_the_bundle_needs(built, bare_python, tmp_path):
    _, unpacked = built
    # The entry point as packed, beside a target that no interpreter here matches.
    server = tmp_path / "server"
    server.mkdir()
    shutil.copy2(unpacked / "server" / "main.py", server / "main.py")
    (server / "target.json").write_text(json.dumps({"python": "3.99", "platform": sys.platform, "machine": "x"}))
    completed = subprocess.run(
        [str(bare_python / "python3"), "-I", str(server / "main.py"), "--sandbox=true"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 3
    assert "built for Python 3.99" in completed.stderr and "Install Python 3.99" in completed.stderr
    assert "Traceback" not in completed.stderr
