"""The install maps server/ and tools/ to xcourier.server and xcourier.tools, with every subpackage."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


def test_every_package_folder_is_listed_for_installation():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    mapping = config["package-dir"]
    assert mapping == {"xcourier.server": "server", "xcourier.tools": "tools"}
    on_disk = {
        "xcourier." + ".".join(init.parent.relative_to(ROOT).parts)
        for top in ("server", "tools")
        for init in (ROOT / top).rglob("__init__.py")
    }
    assert on_disk == set(config["packages"]), "a package folder is missing from [tool.setuptools] packages"


def test_tools_never_imports_the_mcp_side():
    for source in (ROOT / "tools").rglob("*.py"):
        text = source.read_text()
        assert "xcourier.server" not in text and "import mcp" not in text and "from mcp" not in text, source


def test_the_sandbox_imports_nothing_else_from_xcourier():
    for source in (ROOT / "server" / "sandbox").rglob("*.py"):
        for line in source.read_text().splitlines():
            if line.lstrip().startswith(("import ", "from ")):
                assert "xcourier.tools" not in line, f"{source}: {line}"
                assert "xcourier.server" not in line or "xcourier.server.sandbox" in line, f"{source}: {line}"
                assert not line.lstrip().startswith("from .."), f"{source}: {line}"


# ---- what PyPI and the MCP Registry read --------------------------------------------------------

SERVER_JSON = ROOT / "server.json"
REGISTRY_SCHEMA = ROOT / "tests" / "data" / "mcp-server.schema.json"


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_server_json_is_valid_against_the_registry_schema():
    import json

    import jsonschema

    schema = json.loads(REGISTRY_SCHEMA.read_text())
    assert schema["$id"] == "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json"
    manifest = json.loads(SERVER_JSON.read_text())
    assert manifest["$schema"] == schema["$id"]
    validator = jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
    errors = sorted(validator.iter_errors(manifest), key=lambda error: list(error.path))
    assert not errors, [f"{list(error.path)}: {error.message}" for error in errors]


def test_server_json_names_this_package_and_version_and_the_readme_carries_its_mcp_name():
    import json

    manifest = json.loads(SERVER_JSON.read_text())
    project = _project()
    (package,) = manifest["packages"]
    assert package["registryType"] == "pypi" and package["identifier"] == project["name"]
    assert manifest["version"] == package["version"] == project["version"]
    # The registry proves PyPI ownership by finding this marker in the package's description (the README).
    assert f"mcp-name: {manifest['name']}" in (ROOT / "README.md").read_text()


def test_the_package_metadata_has_what_a_pypi_page_shows():
    project = _project()
    assert project["readme"] == "README.md" and project["license"] == "MIT"
    assert project["keywords"] and "mcp" in project["keywords"]
    assert any(c.startswith("Programming Language :: Python :: 3.11") for c in project["classifiers"])
    assert {"Homepage", "Source", "Issues"} <= set(project["urls"])
    assert project["scripts"] == {"xcourier": "xcourier.server.cli:main"}


@pytest.mark.slow
def test_the_built_wheel_installs_into_a_fresh_venv_and_runs(tmp_path: Path):
    """As a release would: sdist and wheel from a copy of the sources, the wheel into a fresh venv.
    Offline: the isolated build and the install take every package from the wheelhouse."""
    import shutil
    import subprocess
    import sys

    from . import wheelhouse

    found = wheelhouse.required()
    offline = wheelhouse.offline_pip_env(found)
    source = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "node_modules", ".venv", "build", "dist")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name if source.exists() else _mkdir(source) / name)
    for folder in ("server", "tools"):
        shutil.copytree(ROOT / folder, source / folder, ignore=ignore)
    dist = tmp_path / "dist"
    # Bounded: the build and the install each take seconds from local wheels.
    built = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(dist), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
        env=offline,
    )
    assert built.returncode == 0, wheelhouse.stale_hint(built.stdout + built.stderr)
    version = _project()["version"]
    wheels, sdists = list(dist.glob("xcourier-*.whl")), list(dist.glob("xcourier-*.tar.gz"))
    assert [w.name for w in wheels] == [f"xcourier-{version}-py3-none-any.whl"]
    assert [s.name for s in sdists] == [f"xcourier-{version}.tar.gz"]
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    bindir = venv / ("Scripts" if sys.platform == "win32" else "bin")
    # The wheel just built, by path, so an older xcourier wheel in the wheelhouse is never the one tested.
    pip = [str(bindir / "python"), "-m", "pip", "install", "--quiet", "--no-index", "--find-links", str(found)]
    installed = subprocess.run(
        [*pip, str(wheels[0])],
        capture_output=True,
        text=True,
        timeout=300,
        env=offline,
    )
    assert installed.returncode == 0, wheelhouse.stale_hint(installed.stdout + installed.stderr)
    version_line = subprocess.run([str(bindir / "xcourier"), "--version"], capture_output=True, text=True, timeout=60)
    assert version_line.stdout.strip() == f"xcourier {version}"
    printed = subprocess.run(
        [str(bindir / "xcourier"), "connect", "vscode", "--sandbox", "--print"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert str(bindir / "xcourier") in printed.stdout
    probe = "import importlib.util as u; print(u.find_spec('server'), u.find_spec('tools'))"
    site = subprocess.run(
        [str(bindir / "python"), "-c", probe],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert site.stdout.split() == ["None", "None"]  # no generic top-level modules in site-packages
    # The README's first command, from the installed wheel alone: the sandbox ships inside it.
    demo = subprocess.run([str(bindir / "xcourier"), "demo"], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "Traceback" not in demo.stderr
    assert "createPost" in demo.stdout and "x://users/bob/posts" in demo.stdout


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True)
    return path
