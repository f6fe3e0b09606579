"""Fetch a dataset's CSV: from a local copy, the CSV at its URL, or a member of the zip at its URL; verified
against its SHA-256 (config key datasets.<name>)."""

from __future__ import annotations

import hashlib
import io
import logging
import zipfile
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

from genboost.errors import DataError
from genboost.files import write_bytes

log = logging.getLogger(__name__)

DOWNLOAD_TIMEOUT_S = 60


def fetch(url: str | None, member: str | None, sha256: str, dest, local_copy=None, *, dataset: str) -> Path:
    """Write the verified CSV to `dest` (atomically): from `local_copy` if given (then `url` may be None), else
    from `url`, which is the CSV itself or, with `member`, a zip holding it. `dataset` names the config entry in
    error messages."""
    dest = Path(dest)
    key = f"datasets.{dataset}"
    if local_copy:
        data = _read_file(Path(local_copy), f"the local copy ({key}.local_copy)")
        _verify(data, sha256, str(local_copy), key)
    else:
        body = _download(url, member, dest, key)
        data = _member_of_zip(body, url, member) if member else body
        _verify(data, sha256, f"{member} in {url}" if member else url, key)
    write_bytes(dest, data)
    log.info("wrote %s (%d bytes, sha256 %s)", dest, len(data), sha256)
    return dest


def _read_file(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise DataError(f"cannot read {what} {path}: {e.strerror}") from None


def _verify(data: bytes, expected: str, what: str, key: str) -> None:
    got = hashlib.sha256(data).hexdigest()
    if got != expected.lower():
        raise DataError(
            f"checksum mismatch for {what}: expected sha256 {expected} (config key {key}.sha256), got {got}"
        )


def _download(url: str, member: str | None, dest: Path, key: str) -> bytes:
    """The file's bytes, held in memory (it is small), so that a failed download leaves no file anywhere."""
    if url.startswith("file://"):
        return _read_file(Path(url2pathname(urlparse(url).path)), f"the file of {key}.url,")
    # pooch's HTTPDownloader (requests, with a timeout) does the HTTP part; pooch.retrieve is not used
    # because its cache would keep a file on disk and we verify the member, not the zip.
    import pooch
    import requests

    log.info("downloading %s", url)
    buffer = io.BytesIO()
    try:
        pooch.HTTPDownloader(timeout=DOWNLOAD_TIMEOUT_S)(url, buffer, None)
    except requests.HTTPError as e:
        code = e.response.status_code if e.response is not None else "?"
        raise DataError(
            f"download failed for {url}: HTTP status {code}. {_offline_hint(url, member, dest, key)}"
        ) from None
    except (requests.ConnectionError, requests.Timeout) as e:
        reason = getattr(e.args[0], "reason", None) if e.args else None  # urllib3's cause, if any
        raise DataError(f"cannot reach {url} ({reason or e}). {_offline_hint(url, member, dest, key)}") from None
    except requests.RequestException as e:
        raise DataError(f"download of {url} broke off ({type(e).__name__}: {e}); try again") from None
    return buffer.getvalue()


def _offline_hint(url: str, member: str | None, dest: Path, key: str) -> str:
    unzip = f", take {member} out of the zip," if member else ""
    return (
        f"Without network access: download {url} by other means{unzip} and either "
        f"set {key}.local_copy in config.yaml to that CSV's path or put it at {dest}."
    )


def _member_of_zip(zip_bytes: bytes, url: str, member: str) -> bytes:
    try:
        with zipfile.ZipFile(io.BytesIO(zip_bytes)) as zf:
            names = zf.namelist()
            # Accept the member inside a folder too, as long as only one entry has that name.
            matches = [n for n in names if n == member] or [n for n in names if n.rsplit("/", 1)[-1] == member]
            if len(matches) != 1:
                raise DataError(f"the zip at {url} has no single member {member!r}; it holds {names}")
            return zf.read(matches[0])
    except (zipfile.BadZipFile, EOFError, zipfile.LargeZipFile) as e:
        raise DataError(f"the file at {url} is not a valid zip (truncated or corrupt download?): {e}") from None
