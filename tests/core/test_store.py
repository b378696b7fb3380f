"""The local CAS + AC: atomic, verified, shareable, and never the reason a build fails."""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ukbuild import _store
from ukbuild._reapi import ActionResult, Digest, OutputFile
from ukbuild._store import COMPRESS_MIN, Store, parse_size


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "cache") as opened:  # (closing removes a degraded store's spill area)
        yield opened


class TestBlobs:
    def test_small_blob_raw_large_blob_compressed(self, store: Store, tmp_path: Path) -> None:
        small = store.put_bytes(b"x" * 100)
        large_file = tmp_path / "large"
        large_file.write_bytes(b"ELF" * COMPRESS_MIN)
        large = store.put_file(large_file)
        assert store.blob_path(small).suffix == ""
        assert store.blob_path(large).name.endswith(".zst")
        assert store.blob_path(large).stat().st_size < large.size
        assert store.read_bytes(small) == b"x" * 100
        out = tmp_path / "exported"
        assert store.export(large, out)
        assert out.read_bytes() == large_file.read_bytes()

    def test_find_blob_by_hash_alone(self, store: Store) -> None:
        """Pinned archives are known by sha256 only; the size is recovered from the store."""
        for data in (b"a" * 10, b"b" * (COMPRESS_MIN + 5)):
            digest = store.put_bytes(data)
            assert store.find_blob(digest.hash) == digest
        assert store.find_blob("0" * 64) is None

    @pytest.mark.parametrize("size", [100, COMPRESS_MIN * 2])
    def test_corrupt_blob_is_a_miss_and_removed(self, store: Store, tmp_path: Path, size: int) -> None:
        digest = store.put_bytes(os.urandom(size))
        path = store.blob_path(digest)
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
        assert store.read_bytes(digest) is None
        assert not path.exists()

    def test_export_of_corrupt_blob_leaves_no_file(self, store: Store, tmp_path: Path) -> None:
        digest = store.put_bytes(b"content" * 10)
        store.blob_path(digest).write_bytes(b"tampered" * 10)
        target = tmp_path / "out"
        assert not store.export(digest, target)
        assert not target.exists()


class TestExport:
    @pytest.mark.parametrize("size", [100, COMPRESS_MIN, 5 << 20])
    def test_exact_mode_ignores_the_umask(self, store: Store, tmp_path: Path, size: int) -> None:
        """Materialised outputs get 0o755/0o644 whatever the umask (set on the open file)."""
        digest = store.put_bytes(os.urandom(size))
        old = os.umask(0o077)
        try:
            assert store.export(digest, tmp_path / "plain")
            assert store.export(digest, tmp_path / "exact", executable=True, exact_mode=True)
        finally:
            os.umask(old)
        assert (tmp_path / "plain").stat().st_mode & 0o777 == 0o600
        assert (tmp_path / "exact").stat().st_mode & 0o777 == 0o755
        assert (tmp_path / "exact").read_bytes() == (tmp_path / "plain").read_bytes()

    def test_many_large_exports_on_threads_reuse_decompressors_safely(self, store: Store, tmp_path: Path) -> None:
        """Each thread keeps its own decompressor and buffer: concurrent exports stay exact."""
        from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415

        blobs = {i: os.urandom(COMPRESS_MIN // 2) * (3 + i % 5) for i in range(24)}
        digests = {i: store.put_bytes(data) for i, data in blobs.items()}
        with ThreadPoolExecutor(max_workers=4) as pool:
            assert all(pool.map(lambda i: store.export(digests[i], tmp_path / f"f{i}"), blobs))
        assert all((tmp_path / f"f{i}").read_bytes() == data for i, data in blobs.items())

    def test_truncated_large_blob_is_a_miss(self, store: Store, tmp_path: Path) -> None:
        digest = store.put_bytes(os.urandom(COMPRESS_MIN * 3))
        path = store.blob_path(digest)
        path.write_bytes(path.read_bytes()[:-100])
        assert not store.export(digest, tmp_path / "out")
        assert not (tmp_path / "out").exists()
        assert not path.exists()


class TestFrameChecksum:
    """Compressed blobs are verified by zstd's frame checksum when it is all there, and by
    SHA-256 otherwise: no damage anywhere in the file is ever served."""

    DATA = b"".join(b"line %d of a compressible output\n" % i for i in range(4000))

    @pytest.fixture
    def blob(self, store: Store) -> tuple[Digest, bytes]:
        digest = store.put_bytes(self.DATA)
        return digest, store.blob_path(digest).read_bytes()

    def _served(self, store: Store, digest: Digest, raw: bytes, tmp_path: Path) -> bytes | None:
        store.blob_path(digest).parent.mkdir(parents=True, exist_ok=True)
        store.blob_path(digest).write_bytes(raw)
        out = tmp_path / "out"
        ok = store.export(digest, out)
        assert ok == out.exists()
        served = out.read_bytes() if ok else None
        out.unlink(missing_ok=True)
        return served

    def test_a_whole_frame_is_not_hashed_again(
        self, store: Store, blob: tuple[Digest, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        digest, _ = blob
        monkeypatch.setattr(_store.hashlib, "sha256", _no_hashing)
        assert store.export(digest, tmp_path / "out")
        assert (tmp_path / "out").read_bytes() == self.DATA

    def test_a_dependency_hit_checks_the_frame_not_sha256(
        self, store: Store, blob: tuple[Digest, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """``check`` (a cache hit on outputs that are used, not exported) trusts the frame too,
        and still finds a damaged one."""
        digest, raw = blob
        with monkeypatch.context() as patched:
            patched.setattr(_store.hashlib, "sha256", _no_hashing)
            assert store.check(digest)
        damaged = bytearray(raw)
        damaged[len(raw) // 2] ^= 0x01
        store.blob_path(digest).write_bytes(bytes(damaged))
        assert not store.check(digest)
        assert not store.blob_path(digest).exists()

    def test_every_flipped_byte_is_caught_or_harmless(
        self, store: Store, blob: tuple[Digest, bytes], tmp_path: Path
    ) -> None:
        digest, raw = blob
        positions = [*range(24), *range(24, len(raw) - 24, 97), *range(len(raw) - 24, len(raw))]
        caught = 0
        for at in positions:
            damaged = bytearray(raw)
            damaged[at] ^= 0x01
            served = self._served(store, digest, bytes(damaged), tmp_path)
            assert served in (None, self.DATA), f"byte {at} of {len(raw)}: damaged content served"
            caught += served is None
        assert caught > len(positions) // 2

    @pytest.mark.parametrize("cut", [1, 4, 12, 13, 15, 16, 17, 100])
    def test_a_cut_file_falls_back_to_hashing(
        self, store: Store, blob: tuple[Digest, bytes], tmp_path: Path, cut: int
    ) -> None:
        """Cut inside the trailer or the checksum, the content is still whole: SHA-256 proves it
        (and verify names the damage).  With a flipped content byte as well it is refused."""
        digest, raw = blob
        assert self._served(store, digest, raw[:-cut], tmp_path) in (None, self.DATA)
        if store.blob_path(digest).exists():
            assert [p.kind for p in store.verify()] == ["corrupt-blob"]
        damaged = bytearray(raw[:-cut])
        damaged[len(damaged) // 2] ^= 0x01
        assert self._served(store, digest, bytes(damaged), tmp_path) is None

    def test_a_cleared_checksum_flag_falls_back_to_hashing(self, store: Store, tmp_path: Path) -> None:
        """Without the flag zstd skips the checksum: a content byte flipped as well (in a
        stored block of random bytes, so the frame still decodes) is refused."""
        data = os.urandom(COMPRESS_MIN * 2)
        digest = store.put_bytes(data)
        raw = store.blob_path(digest).read_bytes()
        damaged = bytearray(raw)
        assert damaged[4] & 0x04, "the frame header descriptor has no checksum flag"
        damaged[4] &= ~0x04
        damaged[len(damaged) // 2] ^= 0x01
        assert self._served(store, digest, bytes(damaged), tmp_path) is None

    def test_blob_of_an_older_store_is_hashed(self, store: Store, tmp_path: Path) -> None:
        """Frames written without checksum and trailer are still served, verified by SHA-256."""
        import zstandard  # noqa: PLC0415

        digest = Digest.of(self.DATA)
        old = zstandard.ZstdCompressor(level=2).compress(self.DATA)
        assert self._served(store, digest, old, tmp_path) == self.DATA
        damaged = bytearray(old)
        damaged[len(old) // 2] ^= 0x01
        assert self._served(store, digest, bytes(damaged), tmp_path) is None


def _no_hashing() -> None:
    raise AssertionError("a checksummed frame was hashed with SHA-256")


class TestActionCache:
    def test_hit_requires_every_blob(self, store: Store) -> None:
        blob = store.put_bytes(b"object")
        key = Digest.of(b"key")
        store.put_action_result(key, ActionResult((OutputFile("o", blob),)))
        assert store.get_action_result(key) is not None
        store.blob_path(blob).unlink()
        assert store.get_action_result(key) is None

    def test_verify_mode_hashes_content(self, store: Store) -> None:
        blob = store.put_bytes(b"object-bytes")
        key = Digest.of(b"key")
        store.put_action_result(key, ActionResult((OutputFile("o", blob),)))
        store.blob_path(blob).write_bytes(b"OBJECT-bytes")  # same size, other content
        assert store.get_action_result(key) is not None  # presence only
        assert store.get_action_result(key, verify=True) is None

    def test_garbage_entry_is_a_miss(self, store: Store) -> None:
        key = Digest.of(b"k")
        path = store.root / "ac" / key.hash[:2] / key.hash
        path.parent.mkdir(parents=True)
        path.write_bytes(b"\xff\xff\xff")
        assert store.get_action_result(key) is None


class TestVerify:
    def test_names_every_problem(self, store: Store) -> None:
        """Flipped byte, truncation, dangling action result and stale temp file: each reported."""
        flipped = store.put_bytes(b"A" * 200)
        truncated = store.put_bytes(os.urandom(COMPRESS_MIN * 3))
        missing = store.put_bytes(b"will vanish")
        key = Digest.of(b"k")
        store.put_action_result(key, ActionResult((OutputFile("o", missing),)))
        p = store.blob_path(flipped)
        p.write_bytes(b"B" + p.read_bytes()[1:])
        t = store.blob_path(truncated)
        t.write_bytes(t.read_bytes()[:100])
        store.blob_path(missing).unlink()
        stale = store.root / "tmp" / "w-stale"
        stale.write_bytes(b"half")
        old = time.time() - 7200
        os.utime(stale, (old, old))
        kinds = sorted((p.kind, Path(p.path).name) for p in store.verify())
        assert kinds == sorted([
            ("corrupt-blob", flipped.hash),
            ("corrupt-blob", truncated.hash + ".zst"),
            ("dangling-action", key.hash),
            ("stale-temp", "w-stale"),
        ])
        assert len(store.verify(repair=True)) == 4
        assert store.verify() == []


class TestGc:
    def test_evicts_least_recently_used_first(self, store: Store) -> None:
        digests = [store.put_bytes(os.urandom(8192) + bytes([i])) for i in range(10)]
        now = time.time()
        for i, d in enumerate(digests):
            os.utime(store.blob_path(d), (now - 1000 + i, now - 1000 + i))
        assert store.has(digests[0])  # a hit refreshes it
        removed, _freed = store.gc(target_bytes=5 * 8192 + 4096 * 5)
        assert removed >= 4
        assert store.blob_path(digests[0]).exists()
        assert not store.blob_path(digests[1]).exists()
        assert store.blob_path(digests[-1]).exists()

    def test_second_collector_skips(self, store: Store) -> None:
        import fcntl  # noqa: PLC0415

        with open(store.root / "gc.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            assert store.gc(0) is None


class TestDegraded:
    def test_full_disk_degrades_to_a_spill_area(self, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
        """ENOSPC while publishing: one warning, the blob still readable for this build, no AC entry."""
        warnings: list[str] = []
        store._warn = warnings.append
        real_link = os.link

        def full(src: str, dst: str) -> None:
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(os, "link", full)
        digest = store.put_bytes(b"output bytes")
        monkeypatch.setattr(os, "link", real_link)
        assert not store.writable
        assert len(warnings) == 1 and "No space left" in warnings[0]
        assert store.read_bytes(digest) == b"output bytes"
        store.put_action_result(Digest.of(b"k"), ActionResult())
        assert not list((store.root / "ac").rglob("*"))
        spill = store.blob_path(digest)
        store.close()
        assert not spill.exists()

    def test_disk_full_mid_compression_degrades(
        self, store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """ENOSPC part-way through a compressed blob reaches the store as an OSError (a zstd
        frame left unfinished must not turn it into a compression error) and degrades."""
        big = tmp_path / "big"
        big.write_bytes(os.urandom(3 << 20))
        warnings: list[str] = []
        store._warn = warnings.append
        real_fdopen = os.fdopen
        full = [True]  # the cache's file system only: the spill area has room

        class FillsUp:
            def __init__(self, f) -> None:  # type: ignore[no-untyped-def]
                self.f, self.written = f, 0

            def write(self, data: bytes) -> int:
                self.written += len(data)
                if self.written > 1 << 20 and full[0]:
                    full[0] = False
                    raise OSError(errno.ENOSPC, "No space left on device")
                return self.f.write(data)

            def __enter__(self) -> FillsUp:
                return self

            def __exit__(self, *exc: object) -> None:
                self.f.close()

        monkeypatch.setattr(os, "fdopen", lambda *a, **k: FillsUp(real_fdopen(*a, **k)))
        digest = store.put_file(big)
        assert not store.writable and len(warnings) == 1 and "No space left" in warnings[0]
        assert store.read_bytes(digest) == big.read_bytes()
        assert not list((store.root / "cas").rglob("*.zst"))

    def test_unusable_cache_dir(self, tmp_path: Path) -> None:
        blocker = tmp_path / "file"
        blocker.write_text("not a directory")
        warnings: list[str] = []
        store = Store(blocker / "cache", warn=warnings.append)
        assert not store.writable and warnings
        digest = store.put_bytes(b"x")
        assert store.read_bytes(digest) == b"x"
        store.close()


def test_parse_size() -> None:
    assert parse_size("10G") == 10 << 30
    assert parse_size("512MiB") == 512 << 20
    assert parse_size("4096") == 4096
    with pytest.raises(ValueError, match="not a size"):
        parse_size("lots")
