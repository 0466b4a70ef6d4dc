"""The package's shape: no import cycles (lazy imports inside functions included), dependencies
pointing down only (cli -> ui -> mlp -> engine), and a thin app.py."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "sgdtui"
LAYERS = {"sgdtui.engine": 0, "sgdtui.mlp": 1, "sgdtui.ui": 2, "sgdtui.cli": 3}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def _type_checking_only(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"))


def imports_of(name: str) -> set[str]:
    """Every sgdtui module ``name`` imports, at module level or inside functions (annotations under
    ``if TYPE_CHECKING:`` are not imports at run time and are skipped)."""
    path = MODULES[name]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if _type_checking_only(node):
            return
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
        else:
            targets = []
        for target in targets:
            if target.startswith("sgdtui"):
                while target not in MODULES and "." in target:
                    target = target.rsplit(".", 1)[0]
                if target in MODULES and target != name:
                    found.add(target)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


GRAPH = {name: imports_of(name) for name in MODULES}


def layer(name: str) -> int | None:
    for prefix, level in LAYERS.items():
        if name == prefix or name.startswith(prefix + "."):
            return level
    return None


def test_the_scan_sees_lazy_imports():
    # engine.problem loads kinds through entry points, the MLP kind imports its race lazily: both
    # must be visible to the scan, or it could not find a lazy back edge either.
    assert "sgdtui.mlp.race" in GRAPH["sgdtui.mlp.problem"]
    assert "sgdtui.ui.launch" in GRAPH["sgdtui.cli"]


def test_no_import_cycles():
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(name: str) -> None:
        state[name] = 1
        stack.append(name)
        for target in sorted(GRAPH[name]):
            if state.get(target) == 1:
                cycle = stack[stack.index(target):] + [target]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target)
        stack.pop()
        state[name] = 2

    for name in sorted(GRAPH):
        if name not in state:
            visit(name)


def test_dependencies_point_down_only():
    upward = []
    for name, targets in GRAPH.items():
        here = layer(name)
        for target in targets:
            there = layer(target)
            if here is not None and there is not None and there > here:
                upward.append(f"{name} -> {target}")
    assert not upward, upward


def test_the_engine_names_no_problem_kind_but_its_own():
    engine = [p for name, p in MODULES.items() if layer(name) == 0]
    for path in engine:
        text = path.read_text(encoding="utf-8")
        assert "sgdtui.mlp" not in text and "MLPProblem" not in text, path


def test_app_is_a_thin_shell():
    lines = (PACKAGE / "ui" / "app.py").read_text(encoding="utf-8").count("\n")
    assert lines < 400, f"ui/app.py has {lines} lines"
