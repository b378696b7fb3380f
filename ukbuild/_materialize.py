"""Writing the targets' outputs into the user's output directory.

Files are replaced only when their content differs (so Make and Ninja see no
change when nothing changed), each by write-to-temp and rename, so a reader
or an interrupted build never sees a partial file.  Files are exported on a
few threads: decompression, hashing and writing release the GIL.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ._executor import NAME_MAX, LostOutput, file_name, output_entries
from ._journal import FileDigests
from ._reapi import ActionResult, Digest
from ._store import COMPRESS_MIN, Store
from ._trees import DirEntry, FileEntry, LinkEntry
from .errors import BuildError


def materialize(
    results: Sequence[tuple[str, ActionResult]], store: Store, out_dir: Path, digests: FileDigests, *, jobs: int = 1
) -> dict[str, dict[str, Digest]]:
    """Place the outputs of each named action under ``out_dir``, in order: where two
    write the same path, the later one's stays.

    The files of all the actions are placed together (the large blobs of one action
    decompress while the small files of another are written); an action whose outputs
    overlap an earlier one's waits until those are placed.  Returns each action's files
    written or kept (relative path → digest).  Raises :class:`LostOutput` naming an action
    whose stored blob is gone or corrupt.
    """
    root = str(out_dir)
    placed: dict[str, dict[str, Digest]] = {}
    pending: list[tuple[str, str, FileEntry]] = []
    claimed = _Claims()
    for name, result in results:
        tops = [o.path for o in (*result.output_files, *result.output_directories, *result.output_symlinks)]
        if any(claimed.overlaps(top) for top in tops):
            _place(pending, root, store, digests, jobs)
            pending, claimed = [], _Claims()
        files = _prepare(name, result, store, root)
        pending += [(name, rel, entry) for rel, entry in files.items()]
        for top in tops:
            claimed.add(top)
        placed[name] = {rel: entry.digest for rel, entry in files.items()}
    _place(pending, root, store, digests, jobs)
    return placed


class _Claims:
    """Output paths claimed so far, and their ancestors: overlap checks in O(depth)."""

    def __init__(self) -> None:
        self.paths: set[str] = set()
        self.ancestors: set[str] = set()

    def add(self, path: str) -> None:
        self.paths.add(path)
        self.ancestors.update(_ancestors(path))

    def overlaps(self, path: str) -> bool:
        """Whether ``path`` is a claimed path, lies below one, or holds one."""
        return path in self.paths or path in self.ancestors or any(a in self.paths for a in _ancestors(path))


def _ancestors(path: str) -> list[str]:
    parts = path.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


def _prepare(name: str, result: ActionResult, store: Store, root: str) -> dict[str, FileEntry]:
    """Prune stale files from the action's output directories, make its directories and
    symlinks; returns the files still to place."""
    entries = output_entries(result, store)
    if entries is None:
        raise LostOutput(name)
    for d in result.output_directories:
        _prune(os.path.join(root, d.path), {p[len(d.path) + 1 :] for p in entries if p.startswith(d.path + "/")})
    files: dict[str, FileEntry] = {}
    made: set[str] = set()
    for rel, entry in sorted(entries.items()):
        target = os.path.join(root, rel)
        if isinstance(entry, DirEntry):
            _make_dir(target, made)
        elif isinstance(entry, LinkEntry):
            _make_dir(os.path.dirname(target), made)
            if not (os.path.islink(target) and os.readlink(target) == entry.target):
                _clear(target)
                os.symlink(entry.target, target)
        else:
            _make_dir(os.path.dirname(target), made)
            files[rel] = entry
    return files


def _place(files: list[tuple[str, str, FileEntry]], root: str, store: Store, digests: FileDigests, jobs: int) -> None:
    """Write the files: (action name, relative path, entry)."""
    final = {rel: (name, entry) for name, rel, entry in files}

    def place(rel: str) -> None:
        name, entry = final[rel]
        _place_file(name, entry, os.path.join(root, rel), store, digests)

    def place_all(rels: list[str]) -> None:
        for rel in rels:
            place(rel)

    # Large (compressed) blobs one task each, largest first: decompressing and writing a MiB
    # at a time release the GIL for long stretches.  Small files in two runs, one on the
    # pool (first, so that it starts at once) and one on this thread: creating a file is
    # kernel work that overlaps the other thread's Python (10% off a 2,127-file restore,
    # measured interleaved); finer tasks cost more in GIL hand-overs than they gain.
    large = sorted((rel for rel, (_, e) in final.items() if e.digest.size >= COMPRESS_MIN),
                   key=lambda rel: -final[rel][1].digest.size)
    small = [rel for rel, (_, e) in final.items() if e.digest.size < COMPRESS_MIN]
    if jobs > 1 and len(final) > 1:
        half = len(small) // 2
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            pending = [pool.submit(place_all, small[:half]), *(pool.submit(place, rel) for rel in large)]
            place_all(small[half:])
            for future in pending:
                future.result()
    else:
        place_all([*large, *small])


def _make_dir(path: str, made: set[str]) -> None:
    if path in made:
        return
    if os.path.lexists(path) and (os.path.islink(path) or not os.path.isdir(path)):
        os.unlink(path)
    try:
        os.makedirs(path, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:
        raise BuildError(f"cannot create output directory {path}: a file is in the way", reason="bad-output-dir") from exc
    made.add(path)


def _place_file(name: str, entry: FileEntry, target: str, store: Store, digests: FileDigests) -> None:
    mode = 0o755 if entry.executable else 0o644
    tmp = _temp_path(target)
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        st = None
    if st is not None and stat.S_ISREG(st.st_mode):
        if st.st_size == entry.digest.size and digests(target, st) == entry.digest:
            if st.st_mode & 0o777 != mode:
                os.chmod(target, mode)
            if os.path.lexists(tmp):  # a killed build's partial copy
                os.unlink(tmp)
            return
    placed = False
    try:
        if not store.export(entry.digest, tmp, executable=entry.executable, exact_mode=True):
            raise LostOutput(name)
        if st is not None and stat.S_ISDIR(st.st_mode):
            shutil.rmtree(target)
        os.replace(tmp, target)
        placed = True
    finally:
        if not placed and os.path.lexists(tmp):
            os.unlink(tmp)


def _temp_path(target: str) -> str:
    """``.NAME.ukbuild-tmp`` beside ``target``; for a name too long for that, a shortened
    name with a hash of the whole (the same every time, so a leftover is still found)."""
    name = os.path.basename(target)
    tmp = f".{name}.ukbuild-tmp"
    if len(os.fsencode(tmp)) > NAME_MAX:
        tmp = "." + file_name(name, ".ukbuild-tmp", limit=NAME_MAX - 1)
    return os.path.join(os.path.dirname(target), tmp)


def _prune(directory: str, keep: set[str]) -> None:
    """Remove what a previous build left in an output directory that this one did not produce."""
    if not os.path.isdir(directory) or os.path.islink(directory):
        return
    for root, dirs, files in os.walk(directory, topdown=False):
        rel_root = os.path.relpath(root, directory)
        for item in files + dirs:
            rel = item if rel_root == "." else f"{rel_root}/{item}"
            if rel not in keep:
                _clear(os.path.join(root, item))


def _clear(target: str) -> None:
    if os.path.isdir(target) and not os.path.islink(target):
        shutil.rmtree(target)
    elif os.path.lexists(target):
        os.unlink(target)
