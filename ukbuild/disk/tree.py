"""The content of a data image: a tree of files, directories and symlinks with explicit
owners, modes and one timestamp.

Nothing is taken from the checkout but names, bytes and link targets: every
file is ``file_mode`` (default 0644), every directory ``dir_mode`` (0755),
every entry owned by ``owner`` (0:0), unless a per-path override says
otherwise.  Entries are kept sorted by path, so every writer sees them in the
same order.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Final, Literal

import attrs

from ukbuild.errors import EmitError

DEFAULT_FILE_MODE: Final = 0o644
DEFAULT_DIR_MODE: Final = 0o755
LINK_MODE: Final = 0o777
MAX_ID: Final = 0xFFFFFFFE  # 2**32 - 1 is "no owner"

Kind = Literal["file", "dir", "link"]


@attrs.frozen
class Owner:
    """A numeric ``uid:gid`` pair."""

    uid: int
    gid: int

    @classmethod
    def parse(cls, text: str, *, where: str) -> Owner:
        uid, sep, gid = text.partition(":")
        if not sep or not uid.isdigit() or not gid.isdigit() or max(int(uid), int(gid)) > MAX_ID:
            msg = f"{where}: owner {text!r} is not UID:GID with numbers from 0 to {MAX_ID}"
            raise EmitError(msg, hint='e.g. "0:0" or "1000:1000" (names are not looked up)', reason="bad-owner")
        return cls(int(uid), int(gid))

    def __str__(self) -> str:
        return f"{self.uid}:{self.gid}"


ROOT: Final = Owner(0, 0)


def parse_mode(text: str, *, where: str) -> int:
    """An octal permission string (``"0644"``, ``"4755"``) as a number."""
    if not text or len(text) > 4 or any(c not in "01234567" for c in text):
        msg = f"{where}: mode {text!r} is not an octal permission from 0 to 7777"
        raise EmitError(msg, hint='e.g. "0644" or "0755"', reason="bad-mode")
    return int(text, 8)


@attrs.frozen
class Entry:
    """One path of the image (POSIX, relative, no trailing slash)."""

    path: str
    kind: Kind
    mode: int
    owner: Owner
    data: bytes = attrs.field(default=b"", repr=False)
    #: A symlink's target.
    target: str = ""

    @property
    def name(self) -> str:
        return self.path.rpartition("/")[2]

    @property
    def st_mode(self) -> int:
        kind = {"file": stat.S_IFREG, "dir": stat.S_IFDIR, "link": stat.S_IFLNK}[self.kind]
        return kind | self.mode


def clean_path(path: str, *, where: str) -> str:
    """``path`` as a clean relative POSIX path in the image (no ``.``, ``..`` or empty parts)."""
    parts = path.strip("/").split("/")
    if any(part in ("", ".", "..") for part in parts) or "\0" in path:
        msg = f"{where}: {path!r} is not a clean relative path in the image"
        raise EmitError(msg, hint='use paths like "etc/motd"', reason="bad-file-name")
    return "/".join(parts)


@attrs.frozen
class DataTree:
    """The sorted entries of an image; parent directories are always present."""

    entries: tuple[Entry, ...]

    @property
    def payload_bytes(self) -> int:
        return sum(len(e.data) for e in self.entries)

    @classmethod
    def build(
        cls,
        *,
        tree: Path | None = None,
        files: Iterable[tuple[str, bytes]] = (),
        owner: Owner = ROOT,
        file_mode: int = DEFAULT_FILE_MODE,
        dir_mode: int = DEFAULT_DIR_MODE,
        modes: Mapping[str, int] | None = None,
        owners: Mapping[str, Owner] | None = None,
    ) -> DataTree:
        """The tree below ``tree`` (a staged directory) plus ``files`` (path in the image, bytes).

        ``modes`` and ``owners`` override single paths (files, directories or,
        for owners, links); a path they name that is not in the image is an error.
        """
        found: dict[str, tuple[Kind, bytes, str]] = {}

        def add(path: str, kind: Kind, data: bytes = b"", target: str = "", *, where: str) -> None:
            parts = path.split("/")
            for i in range(1, len(parts)):
                parent = "/".join(parts[:i])
                if found.setdefault(parent, ("dir", b"", ""))[0] != "dir":
                    raise EmitError(f"{where}: {parent!r} is a file, not a directory", reason="file-clash")
            if path in found and (kind != "dir" or found[path][0] != "dir"):
                msg = f"{where}: {path!r} is given twice (in the tree and in files, or twice in files)"
                raise EmitError(msg, hint="drop one of them", reason="file-clash")
            found[path] = (kind, data, target)

        if tree is not None:
            for rel, st in _walk(tree):
                where = f"tree {rel}"
                if stat.S_ISDIR(st.st_mode):
                    add(rel, "dir", where=where)
                elif stat.S_ISLNK(st.st_mode):
                    add(rel, "link", target=os.readlink(tree / rel), where=where)
                elif stat.S_ISREG(st.st_mode):
                    add(rel, "file", (tree / rel).read_bytes(), where=where)
                else:
                    raise EmitError(f"{where}: not a regular file, directory or symlink", reason="bad-file-type")
        for path, data in files:
            add(clean_path(path, where=f"files {path!r}"), "file", data, where=f"files {path!r}")
        modes, owners = dict(modes or {}), dict(owners or {})
        for field, overrides in (("modes", modes), ("owners", owners)):
            for path in overrides:
                if clean_path(path, where=f"{field} {path!r}") not in found:
                    msg = f"{field} {path!r}: no such path in the image"
                    raise EmitError(msg, hint="name a file or directory of the tree or files", reason="bad-path")
        clean_modes = {clean_path(p, where="modes"): m for p, m in modes.items()}
        clean_owners = {clean_path(p, where="owners"): o for p, o in owners.items()}
        entries = []
        for path in sorted(found, key=lambda p: p.split("/")):
            kind, data, target = found[path]
            if kind == "link" and path in clean_modes:
                msg = f"modes {path!r}: a symlink has no mode of its own"
                raise EmitError(msg, hint="remove it from modes", reason="bad-mode")
            default = {"file": file_mode, "dir": dir_mode, "link": LINK_MODE}[kind]
            mode = clean_modes.get(path, default)
            entries.append(Entry(path, kind, mode, clean_owners.get(path, owner), data, target))
        return cls(tuple(entries))

    def stage(self, root: Path, epoch: int) -> None:
        """Write the tree below the empty directory ``root``, every time ``epoch``.

        Staged files are 0644 and directories 0755 whatever the umask, so
        the tools can read them; the writers set each entry's mode and owner
        in the image.
        """
        for entry in self.entries:
            dest = root / entry.path
            if entry.kind == "dir":
                dest.mkdir()
                dest.chmod(DEFAULT_DIR_MODE)
            elif entry.kind == "link":
                dest.symlink_to(entry.target)
            else:
                dest.write_bytes(entry.data)
                dest.chmod(DEFAULT_FILE_MODE)
        for entry in reversed(self.entries):  # children first: setting them touches no parent
            os.utime(root / entry.path, (epoch, epoch), follow_symlinks=False)
        os.utime(root, (epoch, epoch))


def _walk(root: Path) -> list[tuple[str, os.stat_result]]:
    out: list[tuple[str, os.stat_result]] = []

    def recurse(directory: Path, prefix: str) -> None:
        with os.scandir(directory) as it:
            items = sorted(it, key=lambda e: e.name)
        for item in items:
            st = item.stat(follow_symlinks=False)
            out.append((prefix + item.name, st))
            if stat.S_ISDIR(st.st_mode):
                recurse(Path(item.path), prefix + item.name + "/")

    recurse(root, "")
    return out
