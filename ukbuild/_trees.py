"""Merkle trees of files: hashing input trees and capturing output trees.

A tree is described flat, as a mapping from a POSIX relative path to an
entry; :func:`merkle` folds it into REAPI ``Directory`` messages and returns
the root digest, so ukbuild's tree digests are the ones a remote execution
service computes for the same files.
"""

from __future__ import annotations

import os
import stat as stat_mod
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path, PurePosixPath

import attrs

from ._reapi import Digest, Directory, DirectoryNode, FileNode, SymlinkNode, Tree
from .errors import BuildError


@attrs.frozen
class FileEntry:
    digest: Digest
    executable: bool = False


@attrs.frozen
class LinkEntry:
    target: str


@attrs.frozen
class DirEntry:
    """An (empty unless other entries lie below it) directory."""


Entry = FileEntry | LinkEntry | DirEntry


def merkle(entries: Mapping[str, Entry]) -> tuple[Digest, dict[Digest, bytes]]:
    """Fold a flat tree into ``Directory`` messages: (root digest, every message by digest)."""
    children: dict[str, dict[str, Entry | None]] = {"": {}}
    for path, entry in entries.items():
        parts = path.split("/")
        for depth in range(1, len(parts)):
            parent, name = "/".join(parts[: depth - 1]), parts[depth - 1]
            children.setdefault(parent, {}).setdefault(name, None)
            children.setdefault("/".join(parts[:depth]), {})
        parent = "/".join(parts[:-1])
        children.setdefault(parent, {})[parts[-1]] = entry
        if isinstance(entry, DirEntry):
            children.setdefault(path, {})
    blobs: dict[Digest, bytes] = {}

    def build(prefix: str) -> Digest:
        files, dirs, links = [], [], []
        for name, entry in children[prefix].items():
            full = f"{prefix}/{name}" if prefix else name
            if isinstance(entry, FileEntry):
                files.append(FileNode(name, entry.digest, entry.executable))
            elif isinstance(entry, LinkEntry):
                links.append(SymlinkNode(name, entry.target))
            else:
                dirs.append(DirectoryNode(name, build(full)))
        data = Directory(tuple(files), tuple(dirs), tuple(links)).encode()
        digest = Digest.of(data)
        blobs[digest] = data
        return digest

    return build(""), blobs


def tree_message(entries: Mapping[str, Entry]) -> tuple[Digest, Tree, Digest]:
    """A REAPI ``Tree`` for an output directory: (root digest, tree, tree digest)."""
    root_digest, blobs = merkle(entries)
    root = Directory.decode(blobs[root_digest])
    digests = tuple(d for d in sorted(blobs) if d != root_digest)
    tree = Tree(root, tuple(Directory.decode(blobs[d]) for d in digests), digests)
    return root_digest, tree, Digest.of(tree.encode())


def flatten_tree(tree: Tree) -> dict[str, Entry]:
    """The inverse of :func:`tree_message`: a flat mapping of everything in the tree."""
    by_digest = dict(zip(tree.child_digests, tree.children, strict=True))
    out: dict[str, Entry] = {}

    def walk(directory: Directory, prefix: str) -> None:
        for f in directory.files:
            out[prefix + f.name] = FileEntry(f.digest, f.executable)
        for s in directory.symlinks:
            out[prefix + s.name] = LinkEntry(s.target)
        for d in directory.directories:
            out[prefix + d.name] = DirEntry()
            child = by_digest.get(d.digest)
            if child is None:
                raise ValueError(f"tree lacks directory {prefix}{d.name}")
            walk(child, prefix + d.name + "/")

    walk(tree.root, "")
    return out


def walk(root: Path) -> Iterator[tuple[str, os.stat_result]]:
    """Yield (relative POSIX path, lstat) for everything below ``root``, sorted, depth first."""

    def recurse(directory: str, prefix: str) -> Iterator[tuple[str, os.stat_result]]:
        with os.scandir(directory) as it:
            items = sorted(it, key=lambda e: e.name)
        for item in items:
            st = item.stat(follow_symlinks=False)
            rel = prefix + item.name
            yield rel, st
            if stat_mod.S_ISDIR(st.st_mode):
                yield from recurse(item.path, rel + "/")

    yield from recurse(str(root), "")


def climbs_out(parts: Iterable[str]) -> bool:
    """Whether a relative path, followed part by part, goes above where it starts."""
    depth = 0
    for part in parts:
        depth += -1 if part == ".." else (0 if part == "." else 1)
        if depth < 0:
            return True
    return False


def link_leaves(path: str, target: str) -> bool:
    """Whether a symlink at ``path`` (relative to a tree's root) points outside the tree."""
    pure = PurePosixPath(target)
    return pure.is_absolute() or climbs_out((PurePosixPath(path).parent / pure).parts)


def special_file(path: str, mode: int, hint: str = "remove it (or create it at run time), "
                 "or keep it out of inputs and declared output directories") -> BuildError:
    """The error for a named pipe, socket or device at ``path`` (as the user knows it)."""
    kind = ("named pipe" if stat_mod.S_ISFIFO(mode) else "socket" if stat_mod.S_ISSOCK(mode)
            else "device file")
    return BuildError(
        f"{path}: a {kind}; ukbuild stores only regular files, symlinks and directories",
        hint=hint, reason="special-file",
    )


def scan(
    root: Path, file_digest: Callable[[str, os.stat_result], Digest],
    listing: Iterable[tuple[str, os.stat_result]] | None = None,
) -> dict[str, Entry]:
    """Describe the tree below ``root`` (its ``walk``, unless given) as flat entries;
    special files are an error."""
    entries: dict[str, Entry] = {}
    for rel, st in walk(root) if listing is None else listing:
        mode = st.st_mode
        if stat_mod.S_ISREG(mode):
            entries[rel] = FileEntry(file_digest(os.path.join(root, rel), st), bool(mode & 0o111))
        elif stat_mod.S_ISLNK(mode):
            entries[rel] = LinkEntry(os.readlink(os.path.join(root, rel)))
        elif stat_mod.S_ISDIR(mode):
            entries[rel] = DirEntry()
        else:
            raise special_file(os.path.join(root, rel), mode)
    return entries
