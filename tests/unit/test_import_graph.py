"""The package's import graph, read from the source (no imports run): no module imports itself back.

A cycle works until someone moves an import to the top of a file; then one of the two modules sees
the other half-initialised. Function-level imports count too, since they are where cycles hide, and
so do ``if TYPE_CHECKING:`` imports: a cycle of types is still two modules that each need the other
to be understood. A package's ``__init__`` is left out: its children import names from it by design.
"""

from __future__ import annotations

import ast
from pathlib import Path

import dec2vec

ROOT = Path(dec2vec.__file__).parent


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = ["dec2vec", *path.relative_to(ROOT).with_suffix("").parts]
        if parts[-1] != "__init__":
            out[".".join(parts)] = path
    return out


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Every module of ``known`` that ``name`` imports: at the top, in functions and for type checking."""
    tree = ast.parse(path.read_text())
    package = name.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, node.module] if node.module else base)
            targets = [module, *(f"{module}.{alias.name}" for alias in node.names)]
        else:
            continue
        found |= {t for t in targets if t in known and t != name}
    return found


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
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
            while (w := stack.pop()) != v:
                component.append(w)
            if component:
                out.append(sorted([v, *component]))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles():
    modules = _modules()
    graph = {name: _imports(name, path, set(modules)) for name, path in modules.items()}
    assert "dec2vec.loading" in graph["dec2vec.embedder"]  # the graph is read at all
    assert _cycles(graph) == []  # none at all, type-only ones included


def test_type_only_imports_count(tmp_path):
    """A cycle closed by an ``if TYPE_CHECKING:`` import is a cycle."""
    (tmp_path / "a.py").write_text("from . import b\n")
    (tmp_path / "b.py").write_text("from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n    from .a import Thing\n")
    known = {"pkg.a", "pkg.b"}
    graph = {m: _imports(m, tmp_path / f"{m[4:]}.py", known) for m in sorted(known)}
    assert graph == {"pkg.a": {"pkg.b"}, "pkg.b": {"pkg.a"}}
    assert _cycles(graph) == [["pkg.a", "pkg.b"]]


def test_cycle_detection_sees_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_foundations_import_nothing_from_the_rest_of_dec2vec():
    """``dec2vec.foundations`` is the bottom layer: any module may import it, so it imports none of them."""
    modules = _modules()
    low = {name: path for name, path in modules.items() if name.startswith("dec2vec.foundations.")}
    assert "dec2vec.foundations.files" in low
    init = ROOT / "foundations" / "__init__.py"
    for name, path in [*low.items(), ("dec2vec.foundations", init)]:
        outside = {m for m in _imports(name, path, set(modules)) if not m.startswith("dec2vec.foundations.")}
        assert outside == set(), f"{name} imports {sorted(outside)}"
