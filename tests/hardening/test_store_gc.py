"""LRU bookkeeping of the store's collector: what a result needs is never what it evicts alone."""

from __future__ import annotations

import os
import time
from pathlib import Path

from ukbuild._reapi import ActionResult, Digest, Directory, FileNode, OutputDirectory, OutputFile, Tree
from ukbuild._store import Store


def age(store: Store, digest: Digest, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(store.blob_path(digest), (then, then))


def test_storing_an_existing_blob_refreshes_it(tmp_path: Path) -> None:
    """An action whose output equals an old blob's bytes makes that blob recently used: a GC
    that evicts one entry takes an untouched blob, not the one the new result needs."""
    store = Store(tmp_path / "cache")
    shared = store.put_bytes(b"the same output" * 100)
    age(store, shared, 3600)
    idle = store.put_bytes(b"nobody uses this" * 100)
    age(store, idle, 1800)
    source = tmp_path / "out.o"
    source.write_bytes(b"the same output" * 100)
    assert store.put_file(source) == shared
    assert store.put_bytes(b"the same output" * 100) == shared
    key = Digest.of(b"key")
    store.put_action_result(key, ActionResult((OutputFile("out.o", shared),)))
    stats = store.stats()
    assert store.gc(stats.blob_bytes + stats.action_bytes - 1) == (1, 4096)
    assert not store.blob_path(idle).exists()
    assert store.get_action_result(key) is not None

