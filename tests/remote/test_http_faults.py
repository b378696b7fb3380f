"""The policy against a misbehaving HTTP cache: slow, erroring, lying, absent, and credentials."""

from __future__ import annotations

import base64
import time
from pathlib import Path

import pytest

from tests.remote.conftest import FakeHttpCache, free_port, start_nginx
from tests.remote.helpers import Sample, make_result
from ukbuild._reapi import Digest
from ukbuild._store import Store
from ukbuild.remote import CorruptBlob, RemoteConfig, RemoteTier, connect, open_remote


def seed(fake: FakeHttpCache, sample: Sample) -> None:
    """Put a sample into the fake directly, as another machine's push would have."""
    for digest, data in sample.blobs.items():
        fake.cas[digest.hash] = data
    fake.ac[sample.key.hash] = sample.result.encode()


def tier(url: str, warnings: list[str], **settings: object) -> RemoteTier:
    return open_remote(
        RemoteConfig.from_mapping({"url": url, **settings}, env={}), warn=warnings.append
    )


def test_read_only_by_default_sends_no_write(
    fake_http: FakeHttpCache, store: Store, store_b: Store
) -> None:
    sample = make_result(store, "ro")
    warnings: list[str] = []
    reader = tier(fake_http.url, warnings)
    assert not reader.publish(sample.key, sample.result, store)
    assert fake_http.requests == []
    seed(fake_http, sample)
    assert reader.lookup(sample.key, store_b) == sample.result
    assert set(fake_http.methods()) == {"GET", "HEAD"}
    reader.close()


def test_push_uploads_blobs_before_the_entry(fake_http: FakeHttpCache, store: Store) -> None:
    sample = make_result(store, "order")
    warnings: list[str] = []
    pusher = tier(fake_http.url, warnings, push=True)
    assert pusher.publish(sample.key, sample.result, store)
    puts = [path for method, path, _ in fake_http.requests if method == "PUT"]
    assert puts[-1] == f"/ac/{sample.key.hash}"
    assert sorted(puts[:-1]) == sorted(f"/cas/{d.hash}" for d in sample.blobs if d.size)
    assert sample.key.hash not in fake_http.cas  # the key document stays local
    fake_http.requests.clear()
    assert pusher.publish(sample.key, sample.result, store)  # second push: only HEADs and the entry
    assert [m for m in fake_http.methods() if m == "PUT"] == ["PUT"]
    pusher.close()


def test_failures_are_never_uploaded(fake_http: FakeHttpCache, store: Store) -> None:
    sample = make_result(store, "failed", exit_code=2)
    pusher = tier(fake_http.url, [], push=True)
    assert not pusher.publish(sample.key, sample.result, store)
    assert fake_http.requests == []
    pusher.close()


def test_a_failed_remote_result_is_a_miss(
    fake_http: FakeHttpCache, store: Store, store_b: Store
) -> None:
    sample = make_result(store, "remote-failed", exit_code=1)
    seed(fake_http, sample)
    reader = tier(fake_http.url, [])
    assert reader.lookup(sample.key, store_b) is None
    assert store_b.get_action_result(sample.key) is None
    reader.close()


def test_wrong_bytes_are_rejected_and_never_stored(
    fake_http: FakeHttpCache, store: Store, store_b: Store
) -> None:
    sample = make_result(store, "liar")
    seed(fake_http, sample)
    fake_http.fault = "wrong-bytes"
    cache = connect(RemoteConfig(fake_http.url))
    with pytest.raises(CorruptBlob, match="sent wrong bytes"):
        cache.download_blobs(set(sample.blobs), store_b)
    cache.close()
    warnings: list[str] = []
    reader = tier(fake_http.url, warnings)
    assert reader.lookup(sample.key, store_b) is None
    assert len(warnings) == 1 and "wrong bytes" in warnings[0]
    assert reader.available  # it answered; only this answer is untrusted
    assert not any(store_b.has(d) for d in sample.blobs if d.size)
    assert store_b.get_action_result(sample.key) is None
    assert store_b.stats().temp_files == 0
    reader.close()


def test_slow_remote_costs_one_timeout_per_build(
    fake_http: FakeHttpCache, store: Store, store_b: Store
) -> None:
    samples = [make_result(store, f"slow-{i}") for i in range(10)]
    for sample in samples:
        seed(fake_http, sample)
    fake_http.fault, fake_http.delay = "slow", 3.0
    warnings: list[str] = []
    reader = tier(fake_http.url, warnings, timeout=0.5)
    start = time.monotonic()
    assert all(reader.lookup(s.key, store_b) is None for s in samples)
    elapsed = time.monotonic() - start
    assert elapsed < 2.0, elapsed  # one 0.5 s timeout, then the breaker skips the remote
    assert len(fake_http.requests) == 1
    assert len(warnings) == 1 and "no answer within 0.5 s" in warnings[0]
    assert reader.stats().misses == 10 and reader.stats().failures == 1
    reader.close()


def test_errors_are_retried_then_skipped_until_cooldown(
    fake_http: FakeHttpCache, store: Store, store_b: Store
) -> None:
    sample = make_result(store, "flaky")
    seed(fake_http, sample)
    fake_http.fault = "error"
    now = [0.0]
    warnings: list[str] = []
    reader = RemoteTier(
        connect(RemoteConfig(fake_http.url)),
        retries=2,
        cooldown=30.0,
        warn=warnings.append,
        clock=lambda: now[0],
    )
    assert reader.lookup(sample.key, store_b) is None
    assert len(fake_http.requests) == 3  # one try and two retries
    assert "HTTP 500" in warnings[0]
    assert reader.lookup(sample.key, store_b) is None
    assert len(fake_http.requests) == 3  # breaker open: not asked
    fake_http.fault = ""
    now[0] = 31.0  # cooldown over: one probe, which succeeds
    assert reader.lookup(sample.key, store_b) == sample.result
    assert reader.available and "answering again" in warnings[-1]
    reader.close()


def test_connection_refused_is_a_quick_miss(store: Store) -> None:
    warnings: list[str] = []
    reader = tier(f"http://127.0.0.1:{free_port()}", warnings, retries=1)
    start = time.monotonic()
    for i in range(20):
        assert reader.lookup(Digest.of(b"%d" % i), store) is None
    assert time.monotonic() - start < 1.0
    assert len(warnings) == 1 and "Connection refused" in warnings[0]
    reader.close()


def test_instance_name_prefixes_every_path(fake_http: FakeHttpCache, store: Store) -> None:
    sample = make_result(store, "instance")
    pusher = tier(fake_http.url + "/cache", [], push=True, instance="team-a")
    assert pusher.publish(sample.key, sample.result, store)
    assert {path.split("/")[1:3] == ["cache", "team-a"] for _, path, _ in fake_http.requests} == {
        True
    }
    pusher.close()


def test_credentials_sent_but_never_shown(
    fake_http: FakeHttpCache, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UKBUILD_REMOTE_PASSWORD", "s3cr3t-from-env")
    url = fake_http.url.replace("http://", "http://ci-bot:s3cr3t-in-url@")
    config = RemoteConfig.from_mapping({"url": url, "push": True})
    assert config.username == "ci-bot" and config.password == "s3cr3t-from-env"
    assert "s3cr3t" not in repr(config) and "s3cr3t" not in config.url
    sample = make_result(store, "auth")
    warnings: list[str] = []
    pusher = open_remote(config, warn=warnings.append)
    assert pusher.publish(sample.key, sample.result, store)
    expected = "Basic " + base64.b64encode(b"ci-bot:s3cr3t-from-env").decode()
    assert {headers.get("Authorization") for _, _, headers in fake_http.requests} == {expected}
    fake_http.fault = "error"
    assert not pusher.publish(sample.key, sample.result, store)
    assert pusher.lookup(sample.key, store) is None
    assert warnings and not any("s3cr3t" in w or "ci-bot" in w for w in warnings)
    pusher.close()


@pytest.mark.realtool("nginx")
def test_nginx_basic_auth(tmp_path: Path, store: Store, store_b: Store) -> None:
    server = start_nginx(tmp_path / "nginx", credentials=("builder", "pa55-word"))
    try:
        sample = make_result(store, "nginx-auth")
        pusher = tier(server.url, [], push=True, username="builder", password="pa55-word")
        assert pusher.publish(sample.key, sample.result, store)
        reader = tier(server.url, [], username="builder", password="pa55-word")
        assert reader.lookup(sample.key, store_b) == sample.result
        warnings: list[str] = []
        wrong = tier(server.url, warnings, username="builder", password="not-it")
        assert wrong.lookup(sample.key, store) is None
        assert len(warnings) == 1 and "HTTP 401 (credentials refused)" in warnings[0]
        assert "not-it" not in warnings[0] and "pa55" not in warnings[0]
        for remote in (pusher, reader, wrong):
            remote.close()
        logs = (server.root / "access.log").read_text() + (server.root / "error.log").read_text()
        assert "pa55-word" not in logs and "not-it" not in logs
    finally:
        server.stop()
