"""Downloads against a real HTTP server on localhost (issue 26): a transfer cut after the
server answered is retried and resumed with a Range request, errors the server means are
not retried, an unreachable server gets one try (the offline fallback comes at once), a
long download logs its progress, and every result is checksum-verified and atomic."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from bench.data import fetch

PAYLOAD = os.urandom(3 * (1 << 20) + 12345)  # several read chunks
MD5 = "md5:" + hashlib.md5(PAYLOAD).hexdigest()


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.requests: list[str | None] = []  # the Range header of each GET
        self.cut_after: list[int] = []  # per coming request: send this many bytes, then close
        self.statuses: list[int] = []  # per coming request: answer with this error status
        self.ranges = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/data.bin"


class Handler(BaseHTTPRequestHandler):
    server: Server

    def log_message(self, *args) -> None:  # quiet
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        srv = self.server
        srv.requests.append(self.headers.get("Range"))
        if srv.statuses:
            self.send_error(srv.statuses.pop(0))
            return
        start = 0
        if srv.ranges and self.headers.get("Range"):
            start = int(self.headers["Range"].removeprefix("bytes=").rstrip("-"))
        body = PAYLOAD[start:]
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(PAYLOAD) - 1}/{len(PAYLOAD)}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if srv.cut_after:
            self.wfile.write(body[:srv.cut_after.pop(0)])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


@pytest.fixture
def server():
    srv = Server()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def cache_files(d: Path) -> list[Path]:
    return [p for p in d.rglob("*") if p.is_file()]


def test_a_cut_transfer_is_resumed_where_it_stopped(server, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="bench.data.fetch")
    server.cut_after = [1_000_000]
    dest = fetch.download(server.url, tmp_path / "data.bin", MD5)
    assert dest.read_bytes() == PAYLOAD
    assert server.requests == [None, "bytes=1000000-"]
    assert "interrupted" in caplog.text and "retry 1 of 3 from byte 1000000" in caplog.text
    assert oct(dest.stat().st_mode & 0o777) == oct(0o666 & ~current_umask())
    assert cache_files(tmp_path) == [dest]


def test_a_server_without_ranges_sends_it_all_again(server, tmp_path):
    server.ranges = False
    server.cut_after = [500_000, 2_000_000]
    dest = fetch.download(server.url, tmp_path / "data.bin", MD5)
    assert dest.read_bytes() == PAYLOAD and len(server.requests) == 3


def test_server_errors_are_retried_and_client_errors_are_not(server, tmp_path):
    server.statuses = [503, 502]
    assert fetch.download(server.url, tmp_path / "a.bin", MD5).read_bytes() == PAYLOAD
    assert len(server.requests) == 3

    server.requests.clear()
    server.statuses = [404]
    with pytest.raises(fetch.FetchError) as err:
        fetch.download(server.url, tmp_path / "b.bin", MD5)
    assert server.requests == [None] and "HTTP 404" in str(err.value)
    assert "\n" not in str(err.value) and not (tmp_path / "b.bin").exists()


def test_retries_end_and_leave_nothing_behind(server, tmp_path):
    server.cut_after = [100] * 10
    with pytest.raises(fetch.FetchError, match="failed"):
        fetch.download(server.url, tmp_path / "c.bin", MD5, retries=2)
    assert len(server.requests) == 3 and cache_files(tmp_path) == []


def test_a_server_that_cannot_be_reached_gets_one_try(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="bench.data.fetch")
    srv = Server()  # bound, then closed: nothing listens on its port
    url = srv.url
    srv.server_close()
    with pytest.raises(fetch.FetchError, match="download of .* failed"):
        fetch.download(url, tmp_path / "d.bin", MD5)
    assert "retry" not in caplog.text and cache_files(tmp_path) == []


def test_a_wrong_checksum_after_a_resume_is_discarded(server, tmp_path):
    server.cut_after = [2_000_000]
    with pytest.raises(fetch.FetchError, match="expected 0+; discarded"):
        fetch.download(server.url, tmp_path / "e.bin", "md5:" + "0" * 32)
    assert cache_files(tmp_path) == []


def test_progress_is_logged(server, tmp_path, caplog, monkeypatch):
    caplog.set_level(logging.INFO, logger="bench.data.fetch")
    monkeypatch.setattr(fetch, "PROGRESS_SECONDS", 0.0)
    fetch.download(server.url, tmp_path / "f.bin", MD5)
    mb = len(PAYLOAD) / 1e6
    assert f"downloading {server.url} ({mb:.1f} MB)" in caplog.text
    assert f"data.bin: {mb:.1f} of {mb:.1f} MB (100%)" in caplog.text


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
