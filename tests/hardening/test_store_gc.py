"""LRU bookkeeping of the store's collector: what a result needs is never what it evicts alone."""

from __future__ import annotations

import os
import time
from pathlib import Path

from ukbuild._reapi import (
    ActionResult,
    Digest,
    Directory,
    FileNode,
    OutputDirectory,
    OutputFile,
    Tree,
)
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



def test_gc_leaves_no_result_pointing_at_an_evicted_blob(tmp_path: Path) -> None:
    """Eviction in LRU order can cut between a result and its blobs (they are older); the
    collector then removes those results too, so the store verifies clean after any GC."""
    store = Store(tmp_path / "cache")
    blob = store.put_bytes(b"file output")
    inner = store.put_bytes(b"inside a tree")
    tree = store.put_bytes(Tree(Directory((FileNode("f", inner),))).encode())
    root = Digest.of(Directory((FileNode("f", inner),)).encode())
    for n, digest in enumerate((blob, inner)):
        age(store, digest, 3600 - n)
    with_file, with_tree = Digest.of(b"k1"), Digest.of(b"k2")
    store.put_action_result(with_file, ActionResult((OutputFile("o", blob),)))
    store.put_action_result(with_tree, ActionResult(output_directories=(OutputDirectory("d", tree, root),)))
    stats = store.stats()
    removed, _freed = store.gc(stats.blob_bytes + stats.action_bytes - 2 * 4096)
    assert removed == 4
    assert store.verify() == []
    assert store.get_action_result(with_file) is None and store.get_action_result(with_tree) is None
    assert store.read_bytes(tree) is not None  # the tree blob itself was recent: it stays


def test_recently_used_entries_survive_any_target(tmp_path: Path) -> None:
    """A running build's entries (written or used within the grace period) are kept even by
    `gc --max-size 0`; only what is older goes.  An aggressive GC loop made builds fail with
    'its stored outputs keep disappearing' (outputs evicted between execution and use)."""
    store = Store(tmp_path / "cache")
    fresh = store.put_bytes(b"just built")
    old = store.put_bytes(b"built yesterday")
    age(store, old, 86400)
    key = Digest.of(b"key")
    store.put_action_result(key, ActionResult((OutputFile("o", fresh),)))
    assert store.gc(0) == (1, 4096)
    assert store.get_action_result(key) is not None and not store.has(old)
