"""The package's import graph: no cycles (cli.py and its sub-commands, the video and project readers,
anything else), and a command line that starts without its sub-commands' modules or torch."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import napari_hotspot

PACKAGE = Path(napari_hotspot.__file__).parent


def _modules() -> dict[str, Path]:
    mods = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        mods[name] = path
    return mods


def _imports(name: str, path: Path, mods: dict[str, Path]) -> set[str]:
    """Every package module `name` imports, at module level or inside functions (not TYPE_CHECKING)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = set()
    for node in ast.walk(tree):  # `if TYPE_CHECKING:` blocks import nothing at run time
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)
    return {m for m in found if m in mods and m != name}


def _cycles() -> list[list[str]]:
    mods = _modules()
    graph = {name: _imports(name, path, mods) for name, path in mods.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def test_the_package_has_no_import_cycle():
    assert _cycles() == []


def test_sub_commands_do_not_import_the_cli_back():
    mods = _modules()
    for sub in ("napari_hotspot.reframe.cli", "napari_hotspot.batch.cli", "napari_hotspot._napari.demo"):
        assert "napari_hotspot.cli" not in _imports(sub, mods[sub], mods), sub
    reader = "napari_hotspot._napari.project_reader"
    assert "napari_hotspot._napari.reader" not in _imports(reader, mods[reader], mods)


def test_importing_the_cli_loads_no_sub_command_nor_torch():
    code = ("import sys, napari_hotspot.cli; "
            "print(sorted(m for m in sys.modules if m in ('torch', 'napari', 'napari_hotspot.reframe.cli', "
            "'napari_hotspot.batch.cli', 'napari_hotspot._napari.demo', 'napari_hotspot.session')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
