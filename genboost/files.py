"""Atomic file writes: a reader (or a crash) never sees half a file."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside `path`; on success rename it over `path`, on error delete it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give outputs the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())


def write_text(path: str | os.PathLike, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj) -> None:
    """Strict JSON (NaN/inf are refused: write None instead), sorted keys, trailing newline."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n")


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@contextmanager
def logging_to(log_files):
    """Log INFO and up to a rule's log file (Snakemake's `log`); an error is logged there too, and its one line
    printed on stderr, then raised."""
    logging.basicConfig(
        filename=log_files[0] if log_files else None,
        filemode="w",
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
    )
    try:
        yield
    except Exception as e:
        logging.error("%s", e)  # the log then says what went wrong, not only stderr's traceback
        # Snakemake's terminal shows only "CalledProcessError ... message: None" for a failed script: this line
        # puts the cause there too, before the traceback.
        print(error_line(e), file=sys.stderr, flush=True)
        raise


def error_line(error: BaseException) -> str:
    """'genboost: <type>: <message>' on one line."""
    return f"genboost: {type(error).__name__}: {' '.join(str(error).split())}"
