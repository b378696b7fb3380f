"""A realistic action result, written into a local store the way the executor does."""

from __future__ import annotations

import hashlib

import attrs

from ukbuild._reapi import ActionResult, Digest, OutputDirectory, OutputFile, OutputSymlink
from ukbuild._store import Store
from ukbuild._trees import FileEntry, tree_message
from ukbuild.keys import canonical_json


def noise(seed: str, size: int) -> bytes:
    """``size`` deterministic, incompressible bytes."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}/{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


@attrs.frozen
class Sample:
    key: Digest
    result: ActionResult
    blobs: dict[Digest, bytes]


def make_result(store: Store, seed: str, *, big: int = 0, exit_code: int = 0) -> Sample:
    """An action's outputs in ``store``: two files (one ``big`` bytes if asked), a
    directory of two files, a symlink and a stdout log; its key document stays local."""
    contents = {
        "file": noise(seed + "file", 300),
        "big": noise(seed + "big", big) if big else b"",
        "dir-a": noise(seed + "a", 100_000),
        "dir-b": b"#!/bin/sh\necho " + seed.encode() + b"\n",
        "stdout": f"built {seed}\n".encode(),
    }
    blobs = {store.put_bytes(data): data for data in contents.values()}
    d = {name: Digest.of(data) for name, data in contents.items()}
    root, tree, tree_digest = tree_message(
        {"a.bin": FileEntry(d["dir-a"]), "sub/run.sh": FileEntry(d["dir-b"], executable=True)}
    )
    tree_bytes = tree.encode()
    blobs[store.put_bytes(tree_bytes)] = tree_bytes
    key_doc = canonical_json({"ukbuild-key": 1, "step": "test", "salt": seed})
    key = store.put_bytes(key_doc)
    result = ActionResult(
        output_files=(OutputFile("out/file", d["file"]), OutputFile("out/big", d["big"])),
        output_directories=(OutputDirectory("out/dir", tree_digest, root),),
        output_symlinks=(OutputSymlink("out/link", "file"),),
        exit_code=exit_code,
        stdout_digest=d["stdout"],
    )
    store.put_action_result(key, result)
    return Sample(key, result, blobs)
