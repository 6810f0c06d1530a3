"""Can a newcomer find their way: does every module say what it is for, and do imports flow one way?"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO_ROOT

PACKAGE = REPO_ROOT / "coverage"


def _modules() -> dict[str, Path]:
    return {str(path.relative_to(PACKAGE).with_suffix("")).replace("/", "."): path
            for path in sorted(PACKAGE.rglob("*.py"))}


def _coverage_imports(tree: ast.AST) -> set[str]:
    """Modules of the package a module imports anywhere: at the top or inside functions."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "coverage":
                out |= {alias.name for alias in node.names}
            elif node.module.startswith("coverage."):
                out.add(node.module.split(".", 1)[1])
        elif isinstance(node, ast.Import):
            out |= {alias.name.split(".", 1)[1] for alias in node.names if alias.name.startswith("coverage.")}
    return out


def test_every_module_opens_with_one_line_saying_what_it_is_for():
    for name, path in _modules().items():
        if name.endswith("__main__"):
            continue
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
        assert doc, f"{name} has no module docstring"
        assert doc.splitlines()[0].strip().endswith("."), f"{name}: the first line should be one sentence"


def test_no_import_circle_even_through_imports_inside_functions():
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        targets = set()
        for imported in _coverage_imports(ast.parse(path.read_text(encoding="utf-8"))):
            # `from coverage.demo import x` names the package; `from coverage.demo.layout import y` the module
            targets.add(imported if imported in modules else imported.split(".")[0])
        graph[name] = {t for t in targets if t in modules and t != name}
    # a package's __init__ re-exporting its own modules is not a circle
    for name in list(graph):
        if name.endswith(".__init__"):
            package = name.rsplit(".", 1)[0]
            graph[name] = {t for t in graph[name] if not t.startswith(package + ".")}
            graph.setdefault(package, set()).update(graph[name])

    def reaches(start: str, goal: str) -> bool:
        seen, stack = set(), [start]
        while stack:
            node = stack.pop()
            for nxt in graph.get(node, ()):
                if nxt == goal:
                    return True
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)
        return False

    circles = sorted({tuple(sorted((a, b))) for a, targets in graph.items() for b in targets if reaches(b, a)})
    assert circles == [], f"modules that import each other (directly or round about): {circles}"
