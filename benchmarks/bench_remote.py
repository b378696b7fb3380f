"""Remote tiers against the local store, in one run: hit latency per action, upload and download throughput.

Servers: nginx with WebDAV PUT (the bazel-remote HTTP protocol, Debian's
``nginx``) and BuildGrid (REAPI over gRPC, from
``tests/remote/setup_buildgrid.sh``), both started on 127.0.0.1 by the
launchers the remote tests use, and stopped afterwards.  A tier whose server
is not available here is left out with a note on stderr.

* **Hit latency.**  A project of ``ACTIONS`` small actions (one 4 KiB file
  each) is built once with ``--remote-cache URL --remote-push``.  Timed:
  rebuilding it into a fresh output dir with a *fresh* local cache and the
  remote (every action a remote hit: action-cache lookup, blob check,
  download, verify) against the same rebuild from the *warm local* cache
  (every action a local hit).  Both are whole ``ukbuild build`` runs divided
  by the number of actions, so start-up is spread alike.
* **Throughput.**  ``BLOB_BYTES`` of incompressible blobs (4 MiB and 64 KiB
  ones) uploaded through the tier's ``upload_blobs`` and downloaded with
  ``download_blobs`` into an empty store, against ``Store.put_file`` and
  ``Store.export`` of the same files: the local store is the baseline.

All rows are informational (the issue sets no target); they are gated on
regression against ``baseline.json`` like every row.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from _common import REPO, UKBUILD, Row, alternate, mb, run, say, timed, ukbuild_env, workspace

REPS = 5
ACTIONS = 200
BLOB_BYTES = 64 << 20

PROJECT = """\
[project]
name = "remote-bench"

[toolchain.host]
tools = ["cp"]

[action.copy]
foreach = "src/*.txt"
command = ["cp", "{in}", "o/{stem}.txt"]
inputs = ["{in}"]
outputs = ["o/{stem}.txt"]
"""


@contextmanager
def servers(root: Path) -> Iterator[dict[str, str]]:
    """``{"http": url, "grpc": url}`` for the servers this machine can start."""
    sys.path.insert(0, str(REPO))
    from tests.remote.conftest import BUILDGRID_VENV, start_buildgrid, start_nginx, stop

    started, urls = [], {}
    try:
        if shutil.which("nginx"):
            server = start_nginx(root / "nginx")
            started.append(server.process)
            urls["http"] = server.url
        else:
            say("remote: no nginx (apt-get install nginx): HTTP tier left out")
        if (BUILDGRID_VENV / "bin" / "bgd").exists():
            server = start_buildgrid(root / "buildgrid")
            started.append(server.process)
            urls["grpc"] = server.url
        else:
            say(f"remote: no BuildGrid in {BUILDGRID_VENV} (tests/remote/setup_buildgrid.sh): REAPI tier left out")
        yield urls
    finally:
        for process in started:
            stop(process)


def all_cached(via: str) -> Callable[[str], bool]:
    def check(out: str) -> bool:
        events = [json.loads(line) for line in out.splitlines()]
        finished = [e for e in events if e.get("event") == "build-finished"]
        hits = {e.get("via") for e in events if e.get("event") == "action-cached"}
        return bool(finished) and finished[0]["ok"] and finished[0]["executed"] == 0 and hits == {via}
    return check


def hit_latency(root: Path, tier: str, url: str, actions: int) -> Row:
    proj = root / f"proj-{tier}"
    (proj / "src").mkdir(parents=True)
    (proj / "ukbuild.toml").write_text(PROJECT)
    for i in range(actions):  # unique per tier, so each server starts empty for this project
        (proj / "src" / f"f{i:04d}.txt").write_text(f"{tier} {i}\n" + "x" * 4096)
    (root / f"env-{tier}").mkdir()
    env = ukbuild_env(root / f"env-{tier}")
    out = root / f"out-{tier}"
    base = [str(UKBUILD), "build", "-C", str(proj), "-o", str(out), "--json", "-j", "8"]
    run([*base, "--remote-cache", url, "--remote-push"], env=env)
    fresh_cache = root / f"fresh-{tier}"

    def clean() -> None:
        shutil.rmtree(out, ignore_errors=True)
        shutil.rmtree(fresh_cache, ignore_errors=True)

    def remote() -> float:
        return timed([*base, "--cache-dir", str(fresh_cache), "--remote-cache", url], env=env, check=all_cached("remote"))

    def local() -> float:
        return timed(base, env=env, check=all_cached("local"))

    far, near = alternate(REPS, remote, local, before=clean)
    say(f"remote: {tier} hits {far:.2f} s, local hits {near:.2f} s for {actions} actions")
    return Row(f"remote hit per action, {tier}", f"{far / actions * 1e3:.1f} ms", f"local {near / actions * 1e3:.1f} ms",
               far / near, key=f"remote-hit-{tier}")


def throughput(root: Path, tier: str, url: str, total: int) -> list[Row]:
    from ukbuild._store import Store, hash_file
    from ukbuild.remote import RemoteConfig, connect
    from ukbuild.remote._base import Blob

    blobs_dir = root / f"blobs-{tier}"
    blobs_dir.mkdir()
    sizes = [4 << 20] * (total // 2 // (4 << 20)) + [64 << 10] * (total // 2 // (64 << 10))
    files = []
    for i, size in enumerate(sizes):
        path = blobs_dir / f"b{i:05d}"
        path.write_bytes(os.urandom(size))
        files.append(path)
    digests = [hash_file(p) for p in files]
    size = sum(sizes)

    def cache():  # type: ignore[no-untyped-def]
        return connect(RemoteConfig(url, push=True, timeout=60))

    def fresh_store(name: str) -> Store:
        shutil.rmtree(root / name, ignore_errors=True)
        return Store(root / name, private=True)

    salt = iter(range(1_000_000))

    def upload() -> float:
        # Fresh content each time: a server that already has a blob answers FindMissing and skips it.
        n = next(salt)
        blobs = []
        for path in files:
            with open(path, "r+b") as f:
                f.write(n.to_bytes(8, "little"))
            blobs.append(Blob(hash_file(path), path=path))
        remote = cache()
        start = time.perf_counter()
        remote.upload_blobs(blobs)
        seconds = time.perf_counter() - start
        remote.close()
        digests[:] = [b.digest for b in blobs]
        return seconds

    def put_local() -> float:
        store = fresh_store("put")
        start = time.perf_counter()
        for path, digest in zip(files, digests):
            store.put_file(path, digest)
        seconds = time.perf_counter() - start
        store.close()
        return seconds

    def download() -> float:
        store, remote = fresh_store("down"), cache()
        start = time.perf_counter()
        missing = remote.download_blobs(digests, store)
        seconds = time.perf_counter() - start
        remote.close()
        store.close()
        if missing:
            raise RuntimeError(f"remote: {tier} lacks {len(missing)} of {len(set(digests))} uploaded blobs")
        return seconds

    def export_local() -> float:
        store = fresh_store("put")
        for path, digest in zip(files, digests):
            store.put_file(path, digest)
        dest = root / "export"
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir()
        start = time.perf_counter()
        for i, digest in enumerate(digests):
            store.export(digest, dest / f"e{i}")
        seconds = time.perf_counter() - start
        store.close()
        return seconds

    up, put = alternate(REPS, upload, put_local)
    down, export = alternate(REPS, download, export_local)
    say(f"remote: {tier} upload {mb(size) / up:.0f} MB/s (store put {mb(size) / put:.0f}), "
        f"download {mb(size) / down:.0f} MB/s (store export {mb(size) / export:.0f})")
    return [
        Row(f"remote upload, {tier}, {mb(size):.0f} MB", f"{mb(size) / up:.0f} MB/s", f"store put {mb(size) / put:.0f} MB/s",
            put / up, higher_is_better=True, key=f"remote-upload-{tier}"),
        Row(f"remote download, {tier}, {mb(size):.0f} MB", f"{mb(size) / down:.0f} MB/s",
            f"store export {mb(size) / export:.0f} MB/s", export / down, higher_is_better=True, key=f"remote-download-{tier}"),
    ]


def bench(quick: bool) -> list[Row]:
    actions, total = (40, 8 << 20) if quick else (ACTIONS, BLOB_BYTES)
    rows: list[Row] = []
    with workspace("remote") as root, servers(root) as urls:
        for tier, url in urls.items():
            rows.append(hit_latency(root, tier, url, actions))
            rows += throughput(root, tier, url, total)
    return rows
