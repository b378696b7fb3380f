"""Shared caches under concurrency, injected store faults, and Ctrl-C."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.core.helpers import EXAMPLE, tree_bytes, ukbuild, ukbuild_process
from ukbuild._reapi import ActionResult
from ukbuild._store import Store


def checkout(tmp_path: Path, name: str) -> Path:
    dest = tmp_path / name / "hello-c"
    shutil.copytree(EXAMPLE, dest, ignore=shutil.ignore_patterns("out"))
    return dest


def test_four_processes_share_one_cache(tmp_path: Path) -> None:
    """Overlapping graphs built at once into one cache: all succeed, bytes equal a serial build,
    and the cache verifies clean."""
    serial = checkout(tmp_path, "serial")
    assert ukbuild("build", "-C", serial, "--cache-dir", tmp_path / "serial-cache").code == 0
    shared = tmp_path / "shared-cache"
    targets = [["package"], ["lib"], ["link"], ["package", "compile"]]
    procs = []
    for n, wanted in enumerate(targets):
        project = checkout(tmp_path, f"p{n}")
        procs.append((project, wanted, subprocess.Popen(
            [sys.executable, "-m", "ukbuild", "build", "-C", str(project), "--cache-dir", str(shared), "-j", "2", *wanted],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )))
    for project, _wanted, proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        built = tree_bytes(project / "out")
        reference = tree_bytes(serial / "out")
        for path, data in built.items():
            if path in reference:
                assert data == reference[path], path
    assert Store(shared).verify() == []


def test_injected_faults_are_found_then_rebuilt(tmp_path: Path) -> None:
    """Flipped byte, truncated blob, action result whose blob is gone, stale temp file:
    `cache verify` names each and exits 1; the next build removes and rebuilds them."""
    project = checkout(tmp_path, "p")
    cache = tmp_path / "cache"
    assert ukbuild("build", "-C", project, "--cache-dir", cache).code == 0
    before = tree_bytes(project / "out")
    store = Store(cache)
    results = {}
    for entry in (cache / "ac").glob("*/*"):
        result = ActionResult.decode(entry.read_bytes())
        for f in result.output_files:
            results[f.path] = (entry, f.digest)
    package_blob = store.blob_path(results["dist/hello.tar.gz"][1])
    data = bytearray(package_blob.read_bytes())
    data[100] ^= 0x01
    package_blob.write_bytes(bytes(data))
    link_blob = store.blob_path(results["bin/hello"][1])
    link_blob.write_bytes(link_blob.read_bytes()[:-10])
    store.blob_path(results["lib/libgreet.a"][1]).unlink()
    stale = cache / "tmp" / "w-interrupted"
    stale.write_bytes(b"partial")
    os.utime(stale, (time.time() - 7200,) * 2)

    verify = ukbuild("cache", "--cache-dir", cache, "verify")
    assert verify.code == 1
    assert f"corrupt-blob: {package_blob}" in verify.out
    assert f"corrupt-blob: {link_blob}" in verify.out
    assert f"dangling-action: {results['lib/libgreet.a'][0]}" in verify.out
    assert f"stale-temp: {stale}" in verify.out

    shutil.rmtree(project / "out")
    rebuilt = ukbuild("build", "-C", project, "--cache-dir", cache, "--json")
    assert rebuilt.code == 0, rebuilt.err
    assert set(rebuilt.executed()) == {"lib", "link", "package"}
    assert tree_bytes(project / "out") == before
    clean = ukbuild("cache", "--cache-dir", cache, "verify")
    assert clean.code == 0, clean.out


def test_interrupt_leaves_store_consistent(tmp_path: Path) -> None:
    """SIGINT during a running action: exit 130, its command is killed, nothing cached for it."""
    project = tmp_path / "p"
    project.mkdir()
    marker = tmp_path / "still-running"
    (project / "ukbuild.toml").write_text(
        '[project]\nname = "p"\n'
        '[action.quick]\ncommand = ["sh", "-c", "echo q > q.txt"]\noutputs = ["q.txt"]\n'
        f'[action.slow]\ncommand = ["sh", "-c", "sleep 3; touch {marker}; echo s > s.txt"]\noutputs = ["s.txt"]\n'
    )
    cache = tmp_path / "cache"
    proc = subprocess.Popen(
        [sys.executable, "-m", "ukbuild", "build", "-C", str(project), "--cache-dir", str(cache), "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if '"action-started"' in line and '"slow"' in line:
            break
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    time.sleep(3.5)
    assert not marker.exists(), "the action's process outlived the build"
    assert ukbuild("cache", "--cache-dir", cache, "verify").code == 0
    again = ukbuild_process("build", "-C", project, "--cache-dir", cache, "--json")
    assert again.code == 0
    assert "slow" in again.executed()
