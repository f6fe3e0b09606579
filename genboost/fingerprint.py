"""Code fingerprints from imports: a rule's script and the genboost modules it imports, read with `ast`.

Snakemake reruns a job when its script changes, not when a module the script imports changes. So every rule
gets `code=rule_code(...)` as a param: a hash of its script and of every package module the script imports,
directly or through other modules, at the top or lazily inside a function. Editing a module then reruns exactly
the rules whose scripts import it. Nothing is imported to find the imports: the Snakefile stays fast and light.
What is hashed is the code Python runs: a file's text without its comments, docstrings and blank lines, so that
editing one of those reruns nothing (and retrains no model). Each file's reading is kept between processes, by its
content, in a cache folder (`_kept`), so that a Snakemake start does not parse the package's files again.
"""

from __future__ import annotations

import ast
import hashlib
import io
import json
import os
import tokenize
from functools import cache
from pathlib import Path

from genboost.errors import CodeError
from genboost.files import atomic_path

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
    """SHA-256 over the script's code and, per imported module, its name relative to `package_dir` and code
    (`code_text`: the text without comments, docstrings and blank lines)."""
    script_path = Path(script_path)
    h = hashlib.sha256(code_text(str(script_path), script_path.read_bytes()))
    for file in imported_modules(script_path, package_dir):
        code = code_text(str(file), file.read_bytes())
        h.update(f"\0{file.relative_to(package_dir).as_posix()}\0{len(code)}\0".encode())
        h.update(code)
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
def code_text(filename: str, source: bytes) -> bytes:
    """The source as Python runs it: without its comments, its docstrings (nothing here reads `__doc__`) and blank
    lines, each line's trailing space dropped. Read from the text itself (tokenize and ast positions), so the same
    file gives the same bytes on every Python version. Cached by content."""
    text = _kept("code", source, "", lambda: _code_text(filename, source).decode())
    return text.encode()


def _code_text(filename: str, source: bytes) -> bytes:
    text = source.decode("utf-8")
    lines = text.splitlines()
    tokens = tokenize.generate_tokens(io.StringIO(text).readline)
    cuts = [(t.start, t.end) for t in tokens if t.type == tokenize.COMMENT]
    for d in _docstrings(ast.parse(source, filename=filename)):  # ast counts columns in UTF-8 bytes
        start, end = _column(lines, d.lineno, d.col_offset), _column(lines, d.end_lineno, d.end_col_offset)
        cuts.append(((d.lineno, start), (d.end_lineno, end)))
    for (start_line, start_col), (end_line, end_col) in sorted(cuts, reverse=True):  # the last first: positions hold
        lines[start_line - 1 : end_line] = [lines[start_line - 1][:start_col] + lines[end_line - 1][end_col:]]
    return "\n".join(line.rstrip() for line in lines if line.strip()).encode()


# The cache's entries are this module's readings: an edit of it starts a new cache rather than trust the old one.
_READER = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()


def _cache_folder() -> Path | None:
    """Where files' readings are kept: $GENBOOST_CACHE (empty: nowhere), else genboost/code in the user's cache."""
    folder = os.environ.get("GENBOOST_CACHE")
    if folder is None:
        folder = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "genboost" / "code"
    return Path(folder) if folder else None


def _kept(kind: str, source: bytes, context: str, read):
    """`read()` (JSON-able) of a file, kept in the cache folder under its content, `kind`, `context` and this module's
    own code: an entry is never stale. An entry that cannot be read is read again and replaced; a cache folder that
    cannot be written is left alone."""
    folder = _cache_folder()
    if folder is None:
        return read()
    key = hashlib.sha256(f"{_READER}\0{kind}\0{context}\0".encode() + source).hexdigest()
    path = folder / key[:2] / f"{key}.json"
    try:
        return json.loads(path.read_bytes())["value"]
    except (OSError, ValueError, KeyError, TypeError):
        value = read()
    try:
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps({"value": value}))
    except OSError:
        pass
    return value


def _column(lines: list[str], line: int, byte_offset: int) -> int:
    """The character column of a UTF-8 byte offset into a line (1-based)."""
    return len(lines[line - 1].encode()[:byte_offset].decode())


def _docstrings(tree: ast.Module) -> list[ast.expr]:
    """The docstring of the module and of each class and function in it."""
    owners = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    return [
        node.body[0].value
        for node in ast.walk(tree)
        if isinstance(node, owners)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
        and isinstance(node.body[0].value.value, str)
    ]


@cache
def _imports(filename: str, source: bytes, anchor: str | None, package: str) -> tuple[tuple[str, bool], ...]:
    """(module, required) for each import of the package in a file's source, inside functions too.

    `from genboost import x` imports the module genboost.x if there is one, else a name of genboost: such
    candidates are not required. Cached by content: the Snakefile fingerprints many rules over the same files.
    """
    found = _kept("imports", source, f"{anchor}\0{package}", lambda: _read_imports(filename, source, anchor, package))
    return tuple((m, r) for m, r in found)


def _read_imports(filename: str, source: bytes, anchor: str | None, package: str) -> list[tuple[str, bool]]:
    out = []
    for node in _statements(ast.parse(source, filename=filename)):
        if isinstance(node, ast.Import):
            out += [(alias.name, True) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, anchor, filename)
            if base is not None:
                out.append((base, True))
                out += [(f"{base}.{alias.name}", False) for alias in node.names if alias.name != "*"]
    return [(m, r) for m, r in out if m == package or m.startswith(package + ".")]


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
