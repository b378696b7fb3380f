"""The local artefact store: a content-addressed store (CAS) and an action cache (AC).

Layout under the cache root (see docs/architecture.md)::

    VERSION               "ukbuild-cache 1"
    cas/<aa>/<sha256>     blob, raw, when smaller than 64 KiB
    cas/<aa>/<sha256>.zst blob as one zstd frame, 64 KiB and larger
    ac/<aa>/<key>         REAPI ActionResult bytes
    tmp/                  temp files, on the same filesystem
    gc.lock               held (flock) by the one running garbage collector

Readers and writers take no locks: blobs are published with ``link`` (an
existing blob counts as success, its content is identical) and AC entries
with ``rename``; an open file stays readable after GC unlinks it.  Every read
is verified against its digest; a corrupt entry is removed and reported as a
miss.  A store that cannot be written (full disk, read-only) degrades to
"not cached" with one warning and never fails a build.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import shutil
import stat as stat_mod
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import attrs

from ._reapi import ActionResult, Digest, Tree, _field_bytes
from .errors import ConfigError, StoreError

FORMAT = "ukbuild-cache 1"
COMPRESS_MIN = 64 * 1024
CHUNK = 1 << 20
STALE_TEMP_SECONDS = 3600
TOUCH_SECONDS = 600
#: GC leaves entries used this recently (more than TOUCH_SECONDS, the touch resolution):
#: a running build may still need them, whatever the size target.
GC_GRACE_SECONDS = 900
ZSTD_LEVEL = 2  # level 3 costs a third more CPU both ways for 5% smaller ELF (and larger text)
#: Each stored action result ends with this protobuf field (REAPI decoders skip unknown
#: fields) holding the SHA-256 of the bytes before it: protobuf has no checksum, and a
#: flipped character in an output path, or an empty file, still decodes.
SEAL_FIELD = 1000
SEAL_LEN = 37  # field key (2 bytes), length (1), nested field 1 with 32 bytes (34)
#: A compressed blob is one zstd frame carrying its content checksum (XXH64, which zstd
#: checks as it decodes, at no measurable cost) followed by this skippable frame.  A file
#: cut short inside the checksum still decodes to all of its content, unchecked; the
#: trailer behind it proves that it was not, so an export can trust the frame checksum
#: instead of hashing every byte again.  Blobs without it (older stores) get SHA-256.
FRAME_END = b"\x50\x2a\x4d\x18" + (4).to_bytes(4, "little") + b"ukb1"
FRAME_HEADER_MAX = 18


@attrs.frozen
class Problem:
    """One thing ``verify`` found wrong, with the path it concerns."""

    kind: str
    path: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.path}: {self.detail}"


@attrs.frozen
class StoreStats:
    blobs: int
    blob_bytes: int
    actions: int
    action_bytes: int
    temp_files: int


def _zstd():  # type: ignore[no-untyped-def]
    import zstandard  # noqa: PLC0415 - heavy import, only when a large blob moves

    return zstandard


class Store:
    """A local CAS + AC under ``root``; safe to share between processes."""

    def __init__(
        self,
        root: Path,
        *,
        quota: int | None = None,
        warn: Callable[[str], None] | None = None,
        private: bool = False,
    ) -> None:
        self.root = Path(root)
        self._cas = os.path.join(str(self.root), "cas")
        self._ac = os.path.join(str(self.root), "ac")
        #: Decoded trees by digest (content-addressed and verified when read, so immutable).
        self._trees: dict[Digest, Tree] = {}
        self.quota = quota
        self._private = private
        self._warn = warn or (lambda _msg: None)
        self.writable = True
        self._spill: Store | None = None
        self._open()

    def close(self) -> None:
        """Drop the spill area (blobs kept only for the build that could not cache them)."""
        if self._spill is not None:
            shutil.rmtree(self._spill.root, ignore_errors=True)
            self._spill = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # --- layout ---------------------------------------------------------

    def _open(self) -> None:
        version = self.root / "VERSION"
        try:
            found = version.read_text().strip()
        except FileNotFoundError:
            found = None
        except OSError as exc:
            self._degrade(exc)
            return
        if found is not None and found != FORMAT:
            raise StoreError(
                f"{version}: unknown cache format {found!r} (this ukbuild reads {FORMAT!r})",
                hint="point UKBUILD_CACHE_DIR at another directory, or remove this one",
                reason="cache-format",
            )
        try:
            for sub in ("cas", "ac", "tmp"):
                (self.root / sub).mkdir(parents=True, exist_ok=True)
            if found is None:
                self._write_atomic(version, FORMAT.encode() + b"\n", replace=False)
        except OSError as exc:
            self._degrade(exc)

    def _degrade(self, exc: OSError) -> None:
        """Stop caching; keep this build's blobs in a private spill area instead."""
        if self._private:
            raise StoreError(
                f"no space for build outputs in {self.root}: {exc.strerror or exc}",
                hint="free some disk space, or set TMPDIR or UKBUILD_CACHE_DIR to a writable directory",
                reason="no-space",
            ) from exc
        if not self.writable:
            return
        self.writable = False
        self._warn(
            f"cache {self.root} is not writable ({exc.strerror or exc}); "
            "building without caching new results"
        )
        try:
            spill_root = Path(tempfile.mkdtemp(prefix="ukbuild-spill-"))
        except OSError as spill_exc:
            self._private = True
            self._degrade(spill_exc)
        self._spill = Store(spill_root, private=True)

    def _home(self, digest: Digest) -> str:
        h = digest.hash
        return f"{self._cas}/{h[:2]}/{h}.zst" if digest.size >= COMPRESS_MIN else f"{self._cas}/{h[:2]}/{h}"

    def _blob(self, digest: Digest) -> str:
        """Where the blob is (the spill area's copy when the cache could not take it)."""
        path = self._home(digest)
        if self._spill is not None and not os.path.exists(path):
            return self._spill._blob(digest)
        return path

    def blob_path(self, digest: Digest) -> Path:
        """Where the blob is (the spill area's copy when the cache could not take it)."""
        return Path(self._blob(digest))

    def _ac_path(self, key: Digest) -> str:
        return f"{self._ac}/{key.hash[:2]}/{key.hash}"

    # --- writing ----------------------------------------------------------

    def _tempfile(self) -> tuple[int, str]:
        return tempfile.mkstemp(dir=self.scratch_dir(), prefix="w-")

    def _write_atomic(self, final: str | Path, data: bytes, *, replace: bool) -> None:
        fd, tmp = self._tempfile()
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            self._publish(tmp, final, replace=replace)
        finally:
            _unlink(tmp)

    def _publish(self, tmp: str, final: str | Path, *, replace: bool) -> None:
        try:
            os.mkdir(os.path.dirname(final))
        except FileExistsError:
            pass
        if replace or self._private:
            os.replace(tmp, final)
            return
        try:
            os.link(tmp, final)
        except FileExistsError:
            # The same bytes are there: they are in use again, refresh them for LRU eviction.
            try:
                os.utime(final)
            except FileNotFoundError:  # collected meanwhile: publish ours
                self._publish(tmp, final, replace=replace)
            except OSError:
                pass
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.EXDEV, errno.ENOTSUP, errno.EMLINK):
                raise
            os.replace(tmp, final)

    def put_bytes(self, data: bytes) -> Digest:
        digest = Digest.of(data)
        if self._present(digest, refresh=True):
            return digest
        if self._spill is not None:
            return self._spill.put_bytes(data)
        payload = data
        if digest.size >= COMPRESS_MIN:
            payload = _compressor().compress(data) + FRAME_END
        try:
            self._write_atomic(self._home(digest), payload, replace=False)
        except OSError as exc:
            self._degrade(exc)
            return self.put_bytes(data)
        return digest

    def put_file(self, path: Path, digest: Digest | None = None) -> Digest:
        """Store a file's content; returns its digest (computed even when not writable)."""
        if digest is not None and self._present(digest, refresh=True):
            return digest
        if self._spill is not None:
            return self._spill.put_file(path, digest)
        src = _open_regular(path)  # (a file that cannot be read is the caller's error, not the cache's)
        try:
            fd, tmp = self._tempfile()
        except OSError as exc:
            src.close()
            self._degrade(exc)
            return self.put_file(path, digest)
        try:
            with src, os.fdopen(fd, "wb") as dst:
                size = os.fstat(src.fileno()).st_size
                if size >= COMPRESS_MIN:
                    found = _copy_compressed(src, dst, size)
                else:
                    data = src.read()
                    dst.write(data)
                    found = Digest.of(data)
            if digest is not None and found != digest:
                raise StoreError(f"{path}: changed while it was being stored", reason="input-changed")
            self._publish(tmp, self._home(found), replace=False)
            return found
        except OSError as exc:
            self._degrade(exc)
            return self.put_file(path, digest)
        finally:
            _unlink(tmp)

    def put_action_result(self, key: Digest, result: ActionResult) -> None:
        if not self.writable:
            return
        try:
            self._write_atomic(self._ac_path(key), _sealed(result.encode()), replace=True)
        except OSError as exc:
            self._degrade(exc)

    # --- reading ----------------------------------------------------------

    def scratch_dir(self) -> Path:
        """A directory on the store's filesystem for temporary files."""
        return self._spill.scratch_dir() if self._spill is not None else self.root / "tmp"

    def find_blob(self, sha256: str) -> Digest | None:
        """The digest of a stored blob known only by its hash (a pinned archive)."""
        base = self.root / "cas" / sha256[:2] / sha256
        try:
            return Digest(sha256, os.stat(base).st_size)
        except OSError:
            pass
        try:
            with open(base.with_name(sha256 + ".zst"), "rb") as f:
                size = _zstd().frame_content_size(f.read(FRAME_HEADER_MAX))
        except (OSError, ValueError):
            return None
        return Digest(sha256, size) if size >= COMPRESS_MIN else None

    def _present(self, digest: Digest, *, refresh: bool = False) -> bool:
        """True when the blob exists (with the right size if raw); ``refresh`` marks it used."""
        path = self._blob(digest)
        try:
            st = os.stat(path)
        except OSError:
            return False
        if digest.size < COMPRESS_MIN and st.st_size != digest.size:
            return False
        return not refresh or _refresh(path)

    def has(self, digest: Digest) -> bool:
        """True when the blob exists; refreshes it for LRU eviction (at most once per
        TOUCH_SECONDS).  One ``stat``: a cache hit checks every blob of its result."""
        path = self._blob(digest)
        try:
            st = os.stat(path)
        except OSError:
            return False
        if digest.size < COMPRESS_MIN and st.st_size != digest.size:
            self._discard(path)
            return False
        return time.time() - st.st_mtime <= TOUCH_SECONDS or _refresh(path)

    def read_bytes(self, digest: Digest, *, touch: bool = True) -> bytes | None:
        """The blob's bytes, verified; ``None`` when missing or corrupt (then removed).

        ``touch`` marks it used; maintenance reads (verify, GC) pass False.
        """
        path = self._blob(digest)
        data = _read_touching(path, touch=touch)
        if data is None:
            return None
        if digest.size >= COMPRESS_MIN:
            try:
                data = _zstd().ZstdDecompressor().decompress(data, max_output_size=digest.size)
            except _zstd().ZstdError:
                self._discard(path)
                return None
        if Digest.of(data) != digest:
            self._discard(path)
            return None
        return data

    def export(self, digest: Digest, dest: str | Path, *, executable: bool = False, exact_mode: bool = False) -> bool:
        """Write the blob to ``dest`` (a new file), verifying it; False if missing or corrupt.

        The file is created with mode 0o755 or 0o644 less the umask; ``exact_mode``
        sets that mode whatever the umask.
        """
        path = self._blob(digest)
        try:
            src = os.open(path, os.O_RDONLY)
        except OSError:
            return False
        mode = 0o755 if executable else 0o644
        try:
            _touch(src)
            if digest.size < COMPRESS_MIN:
                data = _read_up_to(src, digest.size + 1)
                ok = len(data) == digest.size and hashlib.sha256(data).hexdigest() == digest.hash
                if ok:  # verified before anything is created
                    out = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
                    try:
                        if exact_mode:
                            os.fchmod(out, mode)
                        _write_all(out, data)
                    finally:
                        os.close(out)
            else:
                with open(os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode), "wb") as f:
                    if exact_mode:
                        os.fchmod(f.fileno(), mode)
                    ok = _copy_decompressed(src, f, digest)
                if not ok:
                    _unlink(dest)
        finally:
            os.close(src)
        if not ok:
            self._discard(path)
        return ok

    def check(self, digest: Digest) -> bool:
        """Verify one blob's content as an export would (a compressed blob by its frame
        checksum when it has a complete one); a corrupt blob is removed.  Refreshes it for
        LRU eviction like :meth:`has`: a dependency's outputs are used, not exported."""
        if not self.has(digest):
            return False
        path = self._blob(digest)
        if digest.size >= COMPRESS_MIN:
            try:
                src = os.open(path, os.O_RDONLY)
            except OSError:
                return False
            try:
                ok = _copy_decompressed(src, _NullSink(), digest)
            finally:
                os.close(src)
        else:
            ok = _check_blob(path, digest.hash, digest.size) is None
        if not ok:
            self._discard(path)
        return ok

    def get_action_result(self, key: Digest, *, verify: bool = False) -> ActionResult | None:
        """The cached result for ``key`` if it and every blob it names are present.

        With ``verify`` every blob's content is hashed too (for results whose
        bytes will not be read and checked anyway), so corruption found here
        turns the hit into a miss and the action runs again.
        """
        path = self._ac_path(key)
        data = _read_touching(path)
        if data is None:
            return None
        try:
            result = _unsealed(data)
        except StoreError:
            self._discard(path)
            return None
        check = self.check if verify else self.has
        for blob in self._referenced(result):
            if not check(blob):
                return None
        return result

    def _referenced(self, result: ActionResult, *, touch: bool = True) -> Iterator[Digest]:
        yield from result.blobs()
        for d in result.output_directories:
            tree = self.read_tree(d.tree_digest, touch=touch)
            if tree is None:
                yield d.tree_digest  # missing or corrupt: reported as absent below
                continue
            for directory in (tree.root, *tree.children):
                for f in directory.files:
                    yield f.digest

    def read_tree(self, digest: Digest, *, touch: bool = True) -> Tree | None:
        found = self._trees.get(digest)
        if found is not None:
            return found
        data = self.read_bytes(digest, touch=touch)
        if data is None:
            return None
        try:
            tree = Tree.decode(data)
        except ValueError:
            self._discard(self._blob(digest))
            return None
        if touch:  # (maintenance reads of every tree are not kept)
            self._trees[digest] = tree
        return tree

    def _discard(self, path: str | Path) -> None:
        _unlink(path)

    # --- maintenance -------------------------------------------------------

    def _entries(self, area: str) -> Iterator[tuple[Path, os.stat_result]]:
        base = self.root / area
        for sub in sorted(base.iterdir()) if base.is_dir() else ():
            if not sub.is_dir():
                continue
            for entry in os.scandir(sub):
                try:
                    yield Path(entry.path), entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue

    def stats(self) -> StoreStats:
        blobs = list(self._entries("cas"))
        actions = list(self._entries("ac"))
        temps = list((self.root / "tmp").iterdir()) if (self.root / "tmp").is_dir() else []
        return StoreStats(
            blobs=len(blobs),
            blob_bytes=sum(st.st_blocks * 512 for _, st in blobs),
            actions=len(actions),
            action_bytes=sum(st.st_blocks * 512 for _, st in actions),
            temp_files=len(temps),
        )

    def verify(self, *, repair: bool = False) -> list[Problem]:
        """Check every entry; with ``repair`` remove what is broken (so it is rebuilt)."""
        problems: list[Problem] = []

        def found(kind: str, path: Path, detail: str) -> None:
            problems.append(Problem(kind, str(path), detail))
            if repair:
                _unlink(path)

        now = time.time()
        for path, st in self._entries("cas"):
            hex_ = path.name.removesuffix(".zst")
            if len(hex_) != 64 or path.parent.name != hex_[:2]:
                found("stray-file", path, "not a blob name")
                continue
            problem = _check_blob(path, hex_, st.st_size)
            if problem:
                found("corrupt-blob", path, problem)
        for path, _st in self._entries("ac"):
            try:
                result = _unsealed(path.read_bytes())
            except (OSError, StoreError) as exc:
                found("corrupt-action", path, str(exc))
                continue
            missing = [str(d) for d in self._referenced(result, touch=False) if not self._present(d)]
            if missing:
                found("dangling-action", path, "refers to missing blob " + ", ".join(missing))
        tmp = self.root / "tmp"
        for entry in os.scandir(tmp) if tmp.is_dir() else ():
            try:
                age = now - entry.stat(follow_symlinks=False).st_mtime
            except FileNotFoundError:
                continue
            if age > STALE_TEMP_SECONDS:
                found("stale-temp", Path(entry.path), f"left over for {int(age)} s")
        return problems

    def gc(self, target_bytes: int | None = None) -> tuple[int, int] | None:
        """Evict least-recently-used entries down to ``target_bytes``.

        Defaults to 80 % of the quota.  Entries used in the last GC_GRACE_SECONDS
        stay even when the target is not reached: running builds need them.
        Returns (entries removed, bytes freed), or ``None`` when another process
        is already collecting.
        """
        lock_path = self.root / "gc.lock"
        try:
            lock = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StoreError(f"{lock_path}: cannot open: {exc.strerror}") from exc
        try:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return None
            return self._collect(target_bytes)
        finally:
            os.close(lock)

    def sweep_temp(self) -> None:
        """Remove temp files that an interrupted process left behind (older than an hour)."""
        now = time.time()
        try:
            entries = list(os.scandir(self.root / "tmp"))
        except OSError:
            return
        for entry in entries:
            try:
                if now - entry.stat(follow_symlinks=False).st_mtime > STALE_TEMP_SECONDS:
                    _unlink(Path(entry.path))
            except FileNotFoundError:
                continue

    def _collect(self, target_bytes: int | None) -> tuple[int, int]:
        if target_bytes is None:
            quota = self.quota if self.quota is not None else _default_quota(self.root)
            target_bytes = quota * 8 // 10
        self.sweep_temp()
        # AC entries sort before blobs of the same age: evict the index first.
        entries = [(st.st_mtime, 0, p, st.st_blocks * 512) for p, st in self._entries("ac")]
        entries += [(st.st_mtime, 1, p, st.st_blocks * 512) for p, st in self._entries("cas")]
        total = sum(e[3] for e in entries)
        floor = _reserved_bytes(self.root)
        free = shutil.disk_usage(self.root).free
        removed = freed = 0
        evicted: set[str] = set()
        recent = time.time() - GC_GRACE_SECONDS
        for mtime, kind, path, size in sorted(entries):
            if total - freed <= target_bytes and free + freed >= floor or mtime > recent:
                break
            if _mtime(path) != mtime:
                continue  # used since the scan
            _unlink(path)
            removed += 1
            freed += size
            if kind:
                evicted.add(path.name.removesuffix(".zst"))
        # A result is usually newer than its blobs, so the cut can fall between them:
        # drop the results that lost a blob (they would only be misses, and verify errors).
        for path, st in self._entries("ac") if evicted else ():
            if self._refers_to(path, evicted):
                _unlink(path)
                removed += 1
                freed += st.st_blocks * 512
        return removed, freed

    def _refers_to(self, path: Path, hashes: set[str]) -> bool:
        try:
            result = _unsealed(path.read_bytes())
        except (OSError, StoreError):
            return False  # gone meanwhile, or corrupt: verify reports it
        return any(d.hash in hashes for d in self._referenced(result, touch=False))


def _mtime(path: Path) -> float | None:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return None


def _sealed(body: bytes) -> bytes:
    return body + _field_bytes(SEAL_FIELD, _field_bytes(1, hashlib.sha256(body).digest()))


def _unsealed(data: bytes) -> ActionResult:
    """The stored result; a ``StoreError`` when its seal does not match (or is missing)."""
    if len(data) < SEAL_LEN or _sealed(data[:-SEAL_LEN]) != data:
        raise StoreError("action result does not match its checksum", reason="corrupt-entry")
    return ActionResult.decode(data[:-SEAL_LEN])


def _open_regular(path: Path):  # type: ignore[no-untyped-def]
    """``path`` opened for reading if it is a regular file (never blocking on a FIFO), else
    a StoreError saying what it is."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno != errno.ENXIO:  # (a socket)
            raise StoreError(f"{path}: cannot read it: {exc.strerror}", reason="unreadable-file") from exc
        fd = None
    if fd is None or not stat_mod.S_ISREG(os.fstat(fd).st_mode):
        if fd is not None:
            os.close(fd)
        raise StoreError(f"{path}: not a regular file; ukbuild stores regular files, symlinks and directories",
                         hint="create it at run time instead, or leave it out of the outputs", reason="special-file")
    return open(fd, "rb")  # noqa: SIM115 - the caller closes it


def _default_quota(root: Path) -> int:
    env = os.environ.get("UKBUILD_CACHE_QUOTA")
    if env:
        try:
            return parse_size(env)
        except ValueError as exc:
            raise ConfigError(f"UKBUILD_CACHE_QUOTA: {exc}", hint="set it to a size such as 20G, or unset it",
                              reason="bad-value") from exc
    return min(10 << 30, shutil.disk_usage(root).total // 10)


def _reserved_bytes(root: Path) -> int:
    return shutil.disk_usage(root).total // 20


def parse_size(text: str) -> int:
    """Parse ``10G``, ``512M``, ``4096`` (bytes); a ValueError names what is wrong."""
    units = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    stripped = text.strip().upper().removesuffix("B").removesuffix("I")
    number, unit = stripped.rstrip("KMGT"), stripped[len(stripped.rstrip("KMGT")) :]
    if not number.isdigit() or unit not in units:
        raise ValueError(f"not a size: {text!r} (write e.g. 512M or 10G)")
    return int(number) * units[unit]


def hash_file(path: Path) -> Digest:
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
            size += len(chunk)
    return Digest(h.hexdigest(), size)


#: Blobs this large are compressed on several threads (the frame differs, not the content).
THREADED_MIN = 4 << 20


def _copy_compressed(src, dst, size: int) -> Digest:  # type: ignore[no-untyped-def]
    """Compress ``src`` (``size`` bytes) into ``dst``, hashing as it goes.

    A compression object rather than a stream writer: a writer's context exit flushes the
    frame even when a write failed (a full disk), and that flush fails in its turn, hiding
    the ``OSError`` the store knows how to handle.
    """
    h = hashlib.sha256()
    total = 0
    threads = min(4, os.cpu_count() or 1) if size >= THREADED_MIN else 0
    frame = _compressor(threads).compressobj(size=size)
    while chunk := src.read(CHUNK):
        h.update(chunk)
        total += len(chunk)
        dst.write(frame.compress(chunk))
    if total != size:
        raise StoreError(f"{src.name}: changed while it was being stored", reason="input-changed")
    dst.write(frame.flush() + FRAME_END)
    return Digest(h.hexdigest(), total)


def _compressor(threads: int = 0):  # type: ignore[no-untyped-def]
    return _zstd().ZstdCompressor(level=ZSTD_LEVEL, write_checksum=True, write_content_size=True, threads=threads)


def _frame_checked(src: int, digest: Digest) -> bool:
    """Whether decoding the blob in ``src`` checks its content: a frame with a checksum and
    the recorded size, ended by FRAME_END (so the checksum is all there)."""
    facts = _frame_facts(src)
    return facts is not None and facts.checksum and facts.sealed and facts.content_size == digest.size


@attrs.frozen
class _FrameFacts:
    checksum: bool  # the frame carries a content checksum
    content_size: int
    sealed: bool  # the file ends with FRAME_END


def _frame_facts(fd: int) -> _FrameFacts | None:
    """What the header and the end of the compressed blob in ``fd`` say; None if unreadable."""
    zstd = _zstd()
    try:
        end = os.fstat(fd).st_size - len(FRAME_END)
        frame = zstd.get_frame_parameters(os.pread(fd, FRAME_HEADER_MAX, 0))
        sealed = end > 0 and os.pread(fd, len(FRAME_END), end) == FRAME_END
    except (OSError, zstd.ZstdError):
        return None
    return _FrameFacts(frame.has_checksum, frame.content_size, sealed)


def _copy_decompressed(src: int, out, digest: Digest) -> bool:  # type: ignore[no-untyped-def]
    """Decompress the frame in file descriptor ``src`` into ``out``, verifying it: by the
    frame's own checksum when it has a complete one, else by hashing as it goes.

    Into one reused buffer per thread: a fresh 1 MiB object per chunk is an mmap and
    256 page faults each time, which showed as system time in restores.
    """
    h = None if _frame_checked(src, digest) else hashlib.sha256()
    total = 0
    zstd = _zstd()
    buffer = _buffer()
    view = memoryview(buffer)
    try:
        with (
            os.fdopen(src, "rb", closefd=False) as source,
            _decompressor().stream_reader(source, read_size=CHUNK, closefd=False) as reader,
        ):
            while n := reader.readinto(buffer):
                total += n
                if total > digest.size:
                    return False
                if h is not None:
                    h.update(view[:n])
                out.write(view[:n])
    except zstd.ZstdError:
        return False
    return total == digest.size and (h is None or h.hexdigest() == digest.hash)


class _NullSink:
    """Where :meth:`Store.check` decompresses to: the bytes are checked, not kept."""

    def write(self, data: object) -> None:
        pass


_local = threading.local()


def _buffer() -> bytearray:
    found = getattr(_local, "buffer", None)
    if found is None:
        found = _local.buffer = bytearray(CHUNK)
    return found


def _decompressor():  # type: ignore[no-untyped-def]
    """This thread's decompressor (reused: creating one allocates its context)."""
    found = getattr(_local, "decompressor", None)
    if found is None:
        found = _local.decompressor = _zstd().ZstdDecompressor()
    return found


def _read_up_to(fd: int, size: int) -> bytes:
    parts = []
    while size > 0 and (chunk := os.read(fd, size)):
        parts.append(chunk)
        size -= len(chunk)
    return b"".join(parts)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _check_blob(path: str | Path, hex_: str, stored_size: int) -> str | None:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            if str(path).endswith(".zst"):
                zstd = _zstd()
                facts = _frame_facts(f.fileno())
                if facts is not None and facts.checksum and not facts.sealed:
                    return "cut short: its checksum or end marker is missing"
                try:
                    with zstd.ZstdDecompressor().stream_reader(f) as reader:
                        while chunk := reader.read(CHUNK):
                            h.update(chunk)
                except zstd.ZstdError as exc:
                    return f"cannot decompress: {exc}"
            else:
                if stored_size >= COMPRESS_MIN:
                    return "uncompressed blob of compressed size"
                while chunk := f.read(CHUNK):
                    h.update(chunk)
    except OSError as exc:
        return f"cannot read: {exc.strerror}"
    if h.hexdigest() != hex_:
        return "content does not match its digest"
    return None


def _read_touching(path: str | Path, *, touch: bool = True) -> bytes | None:
    """The file's bytes, refreshing it for LRU eviction (unless not ``touch``); None if it is gone."""
    try:
        with open(path, "rb") as f:
            if touch:
                _touch(f.fileno())
            return f.read()
    except OSError:
        return None


def _refresh(path: str) -> bool:
    """Mark an entry used, for LRU eviction; False when it is gone (collected meanwhile)."""
    try:
        os.utime(path)
    except FileNotFoundError:
        return False
    except OSError:
        pass  # a read-only cache still serves hits
    return True


def _touch(fd: int) -> None:
    """Mark an entry used, for LRU eviction; at most once per TOUCH_SECONDS (a utime is a
    metadata write, and a restore reads thousands of entries)."""
    try:
        if time.time() - os.fstat(fd).st_mtime > TOUCH_SECONDS:
            os.utime(fd)
    except OSError:
        pass  # a read-only cache still serves hits


def _unlink(path: str | Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError:
        pass  # read-only store: the entry stays, it is simply not used
