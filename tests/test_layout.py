"""The shape of the package: sub-packages by concern, small modules, imports that go one way
(cli -> report -> study -> distributed -> tuning/serving/servers -> training -> backbones -> data/tracking
-> config -> errors) and no import cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "harness"
# The layer of each top-level name: a module may import its own package and lower layers only.
LAYERS = {"errors": 0, "progress": 0, "interrupts": 0, "_quiet": 0, "config": 1, "tracking": 2, "data": 2,
          "backbones": 3, "training": 4, "tuning": 5, "serving": 6, "servers": 6, "distributed": 7,
          "study": 8, "report": 8.5, "cli": 9, "__main__": 10, "__init__": 10}


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


MODULES = _modules()


def _imports(path: Path, top_level_only: bool) -> set[str]:
    """The harness modules `path` imports (a `from P import n` names P, and P.n where that is a module)."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("harness")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("harness"):
            submodules = {f"{node.module}.{a.name}" for a in node.names} & set(MODULES)
            if len(submodules) < len(node.names):  # `from P import _x` needs only P._x; a name from P needs P
                found.add(node.module)
            found |= submodules
    return {name for name in found if name in MODULES}


def _layer(module: str) -> tuple[str, int]:
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else "__init__"
    return top, LAYERS[top]


def test_at_most_eight_modules_sit_directly_in_the_package():
    flat = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(flat) <= 8, flat


def test_no_module_is_over_300_lines():
    long = {name: n for name, path in MODULES.items() if (n := len(path.read_text().splitlines())) > 300}
    assert not long


def test_every_sub_package_says_what_it_owns():
    for init in PACKAGE.glob("*/__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc and "TODO" not in doc, init


def test_every_top_level_name_has_a_layer():
    assert {_layer(m)[0] for m in MODULES} <= set(LAYERS)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_go_one_way(module):
    own, level = _layer(module)
    upward = [m for m in _imports(MODULES[module], top_level_only=False)
              if _layer(m)[0] != own and _layer(m)[1] >= level]
    assert not upward, f"{module} imports {upward}"


def test_no_module_level_import_cycle():
    graph = {m: _imports(p, top_level_only=True) - {m} for m, p in MODULES.items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node, path):
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join(path[path.index(nxt):] + [nxt]))
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
