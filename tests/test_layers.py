"""The package's layers: each module imports only its own layer and those below, without cycles, and stays small."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "genboost"
# Bottom to top; a module's layer is its folder, the top-level modules are the base (or the wiring, on top).
LAYERS = ("base", "config", "data", "train", "measures", "analysis", "compare", "wiring")
MAX_LINES = 300


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> str:
    parts = module.split(".")
    if len(parts) > 2 or (len(parts) == 2 and (PACKAGE / parts[1]).is_dir()):
        return parts[1]
    return "wiring" if parts[-1].split("_")[0] == "wiring" else "base"  # the Snakefile's modules: wiring*.py


def imports_of(path: Path) -> set[str]:
    """The genboost modules a file imports, at the top or inside functions (a `from x import name` counts as x.name
    where that is a module, else as x)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                name = f"{node.module}.{alias.name}"
                found.add(name if name in MODULES else node.module)
    return {m for m in found if m.split(".")[0] == "genboost"}


FILES = sorted(PACKAGE.rglob("*.py"))
MODULES = {module_name(p): p for p in FILES}
GRAPH = {name: imports_of(path) - {name} for name, path in MODULES.items()}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_imports_a_layer_above_its_own(module):
    rank = LAYERS.index(layer_of(module))
    upward = sorted(m for m in GRAPH[module] if LAYERS.index(layer_of(m)) > rank)
    assert not upward, f"{module} ({layer_of(module)}) imports {upward} from a layer above"


def test_no_import_cycles():
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for dep in sorted(GRAPH.get(name, ())):
            if state.get(dep) == 1:
                raise AssertionError(f"import cycle: {' -> '.join([*path[path.index(dep) :], dep])}")
            if dep in GRAPH and dep not in state:
                visit(dep, [*path, dep])
        state[name] = 2

    for name in sorted(GRAPH):
        if name not in state:
            visit(name, [name])


def test_only_the_snakefile_wires():
    wiring = {m for m in GRAPH if layer_of(m) == "wiring"}
    importers = sorted(m for m, deps in GRAPH.items() if wiring & deps and m not in wiring)
    scripts = sorted(p.name for p in (PACKAGE.parent / "workflow/scripts").glob("*.py") if "wiring" in p.read_text())
    assert not importers and not scripts, f"wiring is imported by {importers + scripts}; only the Snakefile may"


@pytest.mark.parametrize("path", FILES + sorted((PACKAGE.parent / "workflow/scripts").glob("*.py")), ids=str)
def test_modules_stay_small(path):
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{path} has {lines} lines (at most {MAX_LINES}): split it by what its parts do"


def _names_an_exception(base: ast.expr) -> bool:
    name = base.attr if isinstance(base, ast.Attribute) else getattr(base, "id", "")
    return name.endswith(("Error", "Exception"))


def test_every_exception_class_is_in_the_errors_module():
    """One module holds genboost's exceptions, in the base layer (any layer may raise them), importing nothing."""
    elsewhere = sorted(
        f"{name}.{node.name}"
        for name, path in MODULES.items()
        if name != "genboost.errors"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ClassDef) and any(_names_an_exception(b) for b in node.bases)
    )
    assert not elsewhere, f"exception classes outside genboost/errors.py: {elsewhere}"
    assert layer_of("genboost.errors") == "base" and not GRAPH["genboost.errors"]
    errors = ast.parse(MODULES["genboost.errors"].read_text()).body
    assert not [node for node in errors if isinstance(node, ast.Import | ast.ImportFrom)]
