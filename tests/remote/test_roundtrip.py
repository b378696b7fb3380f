"""Both remote tiers against real servers: nginx (WebDAV PUT) and BuildGrid 0.9.1 (REAPI)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.remote.conftest import Server, start_nginx
from tests.remote.helpers import make_result, noise
from ukbuild._executor import output_entries
from ukbuild._reapi import ActionResult, Digest, OutputFile
from ukbuild._store import Store
from ukbuild.remote import Blob, RemoteCache, RemoteConfig, RemoteTier, connect, open_remote

SERVERS = [pytest.param("nginx", marks=pytest.mark.realtool("nginx")), "buildgrid"]


@pytest.fixture(params=SERVERS)
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    """A running server of each kind; nginx per test, BuildGrid shared per worker."""
    if request.param == "nginx":
        nginx = start_nginx(tmp_path / "nginx")
        yield nginx
        nginx.stop()
    else:
        yield request.getfixturevalue("buildgrid")


@pytest.fixture
def cache(server: Server) -> Iterator[RemoteCache]:
    remote = connect(RemoteConfig(server.url, timeout=5.0))
    yield remote
    remote.close()


def tier(
    url: str, *, push: bool = False, warnings: list[str] | None = None, timeout: float = 5.0
) -> RemoteTier:
    sink = warnings.append if warnings is not None else None
    return open_remote(RemoteConfig(url, push=push, timeout=timeout), warn=sink)


def test_blobs_round_trip_small_and_large(
    cache: RemoteCache, store_b: Store, tmp_path: Path
) -> None:
    seed = f"{cache.name}-{tmp_path.name}"
    sizes = [0, 1, 300, 70_000, 6 << 20]  # empty, tiny, batch, compressed locally, ByteStream
    datas = [noise(f"{seed}/{size}", size) for size in sizes]
    big_file = tmp_path / "big.bin"
    big_file.write_bytes(datas[-1])
    blobs = [Blob(Digest.of(d), data=d) for d in datas[:-1]] + [
        Blob(Digest.of(datas[-1]), path=big_file)
    ]
    digests = {b.digest for b in blobs}
    empty = Digest.of(b"")

    assert cache.find_missing(digests) == digests - {empty}
    start = time.monotonic()
    cache.upload_blobs(blobs)
    up = time.monotonic() - start
    assert cache.find_missing(digests) == set()

    start = time.monotonic()
    assert cache.download_blobs(digests, store_b) == set()
    down = time.monotonic() - start
    for data in datas:
        assert store_b.read_bytes(Digest.of(data)) == data
    total = sum(sizes) / (1 << 20)
    print(f"{cache.name}: {total:.1f} MiB up {up * 1000:.0f} ms, down {down * 1000:.0f} ms")

    absent = Digest.of(seed.encode() + b"absent")
    assert cache.download_blobs({absent}, store_b) == {absent}
    assert not store_b.has(absent)


def test_action_results_round_trip(cache: RemoteCache, store: Store, tmp_path: Path) -> None:
    sample = make_result(store, f"ac-{tmp_path.name}")
    cache.upload_blobs([Blob(d, data=data) for d, data in sample.blobs.items()])
    assert cache.get_action_result(sample.key) is None
    cache.update_action_result(sample.key, sample.result)
    assert cache.get_action_result(sample.key) == sample.result
    assert cache.get_action_result(Digest.of(b"no such key " + tmp_path.name.encode())) is None


def test_machine_a_pushes_machine_b_restores(
    server: Server, store: Store, store_b: Store, tmp_path: Path
) -> None:
    sample = make_result(store, f"ab-{tmp_path.name}", big=5 << 20)
    warnings: list[str] = []
    a = tier(server.url, push=True, warnings=warnings)
    start = time.monotonic()
    assert a.publish(sample.key, sample.result, store)
    pushed = time.monotonic() - start
    assert a.stats().blobs_up == len(sample.blobs)

    b = tier(server.url, warnings=warnings)
    start = time.monotonic()
    hit = b.lookup(sample.key, store_b)
    restored = time.monotonic() - start
    assert hit == sample.result
    assert store_b.get_action_result(sample.key, verify=True) == sample.result
    assert output_entries(hit, store_b) == output_entries(sample.result, store)
    for digest, data in sample.blobs.items():
        assert store_b.read_bytes(digest) == data
    start = time.monotonic()
    assert b.lookup(sample.key, store_b) == sample.result  # everything local now
    again = time.monotonic() - start
    assert b.stats().hits == 2 and warnings == []
    print(
        f"{server.url}: push {pushed * 1000:.0f} ms, restore {restored * 1000:.0f} ms, "
        f"hit with blobs local {again * 1000:.1f} ms"
    )
    a.close()
    b.close()


def test_read_only_by_default(server: Server, store: Store, tmp_path: Path) -> None:
    sample = make_result(store, f"ro-{tmp_path.name}")
    reader = tier(server.url)
    assert not reader.publish(sample.key, sample.result, store)
    reader.close()
    probe = connect(RemoteConfig(server.url))
    assert probe.get_action_result(sample.key) is None
    assert probe.find_missing(set(sample.blobs)) == set(sample.blobs) - {Digest.of(b"")}
    probe.close()


def test_failed_results_are_never_pushed(server: Server, store: Store, tmp_path: Path) -> None:
    sample = make_result(store, f"fail-{tmp_path.name}", exit_code=1)
    pusher = tier(server.url, push=True)
    assert not pusher.publish(sample.key, sample.result, store)
    pusher.close()
    probe = connect(RemoteConfig(server.url))
    assert probe.get_action_result(sample.key) is None
    probe.close()


def test_entry_with_missing_blobs_is_a_miss(
    cache: RemoteCache, server: Server, store_b: Store, tmp_path: Path
) -> None:
    gone = Digest.of(b"never uploaded " + tmp_path.name.encode())
    key = Digest.of(b"dangling " + tmp_path.name.encode())
    cache.update_action_result(key, ActionResult(output_files=(OutputFile("x", gone),)))
    warnings: list[str] = []
    b = tier(server.url, warnings=warnings)
    assert b.lookup(key, store_b) is None
    assert store_b.get_action_result(key) is None and not store_b.has(gone)
    assert b.available and warnings == []  # a plain miss, not a remote failure
    b.close()


@pytest.mark.parametrize("kind", SERVERS)
def test_server_stopped_mid_build(
    kind: str, request: pytest.FixtureRequest, store: Store, store_b: Store, tmp_path: Path
) -> None:
    """The remote dies between actions: one warning, misses, no exception, no more waiting."""
    server = (
        start_nginx(tmp_path / "own-nginx")
        if kind == "nginx"
        else request.getfixturevalue("private_buildgrid")
    )
    first, second = make_result(store, "first"), make_result(store, "second")
    warnings: list[str] = []
    a = tier(server.url, push=True, warnings=warnings, timeout=2.0)
    assert a.publish(first.key, first.result, store)
    b = tier(server.url, warnings=warnings, timeout=2.0)
    assert b.lookup(first.key, store_b) == first.result

    server.stop()
    start = time.monotonic()
    assert b.lookup(second.key, store_b) is None
    assert not a.publish(second.key, second.result, store)
    for _ in range(20):
        assert b.lookup(second.key, store_b) is None
    elapsed = time.monotonic() - start
    assert elapsed < 6.0, elapsed
    assert not b.available and not a.available
    assert len(warnings) == 2, warnings  # one per tier, not one per action
    assert all("building without the remote cache" in w for w in warnings)
    assert store_b.get_action_result(second.key) is None
    a.close()
    b.close()
