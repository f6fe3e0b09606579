"""genboost.data.download.fetch against a real HTTP server on 127.0.0.1: good, missing, truncated and wrong data."""

from __future__ import annotations

import http.server
import io
import socket
import threading
import zipfile

import pytest

from genboost.data.download import fetch
from genboost.errors import DataError
from genboost.files import sha256_file

MEMBER = "ObesityDataSet_raw_and_data_sinthetic.csv"


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def csv_bytes(obesity_csv) -> bytes:
    return obesity_csv.read_bytes()


@pytest.fixture(scope="module")
def csv_sha(obesity_csv) -> str:
    return sha256_file(obesity_csv)


@pytest.fixture(scope="module")
def server(csv_bytes, anes96_csv):
    """Base URL of a server holding /good.zip, /truncated.zip, /tampered.zip, /nomember.zip, /nested.zip."""
    good = _zip({MEMBER: csv_bytes})
    routes = {
        "/good.zip": good,
        "/truncated.zip": good[: len(good) // 2],
        "/tampered.zip": _zip({MEMBER: csv_bytes.replace(b"Female", b"Femal3", 1)}),
        "/nomember.zip": _zip({"README.txt": b"no csv here\n"}),
        "/nested.zip": _zip({f"data/{MEMBER}": csv_bytes}),
        "/anes96.csv": anes96_csv.read_bytes(),  # a URL that is the CSV itself (no member)
    }

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = routes.get(self.path)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/zip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def dest(tmp_path, monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")  # a proxy must not intercept the local server
    out = tmp_path / "resources"
    out.mkdir()
    return out / "obesity.csv"


def _assert_nothing_left(dest):
    assert list(dest.parent.iterdir()) == [], "a failed fetch must leave neither dest nor temp files"


@pytest.mark.parametrize("path", ["/good.zip", "/nested.zip"])
def test_download_writes_verified_csv(server, dest, csv_bytes, csv_sha, path):
    assert fetch(server + path, MEMBER, csv_sha, dest, dataset="obesity") == dest
    assert dest.read_bytes() == csv_bytes
    assert [p.name for p in dest.parent.iterdir()] == [dest.name]


def test_file_url_is_read_like_a_download(tmp_path, dest, csv_bytes, csv_sha):
    zip_path = tmp_path / "local.zip"
    zip_path.write_bytes(_zip({MEMBER: csv_bytes}))
    fetch(zip_path.as_uri(), MEMBER, csv_sha, dest, dataset="obesity")
    assert dest.read_bytes() == csv_bytes


def test_http_404_is_a_clear_error(server, dest, csv_sha):
    url = server + "/missing.zip"
    with pytest.raises(DataError, match="404") as err:
        fetch(url, MEMBER, csv_sha, dest, dataset="obesity")
    assert url in str(err.value) and "datasets.obesity.local_copy" in str(err.value)
    _assert_nothing_left(dest)


def test_truncated_zip_is_a_clear_error(server, dest, csv_sha):
    url = server + "/truncated.zip"
    with pytest.raises(DataError, match="not a valid zip") as err:
        fetch(url, MEMBER, csv_sha, dest, dataset="obesity")
    assert url in str(err.value)
    _assert_nothing_left(dest)


def test_zip_without_member_is_a_clear_error(server, dest, csv_sha):
    with pytest.raises(DataError, match="no single member") as err:
        fetch(server + "/nomember.zip", MEMBER, csv_sha, dest, dataset="obesity")
    assert MEMBER in str(err.value) and "README.txt" in str(err.value)
    _assert_nothing_left(dest)


def test_wrong_checksum_in_zip_is_a_clear_error(server, dest, csv_sha):
    with pytest.raises(DataError, match="checksum mismatch") as err:
        fetch(server + "/tampered.zip", MEMBER, csv_sha, dest, dataset="obesity")
    message = str(err.value)
    assert f"expected sha256 {csv_sha} (config key datasets.obesity.sha256), got " in message and MEMBER in message
    _assert_nothing_left(dest)


def test_unreachable_url_says_what_to_download_and_where(dest, csv_sha):
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/x.zip"
    with pytest.raises(DataError) as err:
        fetch(url, MEMBER, csv_sha, dest, dataset="obesity")
    message = str(err.value)
    assert url in message and MEMBER in message and "datasets.obesity.local_copy" in message and str(dest) in message
    assert err.value.__cause__ is None and err.value.__suppress_context__, "one error, not a chain"
    _assert_nothing_left(dest)


def test_local_copy_is_verified_and_copied(obesity_csv, dest, csv_bytes, csv_sha):
    # The URL is never contacted when a local copy is given.
    fetch("http://127.0.0.1:9/unused.zip", MEMBER, csv_sha, dest, local_copy=obesity_csv, dataset="obesity")
    assert dest.read_bytes() == csv_bytes


def test_a_local_copy_needs_no_url(obesity_csv, dest, csv_bytes, csv_sha):
    fetch(None, None, csv_sha, dest, local_copy=obesity_csv, dataset="mine")
    assert dest.read_bytes() == csv_bytes


def test_local_copy_with_wrong_checksum_is_refused(tmp_path, dest, csv_bytes, csv_sha):
    bad = tmp_path / "lf.csv"
    bad.write_bytes(csv_bytes.replace(b"\r\n", b"\n"))  # the common LF-converted variant
    with pytest.raises(DataError) as err:
        fetch("http://127.0.0.1:9/unused.zip", MEMBER, csv_sha, dest, local_copy=bad, dataset="obesity")
    assert str(err.value).startswith(
        f"checksum mismatch for {bad}: expected sha256 {csv_sha} (config key datasets.obesity.sha256), got "
    )
    _assert_nothing_left(dest)


def test_missing_local_copy_is_a_clear_error(tmp_path, dest, csv_sha):
    missing = tmp_path / "nowhere.csv"
    with pytest.raises(DataError, match="datasets.obesity.local_copy") as err:
        fetch("http://127.0.0.1:9/unused.zip", MEMBER, csv_sha, dest, local_copy=missing, dataset="obesity")
    assert str(missing) in str(err.value)
    _assert_nothing_left(dest)


def test_a_url_without_member_is_the_csv_itself(server, tmp_path, anes96_csv):
    dest = tmp_path / "resources" / "anes96" / "anes96.csv"
    fetch(server + "/anes96.csv", None, sha256_file(anes96_csv), dest, dataset="anes96")
    assert dest.read_bytes() == anes96_csv.read_bytes()


def test_anes96_with_a_wrong_checksum_names_its_config_key(server, tmp_path, csv_sha):
    dest = tmp_path / "anes96.csv"
    with pytest.raises(DataError) as err:
        fetch(server + "/anes96.csv", None, csv_sha, dest, dataset="anes96")
    message = str(err.value)
    assert message.startswith(f"checksum mismatch for {server}/anes96.csv: expected sha256 {csv_sha}")
    assert "config key datasets.anes96.sha256" in message
    _assert_nothing_left(dest)
