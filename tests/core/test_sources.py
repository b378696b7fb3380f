"""Pinned archives, mirrors, safe extraction, patches and local source overrides."""

from __future__ import annotations

import hashlib
import http.server
import io
import os
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.core.helpers import ukbuild
from ukbuild import _sources
from ukbuild._store import Store
from ukbuild.errors import SourceError
from ukbuild.model import ArchiveSource


def make_tar(members: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
    return buf.getvalue()


GOOD = make_tar({"pkg-1.0/hello.txt": b"hello from the archive\n", "pkg-1.0/build.sh": b"cat hello.txt > \"$DESTDIR/out.txt\"\n"})


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A static HTTP server on a free loopback port, serving tmp_path/www."""
    root = tmp_path / "www"
    root.mkdir()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):  # type: ignore[no-untyped-def]
            super().__init__(*a, directory=str(root), **kw)

        def log_message(self, *_a):  # type: ignore[no-untyped-def]
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", root
    httpd.shutdown()
    httpd.server_close()


def project(tmp_path: Path, url: str, sha256: str, extra: str = "") -> Path:
    p = tmp_path / "proj"
    p.mkdir(exist_ok=True)
    (p / "ukbuild.toml").write_text(
        f'[project]\nname = "p"\n[package.pkg]\nsource = {{ url = "{url}", sha256 = "{sha256}"{extra} }}\n'
        'steps = ["sh build.sh"]\n'
    )
    return p


def test_download_verify_and_reuse_offline(tmp_path: Path, server: tuple[str, Path]) -> None:
    base, www = server
    (www / "pkg-1.0.tar.gz").write_bytes(GOOD)
    p = project(tmp_path, f"{base}/pkg-1.0.tar.gz", hashlib.sha256(GOOD).hexdigest())
    assert ukbuild("build", "-C", p, "--cache-dir", tmp_path / "c").code == 0
    assert (p / "out" / "pkg" / "pkg" / "out.txt").read_text() == "hello from the archive\n"
    (www / "pkg-1.0.tar.gz").unlink()  # upstream gone: the archive is in the store
    (p / "ukbuild.toml").write_text((p / "ukbuild.toml").read_text().replace("sh build.sh", "sh build.sh && true"))
    again = ukbuild("build", "-C", p, "--cache-dir", tmp_path / "c", "--json")
    assert again.code == 0, again.err
    assert again.executed() == ["pkg"]


def test_wrong_sha256_stores_nothing(tmp_path: Path, server: tuple[str, Path]) -> None:
    base, www = server
    (www / "pkg-1.0.tar.gz").write_bytes(GOOD)
    p = project(tmp_path, f"{base}/pkg-1.0.tar.gz", "0" * 64)
    result = ukbuild("build", "-C", p, "--cache-dir", tmp_path / "c")
    assert result.code == 1
    assert "could not fetch an archive with sha256 " + "0" * 64 in result.err
    assert "sha256 mismatch: got " + hashlib.sha256(GOOD).hexdigest() in result.err
    blob = hashlib.sha256(GOOD).hexdigest()
    assert not list((tmp_path / "c" / "cas").rglob(blob + "*"))
    assert not list((tmp_path / "c" / "ac").rglob("*/*"))


def test_mirror_is_searched_by_sha256_first(tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    sha = hashlib.sha256(GOOD).hexdigest()
    (mirror / sha).write_bytes(GOOD)
    p = project(tmp_path, "http://127.0.0.1:9/unreachable.tar.gz", sha)
    result = ukbuild("build", "-C", p, "--cache-dir", tmp_path / "c", "--mirror", mirror)
    assert result.code == 0, result.err


@pytest.mark.parametrize(
    ("members", "links", "why"),
    [
        ({"pkg/../../evil": b"x"}, None, "absolute path or '..'"),
        ({"/etc/evil": b"x"}, None, "absolute path or '..'"),
        ({"pkg/ok": b"x"}, {"pkg/link": "../../outside"}, "link escapes the tree"),
        ({"pkg/ok": b"x"}, {"pkg/abs": "/etc/passwd"}, "link to absolute path"),
    ],
)
def test_unsafe_archives_are_refused(tmp_path: Path, members: dict[str, bytes], links: dict[str, str] | None, why: str) -> None:
    data = make_tar(members, links)
    archive = tmp_path / "bad.tar.gz"
    archive.write_bytes(data)
    p = project(tmp_path, archive.as_uri(), hashlib.sha256(data).hexdigest())
    result = ukbuild("build", "-C", p, "--cache-dir", tmp_path / "c")
    assert result.code == 1
    assert "unsafe archive member" in result.err and why in result.err
    assert not (tmp_path / "evil").exists() and not (tmp_path / "outside").exists()


def test_patches_apply_in_order_and_failures_are_clear(tmp_path: Path) -> None:
    archive = tmp_path / "pkg.tar.gz"
    archive.write_bytes(GOOD)
    p = project(tmp_path, archive.as_uri(), hashlib.sha256(GOOD).hexdigest(), ', patches = ["one.patch", "two.patch"]')
    (p / "one.patch").write_text("--- a/hello.txt\n+++ b/hello.txt\n@@ -1 +1 @@\n-hello from the archive\n+patched once\n")
    (p / "two.patch").write_text("--- a/hello.txt\n+++ b/hello.txt\n@@ -1 +1 @@\n-patched once\n+patched twice\n")
    assert ukbuild("build", "-C", p, "--cache-dir", tmp_path / "c").code == 0
    assert (p / "out" / "pkg" / "pkg" / "out.txt").read_text() == "patched twice\n"
    (p / "two.patch").write_text("--- a/hello.txt\n+++ b/hello.txt\n@@ -1 +1 @@\n-no such line\n+x\n")
    result = ukbuild("build", "-C", p, "--cache-dir", tmp_path / "c")
    assert result.code == 1
    assert "patch two.patch does not apply" in result.err


def test_local_override_is_keyed_by_content_and_reported(tmp_path: Path) -> None:
    archive = tmp_path / "pkg.tar.gz"
    archive.write_bytes(GOOD)
    p = project(tmp_path, archive.as_uri(), hashlib.sha256(GOOD).hexdigest())
    assert ukbuild("build", "-C", p, "--cache-dir", tmp_path / "c").code == 0
    local = tmp_path / "dev-tree"
    local.mkdir()
    (local / "hello.txt").write_text("from my working tree\n")
    (local / "build.sh").write_text('cat hello.txt > "$DESTDIR/out.txt"\n')
    result = ukbuild("build", "-C", p, "--cache-dir", tmp_path / "c", "--override", f"pkg={local}", "--json")
    assert result.code == 0, result.err
    assert (p / "out" / "pkg" / "pkg" / "out.txt").read_text() == "from my working tree\n"
    finished = [e for e in result.events() if e["event"] == "build-finished"][0]
    assert finished["overrides"] == {"pkg": str(local)}
    explained = ukbuild("explain", "-C", p, "--cache-dir", tmp_path / "c", "--override", f"pkg={local}", "pkg")
    assert "inputs.src:pkg@src.override: (absent) -> tree:sha256:" in explained.out
    assert "inputs.src:pkg@src.fixed: sha256:" in explained.out


def test_offline_reads_only_the_store_and_local_mirrors(tmp_path: Path, server: tuple[str, Path]) -> None:
    base, www = server
    (www / "pkg-1.0.tar.gz").write_bytes(GOOD)
    sha = hashlib.sha256(GOOD).hexdigest()
    source = ArchiveSource(f"{base}/pkg-1.0.tar.gz", sha)
    store = Store(tmp_path / "c")
    with pytest.raises(SourceError, match="not in the cache, and the build is offline") as refused:
        _sources.fetch_archive(source, store, [base], offline=True)
    assert refused.value.reason == "offline"
    assert store.find_blob(sha) is None
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "pkg-1.0.tar.gz").write_bytes(GOOD)
    assert _sources.fetch_archive(source, store, [base, str(mirror)], offline=True).hash == sha
    (mirror / "pkg-1.0.tar.gz").unlink()
    assert _sources.fetch_archive(source, store, offline=True).hash == sha  # now from the store


def test_archive_override_is_unpacked_like_the_pinned_source(tmp_path: Path) -> None:
    """--override PKG=ARCHIVE (Debian's orig tarball): unpacked with the pinned source's strip,
    keyed by the archive's bytes; another archive rebuilds."""
    p = project(tmp_path, "http://127.0.0.1:9/pkg-1.0.tar.gz", hashlib.sha256(GOOD).hexdigest())
    orig = tmp_path / "pkg_1.0.orig.tar.gz"

    def build(text: bytes) -> None:
        orig.write_bytes(make_tar({"pkg-1.0/hello.txt": text, "pkg-1.0/build.sh": b'cat hello.txt > "$DESTDIR/out.txt"\n'}))
        result = ukbuild("build", "-C", p, "--cache-dir", tmp_path / "c", "--override", f"pkg={orig}", "--json")
        assert result.code == 0, result.err
        assert result.executed() == ["pkg"]
        assert (p / "out" / "pkg" / "pkg" / "out.txt").read_bytes() == text

    build(b"from the orig tarball\n")
    build(b"from the next upload\n")
    missing = ukbuild("build", "-C", p, "--cache-dir", tmp_path / "c", "--override", f"pkg={tmp_path / 'nope.tar.gz'}")
    assert missing.code == 2 and "no such directory or archive" in missing.err


def test_offline_build_refuses_to_download(tmp_path: Path, server: tuple[str, Path]) -> None:
    base, www = server
    (www / "pkg-1.0.tar.gz").write_bytes(GOOD)
    p = project(tmp_path, f"{base}/pkg-1.0.tar.gz", hashlib.sha256(GOOD).hexdigest())
    refused = ukbuild("build", "-C", p, "--cache-dir", tmp_path / "c", "--offline")
    assert refused.code == 1
    assert "not in the cache, and the build is offline" in refused.err and "hint: build once" in refused.err
    assert ukbuild("build", "-C", p, "--cache-dir", tmp_path / "c").code == 0
    (www / "pkg-1.0.tar.gz").unlink()
    (p / "ukbuild.toml").write_text((p / "ukbuild.toml").read_text().replace("sh build.sh", "sh build.sh && true"))
    again = ukbuild("build", "-C", p, "--cache-dir", tmp_path / "c", "--offline", "--json")
    assert again.code == 0, again.err
    assert again.executed() == ["pkg"]  # ran, from the archive in the store


def test_override_tree_digest_is_reused_until_something_in_it_changes(tmp_path: Path) -> None:
    """A warm build does not re-describe an unchanged override tree (its root is remembered by the
    stat of everything in it), yet any change in it — content, a replaced file, a new file — rebuilds."""
    p = project(tmp_path, "http://127.0.0.1:9/pkg-1.0.tar.gz", hashlib.sha256(GOOD).hexdigest())
    tree = tmp_path / "dev-tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "build.sh").write_text('cat hello.txt sub/*.txt > "$DESTDIR/out.txt"\n')
    (tree / "hello.txt").write_text("one\n")
    (tree / "sub" / "a.txt").write_text("a\n")

    def age() -> None:  # older than the racy window, so the tree's digest is remembered
        for path in [tree, *tree.rglob("*")]:
            os.utime(path, (time.time() - 100, time.time() - 100))

    def build() -> tuple[list[str], str]:
        age()
        result = ukbuild("build", "-C", p, "--cache-dir", tmp_path / "c", "--override", f"pkg={tree}", "--json")
        assert result.code == 0, result.err
        return result.executed(), (p / "out" / "pkg" / "pkg" / "out.txt").read_text()

    assert build() == (["pkg"], "one\na\n")
    assert build() == ([], "one\na\n")
    (tree / "hello.txt").write_text("two\n")  # same size, new content
    assert build() == (["pkg"], "two\na\n")
    (tree / "sub" / "b.txt").write_text("b\n")
    assert build() == (["pkg"], "two\na\nb\n")
    (tree / "sub" / "a.txt").unlink()
    (tree / "sub" / "a.txt").write_text("A\n")
    assert build() == (["pkg"], "two\nA\nb\n")
    assert build() == ([], "two\nA\nb\n")
