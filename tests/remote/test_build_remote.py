"""Builds across machines: push on machine A, restore on machine B, survive a dying remote."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest

from tests.core.helpers import EXAMPLE, tree_bytes, ukbuild
from tests.remote.conftest import Server

ALL = ["compile[greet]", "compile[main]", "compile[util]", "lib", "link", "package"]


def machine(tmp_path: Path, name: str) -> tuple[Path, Path]:
    """A checkout at a machine-specific path and that machine's empty local cache."""
    checkout = tmp_path / name / "src" / f"checkout-{name}" / "hello-c"
    shutil.copytree(EXAMPLE, checkout, ignore=shutil.ignore_patterns("out"))
    return checkout, tmp_path / name / "cache"


def build(checkout: Path, cache: Path, *remote: str):  # type: ignore[no-untyped-def]
    result = ukbuild("build", "-C", checkout, "--cache-dir", cache, "--json", *remote)
    assert result.code == 0, result.err
    return result


def pushed_then_restored(tmp_path: Path, url: str) -> None:
    a, cache_a = machine(tmp_path, "a")
    first = build(a, cache_a, "--remote-cache", url, "--remote-push")
    assert first.executed() == ALL
    b, cache_b = machine(tmp_path, "b")
    second = build(b, cache_b, "--remote-cache", url)
    assert second.executed() == []
    assert {e["via"] for e in second.events() if e["event"] == "action-cached"} == {"remote"}
    assert tree_bytes(a / "out") == tree_bytes(b / "out")
    third = build(b, cache_b)  # machine B now has everything locally
    assert third.executed() == []


@pytest.mark.realtool("nginx")
def test_http_cache_machine_a_to_machine_b(tmp_path: Path, nginx: Server) -> None:
    pushed_then_restored(tmp_path, nginx.url)


def test_reapi_cache_machine_a_to_machine_b(tmp_path: Path, buildgrid: Server, need_grpc: None) -> None:
    pushed_then_restored(tmp_path, buildgrid.url)


def test_remote_is_read_only_by_default(tmp_path: Path, fake_http) -> None:  # type: ignore[no-untyped-def]
    a, cache_a = machine(tmp_path, "a")
    build(a, cache_a, "--remote-cache", fake_http.url)
    assert not [r for r in fake_http.requests if r[0] == "PUT"]


def test_remote_dying_mid_build_falls_back_to_local(tmp_path: Path, private_buildgrid: Server, need_grpc: None) -> None:
    """The server is stopped once the build is under way: the build succeeds locally with a
    warning, and what it cached locally is correct (a fresh build from that cache is identical)."""
    a, cache_a = machine(tmp_path, "a")
    from ukbuild import api  # noqa: PLC0415
    from ukbuild.remote import RemoteConfig  # noqa: PLC0415

    options = api.BuildOptions(cache_dir=cache_a, remote=RemoteConfig.from_mapping(
        {"url": private_buildgrid.url, "push": True, "timeout": 2}, {}))
    build_ = api.Build(api.load_project(a), [], options)
    events: list[dict] = []
    stopped = threading.Event()

    def on_event(event: dict) -> None:
        events.append(event)
        if event["event"] == "action-finished" and not stopped.is_set():
            stopped.set()
            private_buildgrid.stop()

    build_.subscribe(on_event)
    result = build_.run()
    assert result.ok
    assert any(e["event"] == "warning" for e in events)
    b, _ = machine(tmp_path, "b")
    check = build(b, cache_a)
    assert check.executed() == []
    assert tree_bytes(a / "out") == tree_bytes(b / "out")
