"""Local state that makes rebuilds fast: file and directory digests by stat, and key history.

Like Bazel's and ninja's logs, this is a cache of facts about *this*
checkout; losing it only costs time.  It never enters a key.  Files are
``marshal`` dumps (fast to load, no imports) written atomically.
"""

from __future__ import annotations

import hashlib
import marshal
import os
import time
from pathlib import Path

from ._reapi import Digest
from ._store import hash_file

FORMAT = 1
#: A file changed this recently may change again within the clock's
#: granularity without its stat changing (git's "racy" files): not recorded.
RACY_SECONDS = 2.0
HISTORY = 5


def _read(path: Path) -> dict:  # type: ignore[type-arg]
    try:
        with open(path, "rb") as f:
            data = marshal.loads(f.read())
    except (OSError, EOFError, ValueError, TypeError):
        return {}
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return {}
    return data


def _write(path: Path, data: dict) -> None:  # type: ignore[type-arg]
    data = {**data, "format": FORMAT}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            marshal.dump(data, f)
        os.replace(tmp, path)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass


def stat_key(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino)


def listing_signature(listing: list[tuple[str, os.stat_result]]) -> str:
    """What changes when anything in a directory listing (names, modes, stat keys) changes."""
    h = hashlib.sha256()
    for rel, st in listing:
        h.update(f"{rel}\0{st.st_mode}\0{st.st_mtime_ns}\0{st.st_ctime_ns}\0{st.st_size}\0{st.st_ino}\n".encode())
    return h.hexdigest()


class FileDigests:
    """Digest of a file by path, re-hashed only when its stat changed; and the Merkle root
    of a directory by path, recomputed only when the stat of something in it changed."""

    def __init__(
        self, known: dict[str, tuple[tuple[int, int, int, int], str, int]],
        trees: dict[str, tuple[str, str, int]] | None = None,
    ) -> None:
        self._known = known
        self._trees = trees if trees is not None else {}
        self.hashed = 0
        self.seen: dict[str, tuple[int, int, int, int]] = {}
        self._now = time.time()

    def __call__(self, path: str, st: os.stat_result) -> Digest:
        key = stat_key(st)
        self.seen[path] = key
        hit = self._known.get(path)
        if hit is not None and hit[0] == key:
            return Digest(hit[1], hit[2])
        digest = hash_file(Path(path))
        self.hashed += 1
        if self._now - st.st_mtime > RACY_SECONDS:
            self._known[path] = (key, digest.hash, digest.size)
        else:
            self._known.pop(path, None)
        return digest

    def export(self) -> dict[str, tuple[tuple[int, int, int, int], str, int]]:
        return self._known

    def tree(self, path: str, signature: str) -> Digest | None:
        """The root recorded for directory ``path`` when its listing had ``signature``."""
        hit = self._trees.get(path)
        return Digest(hit[1], hit[2]) if hit is not None and hit[0] == signature else None

    def remember_tree(self, path: str, signature: str, digest: Digest, newest_mtime: float) -> None:
        if self._now - newest_mtime > RACY_SECONDS:
            self._trees[path] = (signature, digest.hash, digest.size)
        else:
            self._trees.pop(path, None)

    def export_trees(self) -> dict[str, tuple[str, str, int]]:
        return self._trees


class KeyHistory:
    """The last few distinct keys of each action, newest first, for ``explain``."""

    def __init__(self, known: dict[str, list[str]]) -> None:
        self._known = known

    def record(self, action: str, key: Digest) -> bool:
        """Note ``key`` as the action's newest; True when it was not the newest already."""
        text = str(key)
        past = self._known.get(action, [])
        if not past or past[0] != text:
            self._known[action] = [text, *[k for k in past if k != text]][:HISTORY]
            return True
        return False

    def get(self, action: str) -> list[Digest]:
        return [Digest.parse(k) for k in self._known.get(action, [])]

    def export(self) -> dict[str, list[str]]:
        return self._known


class Journal:
    """This checkout's journal file: file and tree digests, key history, tool versions."""

    def __init__(self, path: Path) -> None:
        self.path = path
        data = _read(path)
        self.digests = FileDigests(data.get("digests", {}), data.get("trees", {}))
        self.history = KeyHistory(data.get("history", {}))
        #: tool path → (stat key, version text), for toolchain detection
        self.versions: dict[str, tuple[tuple[int, int], str]] = data.get("versions", {})

    def save(self) -> None:
        _write(self.path, {
            "digests": self.digests.export(), "trees": self.digests.export_trees(),
            "history": self.history.export(), "versions": self.versions,
        })
