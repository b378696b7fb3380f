"""Deterministic tars and compressors."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from pathlib import Path

import pytest
import zstandard

from ukbuild.errors import EmitError
from ukbuild.oci.model import MediaType, sha256_digest
from ukbuild.oci.tar import (
    TarEntry,
    decompress_layer,
    entries_from_tree,
    gzip_bytes,
    make_layer,
    source_date_epoch,
    tar_bytes,
)


def _members(data: bytes) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return tar.getmembers()


def test_tar_is_sorted_root_owned_with_fixed_mtime_and_parents() -> None:
    data = tar_bytes(
        [
            TarEntry.file("b/z", b"z"),
            TarEntry.file("/a", b"a", 0o755),
            TarEntry.symlink("b/l", "z"),
        ],
        mtime=1_700_000_000,
    )
    members = _members(data)
    assert [m.name for m in members] == ["a", "b", "b/l", "b/z"]
    for member in members:
        assert (member.uid, member.gid, member.uname, member.gname) == (0, 0, "", "")
        assert member.mtime == 1_700_000_000
        assert not member.pax_headers
    assert [oct(m.mode) for m in members] == ["0o755", "0o755", "0o777", "0o644"]
    assert members[1].isdir() and members[2].issym() and members[2].linkname == "z"
    # ustar headers only: no PAX record anywhere in a plain archive
    assert b"PaxHeader" not in data and b"ustar" in data
    assert len(data) % 10240 == 0


def test_pax_only_where_needed() -> None:
    long = "d/" + "x" * 120
    members = _members(tar_bytes([TarEntry.file(long, b""), TarEntry.file("é", b"")]))
    by_name = {m.name: m for m in members}
    assert set(by_name) == {"d", long, "é"}
    assert not by_name["d"].pax_headers
    assert by_name[long].pax_headers == {"path": long}
    assert by_name["é"].pax_headers == {"path": "é"}


def test_without_parents_like_kraftkit() -> None:
    assert [
        m.name
        for m in _members(tar_bytes([TarEntry.file("unikraft/bin/kernel", b"k")], parents=False))
    ] == ["unikraft/bin/kernel"]


@pytest.mark.parametrize(
    "path", ["", "/", "a/../b", "../x", "..", "a//b", "./a", "a/./b", "a\x00b"]
)
def test_unclean_paths_are_refused(path: str) -> None:
    with pytest.raises(EmitError) as err:
        TarEntry.file(path, b"")
    assert err.value.reason == "bad-layer-path"


def test_duplicates_and_files_as_parents_are_refused() -> None:
    with pytest.raises(EmitError, match="given twice"):
        tar_bytes([TarEntry.file("a", b""), TarEntry.file("/a", b"")])
    with pytest.raises(EmitError, match="not a directory"):
        tar_bytes([TarEntry.file("a", b""), TarEntry.file("a/b", b"")])


def test_gzip_header_is_fixed_and_round_trips() -> None:
    data = os.urandom(1000) + b"a" * 5000
    blob = gzip_bytes(data)
    # magic, deflate, no flags (no name), mtime 0, XFL=2 (level 9), OS=255
    assert blob[:10] == b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    assert gzip.decompress(blob) == data
    assert gzip_bytes(data) == blob


@pytest.mark.parametrize(
    ("compression", "media_type"),
    [("gzip", MediaType.LAYER_GZIP), ("zstd", MediaType.LAYER_ZSTD), ("none", MediaType.LAYER)],
)
def test_layers_have_diff_id_of_uncompressed_tar(compression: str, media_type: str) -> None:
    entries = [TarEntry.file("k", b"kernel" * 100)]
    layer = make_layer(entries, compression=compression)  # type: ignore[arg-type]
    raw = tar_bytes(entries)
    assert layer.blob.media_type == media_type
    assert layer.diff_id == sha256_digest(raw)
    assert decompress_layer(layer.blob) == raw
    assert layer.compression == compression
    if compression == "zstd":
        params = zstandard.get_frame_parameters(layer.blob.data)
        assert params.content_size == len(raw)
        # exactly one frame: decompressing with the declared size consumes everything
        assert zstandard.ZstdDecompressor().decompress(layer.blob.data) == raw


def test_unknown_compression_is_an_emit_error() -> None:
    with pytest.raises(EmitError, match="unknown layer compression 'xz'"):
        make_layer([TarEntry.file("k", b"")], compression="xz")  # type: ignore[arg-type]


def test_source_date_epoch() -> None:
    assert source_date_epoch({}) is None
    assert source_date_epoch({"SOURCE_DATE_EPOCH": ""}) is None
    assert source_date_epoch({"SOURCE_DATE_EPOCH": "1700000000"}) == 1_700_000_000
    with pytest.raises(EmitError) as err:
        source_date_epoch({"SOURCE_DATE_EPOCH": "yesterday"})
    assert err.value.reason == "bad-source-date-epoch" and err.value.hint


def test_tree_modes_do_not_depend_on_umask(tmp_path: Path) -> None:
    def stage(root: Path, umask: int) -> None:
        old = os.umask(umask)
        try:
            (root / "bin").mkdir(parents=True)
            (root / "bin" / "kernel").write_bytes(b"k")
            (root / "bin" / "kernel").chmod(0o777 & ~umask)
            (root / "data.txt").write_bytes(b"d")
            (root / "link").symlink_to("bin/kernel")
        finally:
            os.umask(old)

    stage(tmp_path / "one", 0o022)
    stage(tmp_path / "two", 0o077)
    one = tar_bytes(entries_from_tree(tmp_path / "one"))
    assert one == tar_bytes(entries_from_tree(tmp_path / "two"))
    modes = {m.name: m.mode for m in _members(one)}
    assert modes == {"bin": 0o755, "bin/kernel": 0o755, "data.txt": 0o644, "link": 0o777}
    prefixed = [e.path for e in entries_from_tree(tmp_path / "one", prefix=".boot")]
    assert prefixed == [".boot/bin", ".boot/data.txt", ".boot/link", ".boot/bin/kernel"]


def test_tree_with_a_fifo_is_refused(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(EmitError, match="not a file, directory or symlink"):
        entries_from_tree(tmp_path)
    with pytest.raises(EmitError, match="not a directory"):
        entries_from_tree(tmp_path / "missing")


def test_gzip_blocks_do_not_depend_on_the_thread_count(monkeypatch: pytest.MonkeyPatch) -> None:
    """Multi-block layers compress in parallel; 1 or 8 threads give the same valid gzip."""
    import os
    import random

    from ukbuild.oci.tar import GZIP_BLOCK

    rng = random.Random(3)
    data = bytes(rng.choices(b"abc defgh\n", k=3 * GZIP_BLOCK + 12345))
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    one = gzip_bytes(data)
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    assert gzip_bytes(data) == one
    assert gzip.decompress(one) == data
