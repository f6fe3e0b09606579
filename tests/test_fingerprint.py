"""Code fingerprints: the import reader on a synthetic package; on the real workflow, the jobs an edit plans."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from workflow_helpers import SNAKEMAKE, append_code, copy_run, planned

from genboost.errors import CodeError
from genboost.fingerprint import (
    _kept,
    check_running_code,
    imported_modules,
    modules_fingerprint,
    script_fingerprint,
)

# Every import form, imports inside functions, methods, except and else blocks, relative imports, a subpackage
# and a cycle (top -> plain -> chain -> back -> top); unused.py is imported by nothing.
SYNTHETIC = {
    "script.py": "import json\n\nfrom genboost import top\n",
    "genboost/__init__.py": 'VERSION = "1"\n',
    "genboost/top.py": (
        "import numpy\n\nimport genboost.plain as plain\n"
        "from genboost import VERSION, pair_a, pair_b  # VERSION is a name of the package, not a module\n\n\n"
        "def later():\n    from genboost.lazy import thing\n\n\n"
        "class Holder:\n    def method(self):\n        try:\n            import genboost.in_method\n"
        "        except ImportError:\n            from genboost import in_handler\n"
        "        if not self:\n            pass\n        else:\n            import genboost.in_else\n"
    ),
    "genboost/plain.py": "from .chain import link\n",
    "genboost/chain.py": "def link():\n    from . import back\n",
    "genboost/back.py": "from genboost import top\n",
    "genboost/pair_a.py": "",
    "genboost/pair_b.py": "",
    "genboost/lazy.py": "from genboost.sub.deep import x\n\nthing = 1\n",
    "genboost/in_method.py": "",
    "genboost/in_handler.py": "",
    "genboost/in_else.py": "",
    "genboost/sub/__init__.py": "from .helper import h\n",
    "genboost/sub/helper.py": "h = 1\n",
    "genboost/sub/deep.py": "from .. import pair_a\n\nx = 1\n",
    "genboost/unused.py": "",
}
IMPORTED = (
    "__init__.py back.py chain.py in_else.py in_handler.py in_method.py lazy.py pair_a.py pair_b.py plain.py "
    "sub/__init__.py sub/deep.py sub/helper.py top.py"
).split()


@pytest.fixture
def synthetic(tmp_path) -> Path:
    """The root of a synthetic genboost package and its script.py."""
    for name, source in SYNTHETIC.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(source)
    return tmp_path


# A fresh process's fingerprint of the synthetic script (functools' per-process cache would hide the cache folder)
FINGERPRINT = "import sys; from genboost import fingerprint; print(fingerprint.script_fingerprint(*sys.argv[1:]))"


def fresh_fingerprint(synthetic: Path, cache: str) -> str:
    env = {**os.environ, "GENBOOST_CACHE": cache}
    args = [sys.executable, "-c", FINGERPRINT, str(synthetic / "script.py"), str(synthetic / "genboost")]
    return subprocess.run(args, env=env, capture_output=True, text=True, check=True).stdout


def test_the_cache_folder_keeps_each_files_reading_and_never_changes_a_fingerprint(synthetic, tmp_path):
    cache = tmp_path / "cache"
    off = fresh_fingerprint(synthetic, "")
    assert fresh_fingerprint(synthetic, str(cache)) == off  # cold: read and kept
    entries = sorted(cache.rglob("*.json"))
    # the code and the imports of the script and of each module it imports; files alike in content share them
    assert 0 < len(entries) <= 2 * (len(IMPORTED) + 1)
    assert fresh_fingerprint(synthetic, str(cache)) == off  # warm
    entries[0].write_text("{not json")  # a broken entry is read again and replaced
    assert fresh_fingerprint(synthetic, str(cache)) == off and json.loads(entries[0].read_text())["value"] is not None
    append_code(synthetic / "genboost" / "sub" / "helper.py")  # an edit is new content: a new entry, a new fingerprint
    assert fresh_fingerprint(synthetic, str(cache)) == fresh_fingerprint(synthetic, "") != off


def test_a_cache_entry_is_keyed_by_content_and_context(tmp_path, monkeypatch):
    monkeypatch.setenv("GENBOOST_CACHE", str(tmp_path))
    reads = []

    def read(value):
        return lambda: reads.append(value) or value

    assert _kept("code", b"x = 1", "", read("a")) == "a"
    assert _kept("code", b"x = 1", "", read("b")) == "a" and reads == ["a"]  # kept: not read again
    assert _kept("code", b"x = 2", "", read("c")) == "c"  # other content
    assert _kept("imports", b"x = 1", "genboost", read("d")) == "d"  # another kind and context
    assert reads == ["a", "c", "d"]


def test_reader_finds_every_module_the_script_imports_and_no_other(synthetic):
    package = synthetic / "genboost"
    found = imported_modules(synthetic / "script.py", package)
    assert [f.relative_to(package).as_posix() for f in found] == IMPORTED


def test_fingerprint_follows_imported_code_only(synthetic):
    script, package = synthetic / "script.py", synthetic / "genboost"
    before = script_fingerprint(script, package)
    append_code(package / "unused.py")
    assert script_fingerprint(script, package) == before
    original = append_code(package / "chain.py")  # imported lazily, three imports away
    assert script_fingerprint(script, package) != before
    (package / "chain.py").write_bytes(original)
    assert script_fingerprint(script, package) == before
    append_code(script)
    assert script_fingerprint(script, package) != before


def test_comments_docstrings_and_blank_lines_change_no_fingerprint(synthetic):
    script, package = synthetic / "script.py", synthetic / "genboost"
    before = script_fingerprint(script, package)
    path = package / "chain.py"
    original = append_code(path, '\n\n# a comment\n"""not a docstring: an expression"""\n')
    assert script_fingerprint(script, package) != before  # a string statement after code is code
    docstring = '"""A new module docstring, with a \u00d7 in it."""  # and a comment\n\n'.encode()
    path.write_bytes(docstring + original + b"\n# end\n")
    assert script_fingerprint(script, package) == before
    path.write_bytes(original.replace(b"\n", b"  # commented\n\n"))
    assert script_fingerprint(script, package) == before
    path.write_bytes(original + b"\nx = '# a hash inside a string is code'\n")
    assert script_fingerprint(script, package) != before


def test_modules_fingerprint_covers_each_entry_module_and_its_imports_only(synthetic):
    package, entries = synthetic / "genboost", ["lazy.py", "pair_b.py"]
    before = modules_fingerprint(entries, package)
    assert before != modules_fingerprint(entries[::-1], package) != modules_fingerprint(entries[:1], package)
    append_code(package / "unused.py")
    append_code(package / "in_method.py")  # imported by top.py, which neither entry imports
    assert modules_fingerprint(entries, package) == before
    original = append_code(package / "sub" / "helper.py")  # lazy -> sub.deep -> sub/__init__ -> helper
    assert modules_fingerprint(entries, package) != before
    (package / "sub" / "helper.py").write_bytes(original)
    assert modules_fingerprint(entries, package) == before
    append_code(package / "pair_b.py")  # the second entry itself
    assert modules_fingerprint(entries, package) != before


def test_fingerprint_does_not_depend_on_where_the_package_lives(synthetic, tmp_path_factory):
    """A checkout and an installed copy of the same code agree: the job compares the two."""
    elsewhere = shutil.copytree(synthetic, tmp_path_factory.mktemp("site-packages") / "copy")
    assert script_fingerprint(elsewhere / "script.py", elsewhere / "genboost") == script_fingerprint(
        synthetic / "script.py", synthetic / "genboost"
    )


@pytest.mark.parametrize("statement", ["from genboost.missing import x", "import genboost.missing"])
def test_a_missing_module_fails_naming_the_importer(synthetic, statement):
    append_code(synthetic / "genboost" / "lazy.py", f"\n\ndef f():\n    {statement}\n")
    with pytest.raises(CodeError, match=r"lazy\.py imports genboost\.missing, which is not in .*genboost"):
        imported_modules(synthetic / "script.py", synthetic / "genboost")


def test_running_code_must_be_the_planned_code(synthetic):
    script, package = synthetic / "script.py", synthetic / "genboost"
    planned_code = script_fingerprint(script, package)
    assert check_running_code(planned_code, script, package) == planned_code
    append_code(package / "lazy.py")  # as if the installed genboost were older or newer than the checkout
    message = rf"installed genboost differ \(installed at {re.escape(str(package))}\).*pip install -e \."
    with pytest.raises(CodeError, match=message):
        check_running_code(planned_code, script, package)


# The real workflow: one experiment of two cells trained in one job, so that a dry run shows each rule once.
RULE_OF_SCRIPT = {
    "download": "download_obesity",
    "preprocess": "preprocess",
    "train": "train_main",
    "measure": "measure_main",
    "aggregate": "aggregate_main",
    "figures": "figures_main",
    "measures_figure": "measures_figure_main",
    "summary": "summary",
    "vs_talk": "vs_talk",
}
DOWNSTREAM = {  # the rules whose inputs a rule's outputs are
    "download_obesity": {"preprocess"},
    "preprocess": {"train_main"},
    "train_main": {"measure_main", "aggregate_main", "figures_main", "measures_figure_main", "vs_talk"},
    "measure_main": {"aggregate_main", "measures_figure_main"},  # the other figures and vs_talk read no measure
    "aggregate_main": {"summary"},
}
PACKAGE = Path(__file__).resolve().parent.parent / "genboost"
MODULES = sorted(p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py"))


def importing_rules(root: Path = PACKAGE.parent) -> dict[str, set[str]]:
    """module -> the rules whose scripts import genboost/<module>, directly or through other modules."""
    package = root / "genboost"
    imports = {
        rule: set(imported_modules(root / f"workflow/scripts/{script}.py", package))
        for script, rule in RULE_OF_SCRIPT.items()
    }
    return {module: {rule for rule, files in imports.items() if package / module in files} for module in MODULES}


def one_module_per_importing_rules() -> list[str]:
    """A rule is planned when its `code` param, its script's fingerprint, changes, and an edit changes the
    fingerprints of exactly the scripts that import the module (test_fingerprint_follows_imported_code_only): so
    modules imported by the same rules plan alike, and one edit per such group stands for every module."""
    groups: dict[frozenset[str], str] = {}
    for module, rules in importing_rules().items():
        groups.setdefault(frozenset(rules), module)
    return sorted(groups.values())


@pytest.fixture(scope="module")
def study(unpacked_run) -> Path:
    """A finished two-model study with its own copy of the package (conftest's shared run): each test that edits a
    module restores it."""
    return unpacked_run


# The modules the tests below edit by name (the parametrized test adds one_module_per_importing_rules()).
EDITED = ("train/jobs.py", "measures/sharpness.py", "analysis/stats.py", "analysis/figures.py")


@pytest.fixture(scope="module")
def plan_after_editing(study, tmp_path_factory):
    """module -> the rules a dry run plans after a line of code is appended to genboost/<module>. Each module is
    edited in its own copy of the study and all are planned side by side: a dry run is ~2 s of one core, mostly
    imports."""
    modules = sorted({*EDITED, *one_module_per_importing_rules()})
    copies = {module: copy_run(study, tmp_path_factory.mktemp("edited") / "study") for module in modules}
    for module, workdir in copies.items():
        append_code(workdir / "genboost" / module)
    with ThreadPoolExecutor(max_workers=os.cpu_count()) as pool:
        plans = dict(zip(modules, pool.map(lambda workdir: set(planned(workdir)), copies.values()), strict=True))
    return plans.__getitem__


def with_downstream(rules: set[str]) -> set[str]:
    todo, out = list(rules), set(rules)
    while todo:
        for rule in DOWNSTREAM.get(todo.pop(), ()):
            if rule not in out:
                out.add(rule)
                todo.append(rule)
    return out | {"all"} if out else out


AFTER_MEASURING = {"aggregate_main", "measures_figure_main", "summary", "all"}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("module", "first"),
    [
        ("train/jobs.py", {"train_main", "measure_main", "figures_main", "vs_talk"}),
        ("measures/sharpness.py", {"measure_main"}),  # vs_talk reads no measure
    ],
)
def test_editing_the_train_job_or_a_measure_plans_it_and_what_follows(plan_after_editing, module, first):
    """The train job reruns (and reuses its stored results, `test_workflow_measure`); a measure trains nothing."""
    assert plan_after_editing(module) == first | AFTER_MEASURING


@pytest.mark.slow
def test_editing_the_statistics_plans_tables_figures_and_summary_but_no_training(plan_after_editing):
    assert plan_after_editing("analysis/stats.py") == {
        "aggregate_main",
        "figures_main",
        "measures_figure_main",
        "vs_talk",
        "summary",
        "all",
    }


@pytest.mark.slow
def test_editing_the_figures_plans_only_the_figures(plan_after_editing):
    """The figures (the measures figure's too), and the comparison with the talk, whose figure is saved by
    figures.save."""
    assert plan_after_editing("analysis/figures.py") == {"figures_main", "measures_figure_main", "vs_talk", "all"}


@pytest.mark.slow
@pytest.mark.parametrize("module", one_module_per_importing_rules())
def test_editing_a_module_plans_exactly_the_rules_whose_scripts_import_it(study, plan_after_editing, module):
    assert plan_after_editing(module) == with_downstream(importing_rules(study)[module])


@pytest.mark.slow
def test_a_train_job_refuses_code_other_than_the_snakefiles(study, tmp_path):
    """As after a non-editable `pip install .` and an edit: the Snakefile sees its checkout, jobs the installed copy."""
    workdir = shutil.copytree(study, tmp_path / "study")
    installed = tmp_path / "installed" / "genboost"
    shutil.copytree(workdir / "genboost", installed, ignore=shutil.ignore_patterns("__pycache__"))
    append_code(installed / "train" / "engine.py")
    stored = sorted((workdir / "results" / "store").rglob("*"))
    target = "results/main/runs/optimizer=sgd/lr=0.02/wd=0/rho=0/seed=0/metrics.json"
    env = {**os.environ, "PYTHONPATH": str(installed.parent)}  # jobs import this; the Snakefile its own directory's
    proc = subprocess.run(
        [*SNAKEMAKE, "--cores", "1", "--force", target], cwd=workdir, env=env, capture_output=True, text=True
    )
    log = (workdir / "results/logs/main/model/optimizer=sgd/lr=0.02/wd=0/rho=0/seed=0.log").read_text()  # model_main
    assert proc.returncode != 0
    assert f"the Snakefile's code and the installed genboost differ (installed at {installed.resolve()})" in log
    assert "install with `pip install -e .` from the checkout" in log
    assert sorted((workdir / "results" / "store").rglob("*")) == stored  # nothing trained, nothing stored
