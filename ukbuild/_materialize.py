"""Writing the targets' outputs into the user's output directory.

Files are replaced only when their content differs (so Make and Ninja see no
change when nothing changed), each by write-to-temp and rename, so a reader
or an interrupted build never sees a partial file.  Files are exported on a
few threads: decompression, hashing and writing release the GIL.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import shutil
import stat
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ._executor import LostOutput, output_entries
from ._journal import FileDigests, stat_key
from ._noop import StatKey
from ._reapi import ActionResult, Digest
from ._store import COMPRESS_MIN, Store
from ._trees import DirEntry, FileEntry, LinkEntry
from .errors import BuildError



def materialize(
    results: Sequence[tuple[str, ActionResult]], store: Store, out_dir: Path, digests: FileDigests, *, jobs: int = 1,
    stats: dict[str, StatKey] | None = None, others: dict[str, list[str]] | None = None,
) -> dict[str, dict[str, Digest]]:
    """Place the outputs of each named action under ``out_dir``, in order: where two
    write the same path, the later one's stays.

    The files of all the actions are placed together (the large blobs of one action
    decompress while the small files of another are written); an action whose outputs
    overlap an earlier one's waits until those are placed.  Returns each action's files
    written or kept (relative path → digest); ``others`` receives each action's symlinks
    and directories (relative paths), ``stats`` the stat data of everything placed as it
    was left (absolute path → (mtime ns, ctime ns, size, inode); directories once all is
    placed), for the no-op record.  Raises :class:`LostOutput` naming an action whose
    stored blob is gone or corrupt.
    """
    root = str(out_dir)
    placed: dict[str, dict[str, Digest]] = {}
    pending: list[tuple[str, str, FileEntry]] = []
    claimed = _Claims()
    written: dict[str, StatKey] = {}
    dirs: set[str] = set()
    made: set[str] = set()
    try:
        os.makedirs(root, exist_ok=True)
        for name, result in results:
            tops = [o.path for o in (*result.output_files, *result.output_directories, *result.output_symlinks)]
            if any(claimed.overlaps(top) for top in tops):
                _place(pending, root, store, digests, jobs, written)
                pending, claimed = [], _Claims()
            files, links, entry_dirs = _prepare(name, result, store, root, made)
            pending += [(name, rel, entry) for rel, entry in files.items()]
            for top in tops:
                claimed.add(top)
            placed[name] = {rel: entry.digest for rel, entry in files.items()}
            written.update(links)
            dirs.update(entry_dirs)
            if others is not None:
                others[name] = [*links, *entry_dirs]
        _place(pending, root, store, digests, jobs, written)
        if stats is not None:
            for rel in dirs:  # (what is written into a directory changes its stat data)
                written[rel] = stat_key(os.lstat(os.path.join(root, rel)))
            stats.update((os.path.join(root, rel), key) for rel, key in written.items())
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        raise BuildError(f"cannot write the outputs into {out_dir}: {where}{exc.strerror}",
                         hint="free space there, make it writable, or choose another output directory with -o",
                         reason="output-dir") from exc
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


def _prepare(
    name: str, result: ActionResult, store: Store, root: str, made: set[str]
) -> tuple[dict[str, FileEntry], dict[str, StatKey], list[str]]:
    """Prune stale files from the action's output directories, make its directories and
    symlinks; returns the files still to place, the symlinks (relative path → stat data
    as left) and the directories."""
    entries = output_entries(result, store)
    if entries is None:
        raise LostOutput(name)
    for d in result.output_directories:
        _make_dir(root, posixpath.dirname(d.path), made)  # (never prune through a symlink)
        _prune(os.path.join(root, d.path), {p[len(d.path) + 1 :] for p in entries if p.startswith(d.path + "/")})
    files: dict[str, FileEntry] = {}
    links: dict[str, StatKey] = {}
    dirs: list[str] = []
    for rel, entry in sorted(entries.items()):
        target = os.path.join(root, rel)
        if isinstance(entry, DirEntry):
            _make_dir(root, rel, made)
            dirs.append(rel)
        elif isinstance(entry, LinkEntry):
            _make_dir(root, posixpath.dirname(rel), made)
            st = _lstat(target)  # (before its target is read: a change from now on is seen next time)
            if not (st is not None and stat.S_ISLNK(st.st_mode) and os.readlink(target) == entry.target):
                _clear(target)
                os.symlink(entry.target, target)
                st = os.lstat(target)
            links[rel] = stat_key(st)
        else:
            _make_dir(root, posixpath.dirname(rel), made)
            files[rel] = entry
    return files, links, dirs


def _lstat(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def _place(
    files: list[tuple[str, str, FileEntry]], root: str, store: Store, digests: FileDigests, jobs: int,
    written: dict[str, StatKey],
) -> None:
    """Write the files: (action name, relative path, entry); ``written`` receives each
    one's stat data as placed, by relative path."""
    final = {rel: (name, entry) for name, rel, entry in files}

    def place(rel: str) -> None:
        name, entry = final[rel]
        written[rel] = _place_file(name, entry, os.path.join(root, rel), store, digests)

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


def _make_dir(root: str, rel: str, made: set[str]) -> None:
    """Make directory ``rel`` below ``root``, level by level, replacing what an earlier build
    left in its place: a file, or a symlink, which would lead writes and pruning out of
    ``root``."""
    path = root
    for part in rel.split("/") if rel else ():
        path = os.path.join(path, part)
        if path in made:
            continue
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            os.mkdir(path)
        else:
            if not stat.S_ISDIR(st.st_mode):
                os.unlink(path)
                os.mkdir(path)
        made.add(path)


def _temp_name(target: str) -> str:
    """Where ``target`` is written before its rename: beside it, hidden, and within NAME_MAX
    (a long name is shortened, the same way each time, so a killed build's copy is found)."""
    base = os.fsencode(os.path.basename(target))
    if len(base) > 200:  # a readable start and a digest of the whole name
        base = base[:100] + b"-" + hashlib.sha256(base).hexdigest()[:16].encode()
    return os.path.join(os.path.dirname(target), f".{os.fsdecode(base)}.ukbuild-tmp")


def _place_file(name: str, entry: FileEntry, target: str, store: Store, digests: FileDigests) -> StatKey:
    """Write one file (unless it is in place already); its stat data as placed."""
    mode = 0o755 if entry.executable else 0o644
    tmp = _temp_name(target)
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        st = None
    if st is not None and stat.S_ISREG(st.st_mode):
        # (stat'ed before hashing: a change from now on is seen by the next build)
        if st.st_size == entry.digest.size and digests(target, st) == entry.digest:
            if st.st_mode & 0o777 != mode:
                os.chmod(target, mode)  # (the stat before: the next build looks again)
            if os.path.lexists(tmp):  # a killed build's partial copy
                os.unlink(tmp)
            return stat_key(st)
    placed = False
    try:
        if not store.export(entry.digest, tmp, executable=entry.executable, exact_mode=True):
            raise LostOutput(name)
        if st is not None and stat.S_ISDIR(st.st_mode):
            shutil.rmtree(target)
        os.replace(tmp, target)
        placed = True
        return stat_key(os.lstat(target))
    finally:
        if not placed and os.path.lexists(tmp):
            os.unlink(tmp)


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
