"""Build the Claude Desktop bundle: `python3 bundle/build.py` -> dist/xcourier-<version>.mcpb.

One command: stage the bundle (manifest, entry point, xcourier and every dependency vendored in
server/lib), check the manifest with `mcpb validate`, and zip it with `mcpb pack` (npm
`@anthropic-ai/mcpb`; `npm install --prefix tests/bundle_tools` installs it where this script looks).

How the bundle carries its dependencies: as a `"python"` server with everything installed into
server/lib by pip, which MANIFEST.md in anthropics/mcpb describes for Python bundles ("All
dependencies must be bundled in the MCPB ... Can use `server/lib` for packages"). The `"uv"` server
type (manifest 0.4, marked experimental in the mcpb README) would have the host download Python
packages from PyPI when the server first starts, so the bundle would need the network at run time and
whatever versions PyPI serves that day. Vendoring needs only a Python on the user's machine and runs
exactly the packages built here. The cost: pydantic-core, cryptography and a few others are compiled,
so a bundle runs only on the platform, machine and Python minor version it was built with. The
manifest says so (`compatibility`), and the entry point checks it and says what to do. Build one per
target by running this script with that Python on that platform.

Offline: `--wheelhouse DIR` installs from a folder of wheels only (`pip --no-index --find-links DIR`),
made beforehand with `pip wheel --wheel-dir DIR . "setuptools>=68" wheel` (the build requirements
too, since pip builds xcourier's own wheel in an isolated environment). tests/test_bundle.py builds
that way, because the test suite never reaches the internet.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
# Where `npm install --prefix tests/bundle_tools` (as .ci/run does) puts the mcpb command.
LOCAL_MCPB = ROOT / "tests" / "bundle_tools" / "node_modules" / ".bin" / "mcpb"
# What xcourier's own build needs; everything else in the checkout (tests, node_modules, caches) stays out.
SOURCES = ("pyproject.toml", "README.md", "server", "tools")
# The platforms mcpb's manifest schema knows (compatibility.platforms), which are sys.platform values.
MCPB_PLATFORMS = ("darwin", "win32", "linux")
WORK_MARKER = ".xcourier-bundle-work"
# Bounds on the steps that can hang: pip resolving and downloading, mcpb zipping tens of MB.
PIP_TIMEOUT = 900
MCPB_TIMEOUT = 300


class BuildError(Exception):
    """A step failed; the message says which and what to do."""


def project_version() -> str:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]


def find_mcpb(explicit: str | None) -> list[str]:
    if explicit:
        found = shutil.which(explicit)
        if found is None:
            raise BuildError(f"--mcpb {explicit}: no such command.")
        return [found]
    if LOCAL_MCPB.exists():
        return [str(LOCAL_MCPB)]
    on_path = shutil.which("mcpb")
    if on_path:
        return [on_path]
    raise BuildError(
        "the mcpb command was not found: run `npm install --prefix tests/bundle_tools` (or "
        "`npm install -g @anthropic-ai/mcpb`), or pass --mcpb PATH."
    )


def target() -> dict[str, str]:
    if sys.platform not in MCPB_PLATFORMS:
        raise BuildError(f"mcpb bundles run on {', '.join(MCPB_PLATFORMS)}; this is {sys.platform}.")
    return {
        "python": f"{sys.version_info.major}.{sys.version_info.minor}",
        "platform": sys.platform,
        "machine": platform.machine().lower(),
    }


def manifest(version: str, built_for: dict[str, str]) -> dict:
    data = json.loads((HERE / "manifest.json").read_text(encoding="utf-8"))
    data["version"] = version
    major, minor = (int(part) for part in built_for["python"].split("."))
    data["compatibility"] = {
        "platforms": [built_for["platform"]],
        "runtimes": {"python": f">={major}.{minor},<{major}.{minor + 1}"},
    }
    return data


def run(command: list[str], what: str, timeout: float, cwd: Path | None = None) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=cwd)
    except FileNotFoundError:
        raise BuildError(f"{what}: {command[0]} was not found.") from None
    except subprocess.TimeoutExpired:
        raise BuildError(f"{what}: no result within {timeout:.0f} s.") from None
    if done.returncode != 0:
        output = (done.stdout + done.stderr).strip()
        raise BuildError(f"{what} failed (exit {done.returncode}):\n{output}")
    return done.stdout


def stage_sources(work: Path) -> Path:
    source = work / "source"
    source.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "dist")
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=ignore)
        else:
            shutil.copy2(path, source / name)
    return source


def offline_options(wheelhouse: Path | None) -> list[str]:
    """pip's options that keep it to the wheelhouse; none (PyPI) without one."""
    if wheelhouse is None:
        return []
    if not wheelhouse.is_dir() or not any(wheelhouse.glob("*.whl")):
        raise BuildError(
            f"--wheelhouse {wheelhouse} holds no wheels: make it with "
            f'`pip wheel --wheel-dir {wheelhouse} . "setuptools>=68" wheel` (this needs the network once).'
        )
    return ["--no-index", "--find-links", str(wheelhouse)]


def vendor(source: Path, lib: Path, wheelhouse: Path | None = None) -> None:
    """xcourier and its dependencies, installed as pip installs them, into lib/."""
    offline = offline_options(wheelhouse)
    run(
        [sys.executable, "-m", "pip", "--version"],
        f"pip for {sys.executable} (install it, e.g. `python3 -m ensurepip`)",
        timeout=60,
    )
    what = "pip install of xcourier and its dependencies into server/lib"
    if wheelhouse is not None:
        what += f" from the wheelhouse {wheelhouse} (remake it if a dependency changed)"
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-compile",
            *offline,
            "--target",
            str(lib),
            str(source),
        ],
        what,
        timeout=PIP_TIMEOUT,
    )
    # Console scripts name the build machine's interpreter in their first line: useless in a bundle.
    shutil.rmtree(lib / "bin", ignore_errors=True)
    # Byte-code keeps the first start in Claude Desktop close to an installed xcourier's. Hash-checked
    # .pyc files stay valid whatever file times unzipping gives the sources, and are never stale.
    run(
        [sys.executable, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "checked-hash", str(lib)],
        "byte-compiling server/lib",
        timeout=PIP_TIMEOUT,
    )


def empty_work_dir(work_dir: Path) -> None:
    """Start from nothing, deleting only a folder this script made (it carries WORK_MARKER)."""
    if work_dir.exists() and any(work_dir.iterdir()):
        if not (work_dir / WORK_MARKER).exists():
            raise BuildError(f"--work-dir {work_dir} is not empty and not one of ours: pick an empty or new folder.")
        shutil.rmtree(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    (work_dir / WORK_MARKER).touch()


def build(out_dir: Path, work_dir: Path, mcpb: list[str], wheelhouse: Path | None = None) -> Path:
    version = project_version()
    built_for = target()
    # Before the work folder is emptied: a wrong --wheelhouse changes nothing on disk.
    offline_options(wheelhouse)
    empty_work_dir(work_dir)
    stage = work_dir / "xcourier"
    server = stage / "server"
    server.mkdir(parents=True)
    vendor(stage_sources(work_dir), server / "lib", wheelhouse)
    shutil.copy2(HERE / "main.py", server / "main.py")
    (server / "target.json").write_text(json.dumps(built_for, indent=2) + "\n", encoding="utf-8")
    (stage / "manifest.json").write_text(json.dumps(manifest(version, built_for), indent=2) + "\n", encoding="utf-8")

    run([*mcpb, "validate", str(stage / "manifest.json")], "mcpb validate", timeout=MCPB_TIMEOUT)
    out_dir.mkdir(parents=True, exist_ok=True)
    bundle = out_dir / f"xcourier-{version}.mcpb"
    bundle.unlink(missing_ok=True)
    run([*mcpb, "pack", str(stage), str(bundle)], "mcpb pack", timeout=MCPB_TIMEOUT)
    if not bundle.is_file():
        raise BuildError(f"mcpb pack reported success but wrote no {bundle}.")
    return bundle


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--out-dir", type=Path, default=ROOT / "dist", help="where the .mcpb goes (default: dist/)")
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=ROOT / "build" / "bundle",
        help="staging folder, emptied first (default: build/bundle/)",
    )
    parser.add_argument("--mcpb", metavar="PATH", help="the mcpb command (default: tests/bundle_tools, then PATH)")
    parser.add_argument(
        "--wheelhouse",
        type=Path,
        metavar="DIR",
        help="offline: install xcourier's build requirements and dependencies only from the wheels in DIR "
        "(default: download them from the package index)",
    )
    args = parser.parse_args(argv)
    wheelhouse = args.wheelhouse.resolve() if args.wheelhouse else None
    try:
        bundle = build(args.out_dir.resolve(), args.work_dir.resolve(), find_mcpb(args.mcpb), wheelhouse)
    except BuildError as exc:
        print(f"bundle/build.py: {exc}", file=sys.stderr)
        return 1
    size = bundle.stat().st_size / 1_000_000
    print(f"built {bundle} ({size:.1f} MB, for Python {target()['python']} on {sys.platform})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
