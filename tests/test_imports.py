"""The import graph: no circles, layers import downward, and a local server's start-up loads no hosted code.

A stdio server is spawned per client session, so what start-up imports is the user's wait (DESIGN.md:
`import mcp` alone is most of it). The graph is read from the source with ast; the start-up checks spawn
`xcourier serve` through the SDK's stdio client and record sys.modules each time tools/list arrives (so once
more after a tool call, to see what the call loaded).
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"xcourier.server": ROOT / "server", "xcourier.tools": ROOT / "tools"}


def modules() -> dict[str, Path]:
    found = {}
    for package, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join([package, *parts])] = path
    return found


def _type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _statements(body: list[ast.stmt], *, lazy: bool) -> Iterator[ast.stmt]:
    """The statements that run when the module is imported (with `lazy`, also those inside functions).

    `if TYPE_CHECKING:` blocks never run: their imports are for the type checker, not an edge."""
    for statement in body:
        if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef):
            if lazy:
                yield from _statements(statement.body, lazy=lazy)
        elif isinstance(statement, ast.If):
            if not _type_checking(statement.test):
                yield from _statements(statement.body, lazy=lazy)
            yield from _statements(statement.orelse, lazy=lazy)
        elif isinstance(statement, ast.Try):
            for block in (statement.body, statement.orelse, statement.finalbody):
                yield from _statements(block, lazy=lazy)
            for handler in statement.handlers:
                yield from _statements(handler.body, lazy=lazy)
        elif isinstance(statement, ast.With | ast.AsyncWith | ast.ClassDef | ast.For | ast.While):
            yield from _statements(statement.body, lazy=lazy)
        else:
            yield statement


def import_graph(*, lazy: bool) -> dict[str, set[str]]:
    """xcourier module -> the xcourier modules it imports (`from .x import name` counts x, and x.name if a module)."""
    known = modules()
    graph: dict[str, set[str]] = {name: set() for name in known}
    for name, path in known.items():
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        for statement in _statements(ast.parse(path.read_text()).body, lazy=lazy):
            targets: list[str] = []
            if isinstance(statement, ast.Import):
                targets = [alias.name for alias in statement.names]
            elif isinstance(statement, ast.ImportFrom):
                if statement.level:
                    base = package[: len(package) - statement.level + 1]
                    source = ".".join(base + ([statement.module] if statement.module else []))
                else:
                    source = statement.module or ""
                targets = [source, *(f"{source}.{alias.name}" for alias in statement.names)]
            graph[name].update(t for t in targets if t in known and t != name)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(frozenset(component))
    return found


def test_the_graph_is_read_from_the_source():
    graph = import_graph(lazy=False)
    assert "xcourier.server.auth.store_base" in graph["xcourier.server.auth.sqlite_store"]
    assert "xcourier.server.runtime" in graph["xcourier.server.serve"]
    assert "xcourier.server.hosted.runtime" in import_graph(lazy=True)["xcourier.server.serve"]


def test_a_circle_is_found():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [frozenset({"a", "b", "c"})]


def test_no_import_cycles_among_xcourier_modules():
    assert cycles(import_graph(lazy=False)) == []


# Circles through imports made inside functions, each left for the owner of a file to break. Only these may
# remain; once one is gone, take it out of this list.
KNOWN_LAZY_CYCLES: set[frozenset[str]] = set()


def test_imports_inside_functions_add_no_new_cycle():
    assert set(cycles(import_graph(lazy=True))) <= KNOWN_LAZY_CYCLES


def test_the_store_implementations_import_what_they_share_not_the_front():
    graph = import_graph(lazy=True)
    for implementation in ("sqlite_store", "redis_store", "memory_store"):
        assert "xcourier.server.auth.store" not in graph[f"xcourier.server.auth.{implementation}"]


def test_tools_never_import_server():
    for name, imported in import_graph(lazy=True).items():
        if name.startswith("xcourier.tools"):
            assert not {i for i in imported if i.startswith("xcourier.server")}, name


# Where hosted code may be imported from, outside its package: the composition root, which picks the mode.
COMPOSITION_ROOT = {"xcourier.server.serve", "xcourier.server.app", "xcourier.server.cli"}
KNOWN_UPWARD: set[str] = set()


def test_only_the_composition_root_imports_hosted_code():
    importers = {
        name
        for name, imported in import_graph(lazy=True).items()
        if not name.startswith("xcourier.server.hosted")
        and any(i.startswith("xcourier.server.hosted") for i in imported)
    }
    assert importers <= COMPOSITION_ROOT | KNOWN_UPWARD


# -- what start-up loads -------------------------------------------------------------------------------

# Runs `xcourier serve ARGS` as the console script does, and writes sys.modules to PROBE_OUT when the
# first tools/list is answered (MCPServer.list_tools is what the SDK's tools/list handler calls).
PROBE = """
import json, os, sys
from mcp.server.mcpserver import MCPServer
listed = MCPServer.list_tools
async def list_tools(self):
    with open(os.environ["PROBE_OUT"], "w") as out:
        json.dump(sorted(sys.modules), out)
    return await listed(self)
MCPServer.list_tools = list_tools
from xcourier.server.cli import main
sys.exit(main(sys.argv[1:]))
"""
# What the SDK floor loads: a minimal MCPServer (tests/bench/floor_server.py) imports this much.
FLOOR = "import json, sys, httpx; from mcp.server.mcpserver import MCPServer; print(json.dumps(sorted(sys.modules)))"


def _probe(args: list[str], out: Path, **env: str) -> StdioServerParameters:
    environment = {**os.environ, "PROBE_OUT": str(out), **env}
    return StdioServerParameters(command=sys.executable, args=["-c", PROBE, *args], env=environment, cwd=str(ROOT))


async def loaded_at_tools_list(args: list[str], out: Path) -> tuple[int, set[str]]:
    with open(os.devnull, "w") as errlog, anyio.fail_after(60):
        async with Client(stdio_client(_probe(args, out), errlog=errlog)) as client:
            tools = await client.list_tools()
    return len(tools.tools), set(json.loads(out.read_text()))


def _top(module: str) -> str:
    return module.split(".")[0]


@pytest.mark.anyio
async def test_serve_sandbox_starts_without_hosted_code_or_heavy_libraries(tmp_path: Path):
    tool_count, loaded = await loaded_at_tools_list(["serve", "--sandbox"], tmp_path / "modules.json")
    assert tool_count > 0 and "xcourier.server.runtime" in loaded  # the probe saw the server that answered
    assert not {m for m in loaded if m.startswith("xcourier.server.hosted")}
    assert not {m for m in loaded if _top(m) in ("twitter_text", "_xcourier_twitter_text", "authlib", "redis")}
    # The SDK itself imports part of cryptography (mcp.server.request_state): xcourier adds none of it.
    floor = set(json.loads(subprocess.run([sys.executable, "-c", FLOOR], capture_output=True, check=True).stdout))
    assert {m for m in loaded if _top(m) == "cryptography"} <= floor


# What only a tool call needs: posts.py with its text counting (twitter-text for non-ASCII posts), the reading
# toolset's module, and the other tools' modules. Imported by the first call, not on the way to tools/list.
CALL_ONLY = (
    "xcourier.tools.posts",
    "xcourier.tools.text",
    "xcourier.tools.reading",
    "xcourier.tools.engagement",
    "xcourier.tools.messages",
)


@pytest.mark.anyio
async def test_tool_code_is_loaded_by_the_first_call_not_by_tools_list(sandbox, tmp_path: Path):
    token, _ = sandbox.sandbox.mint_token()
    params = _probe(
        ["serve", "--api-base-url", sandbox.base_url], tmp_path / "modules.json", XCOURIER_ACCESS_TOKEN=token
    )
    with open(os.devnull, "w") as errlog, anyio.fail_after(60):
        async with Client(stdio_client(params, errlog=errlog)) as client:
            listed = {tool.name for tool in (await client.list_tools()).tools}
            before = set(json.loads((tmp_path / "modules.json").read_text()))
            created = await client.call_tool("createPost", {"text": "the first post after start-up"})
            await client.list_tools()  # the probe records sys.modules again
            after = set(json.loads((tmp_path / "modules.json").read_text()))
    assert {"createPost", "likePost"} <= listed and "getPost" not in listed
    assert not before & set(CALL_ONLY)
    assert not {m for m in before if _top(m) in ("twitter_text", "_xcourier_twitter_text")}
    assert not created.is_error
    assert {"xcourier.tools.posts", "xcourier.tools.text"} <= after
    assert "xcourier.tools.reading" not in after  # the reading toolset is off: nothing loads it


@pytest.mark.anyio
async def test_the_reading_toolset_loads_its_module_when_it_is_served(tmp_path: Path):
    tool_count, loaded = await loaded_at_tools_list(
        ["serve", "--sandbox", "--toolsets", "reading"], tmp_path / "m.json"
    )
    assert tool_count > 0 and "xcourier.tools.reading" in loaded  # its tools' schemas name its models
    assert "xcourier.tools.posts" not in loaded
