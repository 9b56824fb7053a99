"""The install maps server/ and tools/ to xcourier.server and xcourier.tools, with every subpackage."""

from __future__ import annotations

import tomllib
from pathlib import Path

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
