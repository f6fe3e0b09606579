"""Every README command works after the README's install (`pip install -e .`): what `snakemake --report` imports
is required by the package's own dependencies (pyproject.toml's `dependencies`, followed through each
distribution's requirements), not only by the test extras, which the tests install and a user does not."""

from __future__ import annotations

import ast
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from workflow_helpers import REPO_ROOT


def declared() -> list[Requirement]:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(r) for r in project["dependencies"]]


def installed_by(requirements: list[Requirement]) -> set[str]:
    """The distributions these requirements install, transitively (each with the extras asked of it; a
    requirement that only an extra not asked for, or another platform, needs is left out)."""
    found: set[str] = set()
    todo = [(r, "") for r in requirements]
    while todo:
        requirement, extra = todo.pop()
        if requirement.marker and not requirement.marker.evaluate({"extra": extra}):
            continue
        name = canonicalize_name(requirement.name)
        asked = sorted(requirement.extras)
        if (name, *asked) in found:
            continue
        found |= {name, (name, *asked)}
        try:
            requires = metadata.requires(requirement.name) or []
        except metadata.PackageNotFoundError:
            continue  # not installed here: its own requirements cannot be read
        todo += [(Requirement(r), e) for r in requires for e in ["", *asked]]
    return {n for n in found if isinstance(n, str)}


def report_imports() -> set[str]:
    """The top-level modules that Snakemake's report code imports, outside the standard library and snakemake."""
    import snakemake.report

    modules = set()
    for path in Path(snakemake.report.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    return {m for m in modules if m not in sys.stdlib_module_names and m != "snakemake"}


def test_the_reports_imports_come_with_the_declared_dependencies():
    modules = report_imports()
    assert {"pygments", "jinja2", "docutils"} <= modules, "the scan finds what the report is known to import"
    providers = metadata.packages_distributions()
    needed = {m: {canonicalize_name(d) for d in providers.get(m, [])} for m in modules}
    assert all(needed.values()), f"report modules no installed distribution provides: {needed}"
    have = installed_by(declared())
    missing = sorted(m for m, dists in needed.items() if not dists & have)
    assert not missing, f"snakemake --report imports {missing}, which pyproject.toml's dependencies do not install"
