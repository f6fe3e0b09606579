"""Code fingerprints from imports: a rule's script and the genboost modules it imports, read with `ast`.

Snakemake reruns a job when its script changes, not when a module the script imports changes. So every rule
gets `code=rule_code(...)` as a param: a hash of its script and of every package module the script imports,
directly or through other modules, at the top or lazily inside a function. Editing a module then reruns exactly
the rules whose scripts import it. Nothing is imported to find the imports: the Snakefile stays fast and light.
"""

from __future__ import annotations

import ast
import hashlib
from functools import cache
from pathlib import Path

from genboost.errors import CodeError

# The genboost this process runs: in the Snakefile the checkout's (Snakemake puts the Snakefile's directory
# first on sys.path), in a job whatever genboost is installed.
PACKAGE_DIR = Path(__file__).resolve().parent


def imported_modules(script_path: str | Path, package_dir: str | Path) -> list[Path]:
    """The module files of the package in `package_dir` that a script imports, transitively, sorted."""
    package_dir = Path(package_dir)
    if not (package_dir / "__init__.py").is_file():
        raise CodeError(f"{package_dir} is not a Python package (no __init__.py): cannot fingerprint {script_path}")
    script = Path(script_path)
    inside = script.resolve().is_relative_to(package_dir.resolve())  # a module of the package as the script
    found: set[Path] = set()
    # (file, the package its relative imports start from; none for a script outside the package)
    todo = [(script, _anchor_of(script.resolve(), package_dir.resolve()) if inside else None)]
    while todo:
        path, anchor = todo.pop()
        for module, required in _imports(str(path), path.read_bytes(), anchor, package_dir.name):
            for file in _module_files(module, required, package_dir, path):
                if file not in found:
                    found.add(file)
                    todo.append((file, _anchor_of(file, package_dir)))
    return sorted(found)


def script_fingerprint(script_path: str | Path, package_dir: str | Path) -> str:
    """SHA-256 over the script's bytes and, per imported module, its name relative to `package_dir` and bytes."""
    h = hashlib.sha256(Path(script_path).read_bytes())
    for file in imported_modules(script_path, package_dir):
        source = file.read_bytes()
        h.update(f"\0{file.relative_to(package_dir).as_posix()}\0{len(source)}\0".encode())
        h.update(source)
    return h.hexdigest()


def modules_fingerprint(entries, package_dir: str | Path) -> str:
    """SHA-256 over `script_fingerprint` of each entry module (paths relative to `package_dir`), in order: the
    code those modules run, found through their imports."""
    h = hashlib.sha256()
    for entry in entries:
        h.update(f"\0{entry}\0{script_fingerprint(Path(package_dir) / entry, package_dir)}".encode())
    return h.hexdigest()


def rule_code(workflow, script: str) -> str:
    """A rule's `code` param: the fingerprint of its script (a path relative to the Snakefile's directory)."""
    return script_fingerprint(Path(workflow.basedir) / script, PACKAGE_DIR)


def check_running_code(expected: str, script_path: str | Path, package_dir: str | Path = PACKAGE_DIR) -> str:
    """The fingerprint of the code this job runs, for its store key; an error if the Snakefile planned other code."""
    running = script_fingerprint(script_path, package_dir)
    if running != expected:
        raise CodeError(
            f"the Snakefile's code and the installed genboost differ (installed at {package_dir}): "
            f"{script_path} with it has fingerprint {running[:12]}, the Snakefile planned {expected[:12]}; "
            "install with `pip install -e .` from the checkout"
        )
    return running


@cache
def _imports(filename: str, source: bytes, anchor: str | None, package: str) -> tuple[tuple[str, bool], ...]:
    """(module, required) for each import of the package in a file's source, inside functions too.

    `from genboost import x` imports the module genboost.x if there is one, else a name of genboost: such
    candidates are not required. Cached by content: the Snakefile fingerprints many rules over the same files.
    """
    out = []
    for node in _statements(ast.parse(source, filename=filename)):
        if isinstance(node, ast.Import):
            out += [(alias.name, True) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, anchor, filename)
            if base is not None:
                out.append((base, True))
                out += [(f"{base}.{alias.name}", False) for alias in node.names if alias.name != "*"]
    return tuple((m, r) for m, r in out if m == package or m.startswith(package + "."))


def _statements(tree: ast.Module):
    """Every statement, in the bodies of functions, classes, ifs, loops, withs, trys and matches too.

    Imports are statements: walking only statements skips the expressions, most of a module's nodes.
    """
    todo = [tree]
    while todo:
        node = todo.pop()
        for field in ("body", "orelse", "handlers", "finalbody", "cases"):
            children = getattr(node, field, [])
            yield from children
            todo += children


def _absolute(node: ast.ImportFrom, anchor: str | None, filename: str) -> str | None:
    """The absolute module name of a `from ... import` (None for a relative import outside the package)."""
    if node.level == 0:
        return node.module
    if anchor is None:
        return None
    parts = anchor.split(".")
    if node.level > len(parts):
        raise CodeError(f"{filename}:{node.lineno}: relative import beyond the top of package {parts[0]}")
    base = ".".join(parts[: len(parts) - node.level + 1])
    return f"{base}.{node.module}" if node.module else base


def _module_files(module: str, required: bool, package_dir: Path, importer: Path) -> list[Path]:
    """The files importing `module` runs: each enclosing package's __init__.py and the module itself."""
    files = []
    here = package_dir
    for part in module.split(".")[1:]:
        if (here / "__init__.py").is_file():
            files.append(here / "__init__.py")
        if (here / f"{part}.py").is_file():
            here = here / f"{part}.py"
        elif (here / part).is_dir():
            here = here / part
        elif required:
            raise CodeError(f"{importer} imports {module}, which is not in {package_dir}")
        else:
            return files  # a name defined in the enclosing module, not a module
    files.append(here / "__init__.py" if here.is_dir() else here)
    return [f for f in files if f.is_file()]


def _anchor_of(file: Path, package_dir: Path) -> str:
    """The package a module's relative imports start from: itself for an __init__.py, else its parent."""
    parts = file.relative_to(package_dir).with_suffix("").parts
    return ".".join((package_dir.name, *parts[:-1]))
