"""The project's import graph, read from the source with ``ast`` (nothing is imported).

Every ``import`` statement counts, at module level and inside functions (a lazy import
still makes a cycle, and still loads torch when the function runs); only those under
``if TYPE_CHECKING:``, which never run, do not.  An edge goes to the module the
statement names: ``from pkg import name`` to ``pkg.name`` when that is a module, else to
``pkg``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("app", "bench", "data_catalog", "gapfill", "model", "validation")
#: What validation and the catalog never import, directly or through a module they import.
FORBIDDEN = ("torch", "model.network", "model.inference")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in sorted((REPO / pkg).rglob("*.py"))}


def _imports(path: Path, name: str, modules: dict[str, Path],
             module_level_only: bool = False) -> set[str]:
    """Modules (project or not) named by the import statements of one file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):  # type-checking imports never run
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            node.body = []
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    nodes = tree.body if module_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                base_name = ".".join(base + ([node.module] if node.module else []))
            else:
                base_name = node.module or ""
            for alias in node.names:
                sub = f"{base_name}.{alias.name}"
                found.add(sub if sub in modules else base_name)
    return found


def _graph(modules: dict[str, Path], module_level_only: bool = False) -> dict[str, set[str]]:
    return {name: _imports(path, name, modules, module_level_only)
            for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module, or with a self-edge
    (Tarjan's algorithm), each as a sorted list."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or v in graph.get(v, ()):
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _forbidden(names: set[str]) -> set[str]:
    return {n for n in names if any(n == f or n.startswith(f + ".") for f in FORBIDDEN)}


def test_the_project_has_no_import_cycle():
    cycles = _cycles(_graph(_modules()))
    assert not cycles, f"import cycles (lazy imports count): {cycles}"


def test_the_cycle_finder_finds_cycles():
    # the check must be able to fail: a two-module cycle, a self-import, and none
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
    assert _cycles({"a": {"a"}}) == [["a"]]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_imports_resolve_to_modules():
    modules = _modules()
    graph = _graph(modules)
    # `from data_catalog import locations` names the module, not the package
    assert "data_catalog.locations" in graph["data_catalog.catalog"]
    # an import under `if TYPE_CHECKING:` does not (data_catalog.points names Source so)
    assert "data_catalog.catalog" not in graph["data_catalog.points"]
    # a function-level import counts
    assert "model.points" in graph["validation.filled"]
    assert "torch" in graph["model.points"] or "model.inference" in graph["model.points"]


@pytest.mark.parametrize("package", ["validation", "data_catalog"])
def test_validation_and_catalog_never_import_torch_or_the_network(package):
    modules = _modules()
    full = _graph(modules)
    top = _graph(modules, module_level_only=True)
    own = {n for n in modules if n == package or n.startswith(package + ".")}
    direct = {n: _forbidden(full[n]) for n in own}
    assert not any(direct.values()), {n: sorted(v) for n, v in direct.items() if v}
    # the model modules they do import (model.points) load torch only when a function runs:
    # importing them, and all they import at module level, stays free of it
    entry = {m for n in own for m in full[n] if m in modules and m not in own}
    seen, todo = set(), list(entry)
    while todo:
        m = todo.pop()
        if m in seen:
            continue
        seen.add(m)
        bad = _forbidden(top[m])
        assert not bad, f"{package} imports {m}, which loads {sorted(bad)} at import"
        todo.extend(x for x in top[m] if x in modules)
