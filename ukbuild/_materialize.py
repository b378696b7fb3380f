"""Writing a target's outputs into the user's output directory.

Files are replaced only when their content differs (so Make and Ninja see no
change when nothing changed), each by write-to-temp and rename, so a reader
or an interrupted build never sees a partial file.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ._executor import LostOutput, output_entries
from ._journal import FileDigests
from ._reapi import ActionResult
from ._store import Store
from ._trees import DirEntry, FileEntry, LinkEntry
from .errors import BuildError


def materialize(name: str, result: ActionResult, store: Store, out_dir: Path, digests: FileDigests) -> list[str]:
    """Place the outputs of action ``name`` under ``out_dir``; returns the paths written or kept."""
    entries = output_entries(result, store)
    if entries is None:
        raise LostOutput(name)
    placed: list[str] = []
    for d in result.output_directories:
        _prune(out_dir / d.path, {p[len(d.path) + 1 :] for p in entries if p.startswith(d.path + "/")})
    for rel, entry in sorted(entries.items()):
        target = out_dir / rel
        if isinstance(entry, DirEntry):
            _replace_non_dir(target)
            target.mkdir(parents=True, exist_ok=True)
        elif isinstance(entry, LinkEntry):
            if not (target.is_symlink() and os.readlink(target) == entry.target):
                _clear(target)
                target.parent.mkdir(parents=True, exist_ok=True)
                os.symlink(entry.target, target)
        else:
            _place_file(name, entry, target, store, digests)
        placed.append(str(target))
    return placed


def _place_file(name: str, entry: FileEntry, target: Path, store: Store, digests: FileDigests) -> None:
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        st = None
    mode = 0o755 if entry.executable else 0o644
    tmp = target.with_name(f".{target.name}.ukbuild-tmp")
    if st is not None and os.path.isfile(target) and not os.path.islink(target):
        if st.st_size == entry.digest.size and digests(str(target), st) == entry.digest:
            if st.st_mode & 0o777 != mode:
                os.chmod(target, mode)
            if os.path.lexists(tmp):  # a killed build's partial copy
                os.unlink(tmp)
            return
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.parent.is_symlink() or not target.parent.is_dir():
        raise BuildError(f"{name}: cannot write {target}: its parent is not a directory", reason="bad-output-dir")
    try:
        if not store.export(entry.digest, tmp, executable=entry.executable):
            raise LostOutput(name)
        os.chmod(tmp, mode)
        if os.path.isdir(target) and not os.path.islink(target):
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)


def _prune(directory: Path, keep: set[str]) -> None:
    """Remove what a previous build left in an output directory that this one did not produce."""
    if not directory.is_dir() or directory.is_symlink():
        return
    for root, dirs, files in os.walk(directory, topdown=False):
        rel_root = os.path.relpath(root, directory)
        for item in files + dirs:
            rel = item if rel_root == "." else f"{rel_root}/{item}"
            if rel not in keep:
                _clear(Path(root) / item)


def _clear(target: Path) -> None:
    if target.is_dir() and not target.is_symlink():
        shutil.rmtree(target)
    elif os.path.lexists(target):
        target.unlink()


def _replace_non_dir(target: Path) -> None:
    if os.path.lexists(target) and (target.is_symlink() or not target.is_dir()):
        target.unlink()
