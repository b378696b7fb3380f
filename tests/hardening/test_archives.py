"""Hostile archives and downloads: refused with a clear error, nothing written outside the
extraction dir, nothing stored."""

from __future__ import annotations

import hashlib
import http.server
import io
import os
import tarfile
import threading
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ukbuild._sources import extract_archive, fetch_archive
from ukbuild._store import Store
from ukbuild.errors import SourceError
from ukbuild.model import ArchiveSource

TAR_MODES = {"tar.gz": "w:gz", "tar.xz": "w:xz", "tar.bz2": "w:bz2"}
LIMIT = 1 << 20


def tar(fmt: str, members: list[tarfile.TarInfo | tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=TAR_MODES[fmt]) as archive:
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                archive.addfile(member)
            else:
                info = tarfile.TarInfo(member[0])
                info.size = len(member[1])
                archive.addfile(info, io.BytesIO(member[1]))
    return buf.getvalue()


def special(name: str, kind: bytes, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    return info


def zipped(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(zipfile.ZipInfo(name), data, zipfile.ZIP_DEFLATED)
    return buf.getvalue()


def lying_zip() -> bytes:
    """A zip bomb that declares 10 bytes for a member that inflates to 5 MB."""
    data = bytearray(zipped({"pkg/ok": b"fine", "pkg/bomb": b"\0" * 5_000_000}))
    central = data.rfind(b"PK\x01\x02")
    data[central + 24 : central + 28] = (10).to_bytes(4, "little")
    local = data.find(b"PK\x03\x04", 1)
    data[local + 22 : local + 26] = (10).to_bytes(4, "little")
    return bytes(data)


OK = ("pkg/ok", b"fine")
TAR_ATTACKS: dict[str, tuple[list[tarfile.TarInfo | tuple[str, bytes]], str, str]] = {
    "absolute": ([OK, ("/tmp/evil", b"x")], "unsafe-archive", "absolute path or '..'"),
    "dotdot": ([OK, ("pkg/../../evil", b"x")], "unsafe-archive", "absolute path or '..'"),
    "symlink-escape": ([OK, special("pkg/up", tarfile.SYMTYPE, "../../..")], "unsafe-archive", "link escapes the tree"),
    "symlink-absolute": ([special("pkg/etc", tarfile.SYMTYPE, "/etc")], "unsafe-archive", "link to absolute path"),
    "symlink-then-write": ([special("pkg/d", tarfile.SYMTYPE, ".."), ("pkg/d/evil", b"x")], "unsafe-archive", "link escapes"),
    "hardlink-escape": ([OK, special("pkg/h", tarfile.LNKTYPE, "../../etc/passwd")], "unsafe-archive", "link escapes the tree"),
    "hardlink-absolute": ([special("pkg/h", tarfile.LNKTYPE, "/etc/passwd")], "unsafe-archive", "link to absolute path"),
    "device": ([special("pkg/sda", tarfile.BLKTYPE)], "unsafe-archive", "device or FIFO"),
    "chardev": ([special("pkg/null", tarfile.CHRTYPE)], "unsafe-archive", "device or FIFO"),
    "fifo": ([special("pkg/pipe", tarfile.FIFOTYPE)], "unsafe-archive", "device or FIFO"),
    "huge": ([OK, ("pkg/big", b"\0" * (LIMIT + 1))], "archive-too-large", f"unpacks to more than {LIMIT} bytes"),
}
ZIP_ATTACKS: dict[str, tuple[Callable[[], bytes], str, str]] = {
    "absolute": (lambda: zipped({"pkg/ok": b"x", "/tmp/evil": b"x"}), "unsafe-archive", "absolute path or '..'"),
    "dotdot": (lambda: zipped({"pkg/ok": b"x", "pkg/../../evil": b"x"}), "unsafe-archive", "absolute path or '..'"),
    "huge": (lambda: zipped({"pkg/big": b"\0" * (LIMIT + 1)}), "archive-too-large", f"unpacks to more than {LIMIT} bytes"),
    "many-members": (lambda: zipped({f"pkg/{n}": b"\0" * (LIMIT // 8) for n in range(9)}), "archive-too-large", "unpacks to more"),
    "lying-sizes": (lying_zip, "bad-archive", "cannot unpack"),
}


def outside_dest(root: Path) -> list[str]:
    dest = root / "dest"
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p != dest and dest not in p.parents)


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Path]:
    """A directory in which only box/dest may change (archives are written beside it)."""
    root = tmp_path / "box"
    root.mkdir()
    (root / "keep").write_text("untouched\n")
    yield root
    assert outside_dest(root) == ["keep"]
    assert (root / "keep").read_text() == "untouched\n"
    assert not (tmp_path / "evil").exists() and not Path("/tmp/evil").exists()


def refused(archive: Path, dest: Path, reason: str, message: str) -> None:
    with pytest.raises(SourceError) as info:
        extract_archive(archive, dest, strip=1, origin="source of pkg", limit=LIMIT)
    assert info.value.reason == reason
    assert info.value.message.startswith("source of pkg: ") and message in info.value.message
    for path in dest.rglob("*"):
        assert path.resolve().is_relative_to(dest.resolve()), path


@pytest.mark.parametrize("fmt", sorted(TAR_MODES))
@pytest.mark.parametrize("attack", sorted(TAR_ATTACKS))
def test_hostile_tar_is_refused(box: Path, fmt: str, attack: str) -> None:
    members, reason, message = TAR_ATTACKS[attack]
    archive = box.parent / f"a.{fmt}"
    archive.write_bytes(tar(fmt, members))
    refused(archive, box / "dest", reason, message)


@pytest.mark.parametrize("attack", sorted(ZIP_ATTACKS))
def test_hostile_zip_is_refused(box: Path, attack: str) -> None:
    make, reason, message = ZIP_ATTACKS[attack]
    archive = box.parent / "a.zip"
    archive.write_bytes(make())
    refused(archive, box / "dest", reason, message)


@pytest.mark.parametrize("fmt", [*sorted(TAR_MODES), "zip"])
def test_truncated_archive_is_a_clear_error(box: Path, fmt: str) -> None:
    """Half of a valid archive (compressed stream or zip directory cut off) is a SourceError."""
    payload = os.urandom(200_000)
    data = zipped({"pkg/f": payload}) if fmt == "zip" else tar(fmt, [("pkg/f", payload)])
    archive = box.parent / f"a.{fmt}"
    archive.write_bytes(data[: len(data) // 2])
    refused(archive, box / "dest", "bad-archive", "cannot unpack")


@pytest.mark.parametrize("fmt", [*sorted(TAR_MODES), "zip"])
def test_safe_archive_unpacks(box: Path, fmt: str) -> None:
    files = {"pkg/a": b"a", "pkg/sub/b": b"b" * 70_000}
    data = zipped(files) if fmt == "zip" else tar(fmt, [*files.items(), special("pkg/l", tarfile.SYMTYPE, "sub/b")])
    archive = box.parent / f"a.{fmt}"
    archive.write_bytes(data)
    extract_archive(archive, box / "dest", strip=1, origin="source of pkg", limit=LIMIT)
    assert (box / "dest" / "sub" / "b").read_bytes() == files["pkg/sub/b"]
    if fmt != "zip":
        assert os.readlink(box / "dest" / "l") == "sub/b"


# --- downloads ---------------------------------------------------------------

GOOD = tar("tar.gz", [("pkg/hello", b"hello\n")])
SHA = hashlib.sha256(GOOD).hexdigest()


class Server:
    """An HTTP server on a free 127.0.0.1 port answering from a route table."""

    def __init__(self, routes: dict[str, Callable[[http.server.BaseHTTPRequestHandler], None]]) -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                routes.get(self.path, lambda h: h.send_error(404))(self)

            def log_message(self, *_args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)


def send(body: bytes, length: int | None = None) -> Callable[[http.server.BaseHTTPRequestHandler], None]:
    def reply(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(body) if length is None else length))
        handler.end_headers()
        handler.wfile.write(body)
        handler.close_connection = True

    return reply


def redirect(location: str) -> Callable[[http.server.BaseHTTPRequestHandler], None]:
    def reply(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(302)
        handler.send_header("Location", location)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    return reply


@pytest.fixture
def servers() -> Iterator[tuple[Server, Server]]:
    """Two servers on 127.0.0.1, different ports: one origin, one 'other host'."""
    other = Server({"/pkg.tar.gz": send(GOOD)})
    origin = Server({
        "/pkg.tar.gz": send(GOOD),
        "/same": redirect("/pkg.tar.gz"),
        "/other-port": redirect(f"{other.url}/pkg.tar.gz"),
        "/other-name": redirect(f"{other.url.replace('127.0.0.1', 'localhost')}/pkg.tar.gz"),
        "/truncated": send(GOOD[:100], length=len(GOOD)),
        "/wrong": send(GOOD + b"x"),
    })
    yield origin, other
    origin.stop()
    other.stop()


def stored(cache: Path) -> list[str]:
    return sorted(str(p.relative_to(cache)) for p in cache.rglob("*") if p.is_file() and p.name != "VERSION")


def test_redirect_on_the_same_host_and_port_is_followed(tmp_path: Path, servers: tuple[Server, Server]) -> None:
    store = Store(tmp_path / "cache")
    digest = fetch_archive(ArchiveSource(f"{servers[0].url}/same", SHA, 1, ()), store)
    assert store.read_bytes(digest) == GOOD


@pytest.mark.parametrize(
    ("path", "message", "temporary"),
    [
        ("/other-port", "refused redirect to another host", True),
        ("/other-name", "refused redirect to another host", True),
        ("/truncated", f"truncated: got 100 of {len(GOOD)} bytes", True),
        ("/wrong", "sha256 mismatch", False),
    ],
)
def test_bad_download_is_refused_and_nothing_stored(
    tmp_path: Path, servers: tuple[Server, Server], path: str, message: str, temporary: bool
) -> None:
    """Another host (host and port decide: 127.0.0.1 on another port is another host), a body
    shorter than its Content-Length, or the wrong bytes: a SourceError, and no blob or temp file."""
    cache = tmp_path / "cache"
    with pytest.raises(SourceError) as info:
        fetch_archive(ArchiveSource(f"{servers[0].url}{path}", SHA, 1, ()), Store(cache))
    assert info.value.reason == "fetch-failed"
    assert message in (info.value.detail or "")
    assert info.value.temporary is temporary
    assert stored(cache) == []
