"""No import cycle of any kind, and no function-level import without a reason (issue 20).

An AST walk over ``fascore/``, ``dashboard/`` and ``pages/`` collects every import, at module
level and inside functions (imports under ``if TYPE_CHECKING:`` are type hints, not run-time
dependencies, and are left out), builds the graph of our modules and looks for strongly connected
components (a cycle, however long, is one). A function-level import must carry a comment saying
why it is lazy: on the line above its group of imports or on one of the group's lines.
"""

from __future__ import annotations

import ast
import io
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("fascore", "dashboard", "pages")


def module_files(root: Path, packages: tuple[str, ...] = PACKAGES) -> dict[str, Path]:
    """``{dotted module name: file}`` for every ``.py`` file under the given top folders."""
    found = {}
    for top in packages:
        for path in sorted((root / top).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> list[tuple[ast.stmt, bool]]:
    """Every import statement outside ``if TYPE_CHECKING:``, with whether it is in a function."""
    found: list[tuple[ast.stmt, bool]] = []

    def walk(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for other in child.orelse:
                    walk(other, in_function)
                continue
            if isinstance(child, ast.Import | ast.ImportFrom):
                found.append((child, in_function))
            inner = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            walk(child, inner)

    walk(tree, False)
    return found


def _targets(node: ast.stmt, name: str, is_package: bool, known: set[str]) -> set[str]:
    """Our modules an import statement loads (``from a import b``: ``a.b`` if a module, else a)."""
    if isinstance(node, ast.Import):
        return {a.name for a in node.names if a.name in known}
    base = node.module or ""
    if node.level:
        parts = name.split(".") if is_package else name.split(".")[:-1]
        parts = parts[: len(parts) - (node.level - 1)]
        base = ".".join([*parts, *([base] if base else [])])
    out = set()
    for alias in node.names:
        sub = f"{base}.{alias.name}"
        out.add(sub if sub in known else base)
    return out & known


def import_graph(files: dict[str, Path]) -> dict[str, set[str]]:
    """``{module: modules it imports}`` over ``files``, function-level imports included."""
    known = set(files)
    graph = {}
    for name, path in files.items():
        tree = ast.parse(path.read_text(), str(path))
        is_package = path.name == "__init__.py"
        graph[name] = set().union(
            *(_targets(n, name, is_package, known) for n, _ in _imports(tree))
        ) - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
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
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def _comment_lines(source: str) -> set[int]:
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return {t.start[0] for t in tokens if t.type == tokenize.COMMENT}


def unexplained_lazy_imports(files: dict[str, Path]) -> list[str]:
    """``path:line`` of each function-level import whose group carries no comment.

    A group is a run of consecutive import statements in one block; it is explained by a comment
    on the line just above its first statement or on any of its lines."""
    bad = []
    for path in files.values():
        source = path.read_text()
        comments = _comment_lines(source)
        tree = ast.parse(source, str(path))
        lazy = {id(n) for n, in_function in _imports(tree) if in_function}
        for block in ast.walk(tree):
            for field in ("body", "orelse", "finalbody", "handlers"):
                stmts = getattr(block, field, None)
                if not isinstance(stmts, list):
                    continue
                group: list[ast.stmt] = []
                for stmt in [*stmts, None]:
                    if stmt is not None and id(stmt) in lazy:
                        group.append(stmt)
                        continue
                    if group:
                        lines = set(range(group[0].lineno - 1, group[-1].end_lineno + 1))
                        if not lines & comments:
                            bad += [f"{path.relative_to(ROOT)}:{s.lineno}" for s in group]
                        group = []
    return sorted(set(bad))


def test_no_import_cycle_in_the_lab_the_dashboard_or_the_pages():
    found = cycles(import_graph(module_files(ROOT)))
    assert not found, "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


def test_every_function_level_import_says_why_it_is_lazy():
    bad = unexplained_lazy_imports(module_files(ROOT))
    assert not bad, "function-level imports without a comment saying why: " + ", ".join(bad)


def test_the_checks_find_a_lazy_cycle_and_a_silent_lazy_import(tmp_path):
    pkg = tmp_path / "fascore"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from fascore import b\n")
    (pkg / "b.py").write_text("def f():\n    from fascore.a import x\n    return x\n")
    (pkg / "c.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from fascore import a\n"
        "def g():\n    # lazy: a reason\n    import json\n    from . import a\n    return a\n"
    )
    files = module_files(tmp_path, ("fascore",))
    graph = import_graph(files)
    assert cycles(graph) == [["fascore.a", "fascore.b"]]
    assert graph["fascore.c"] == {"fascore.a"}  # the lazy one; the TYPE_CHECKING one is a hint
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        assert unexplained_lazy_imports(files) == ["fascore/b.py:2"]
    finally:
        ROOT = saved
