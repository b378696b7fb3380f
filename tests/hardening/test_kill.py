"""SIGKILL a build at random points: the cache stays sound, outputs are never partial,
and the next build produces exactly what a clean build does."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.core.helpers import ukbuild
from tests.hardening.helpers import (
    kill_group,
    output_files,
    start_build,
    verify_clean,
    write_project,
)
from ukbuild._store import Store

SEED = int(os.environ.get("UKBUILD_HARDENING_SEED", "8"))


def reference(tmp_path: Path, version: str) -> dict[str, bytes]:
    project = write_project(tmp_path / f"ref-{version}", version=version)
    result = ukbuild("build", "-C", project, "--cache-dir", tmp_path / f"ref-cache-{version}")
    assert result.code == 0, result.err
    return output_files(project / "out")


def phase(lines: list[bytes], actions: int) -> str:
    """Where the build was when it died, from the events it had written."""
    kinds = Counter(json.loads(line)["event"] for line in lines if line.startswith(b"{") and line.endswith(b"\n"))
    if kinds["build-finished"]:
        return "after-finish"
    done = kinds["action-finished"] + kinds["action-cached"]
    if done >= actions:
        return "materializing"
    if kinds["action-started"] or done:
        return "executing"
    return "starting"


def kill_during(project: Path, cache: Path, rng: random.Random, span: float, events: int) -> list[bytes]:
    """Start a build and SIGKILL it: after a random delay, or just after a random event."""
    proc = start_build(project, cache, "--json", stdout=subprocess.PIPE)
    assert proc.stdout is not None
    lines: list[bytes] = []
    if rng.random() < 0.5:
        time.sleep(rng.uniform(0.05, span))
    else:
        for _ in range(rng.randrange(1, events + 1)):
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
        time.sleep(rng.uniform(0, 0.01))
    kill_group(proc)
    lines += proc.stdout.readlines()
    proc.stdout.close()
    return lines


@pytest.mark.trials(20, 120)
def test_sigkill_at_random_points(tmp_path: Path, private_tmpdir: Path, trials: int) -> None:
    """Cold builds, restores from a warm cache and rebuilds that overwrite older outputs, each
    killed at a random delay: verify finds no bad entry, every output file is whole (the old or
    the new version, byte for byte), and the following build equals a clean build."""
    rng = random.Random(SEED)
    refs = {v: reference(tmp_path, v) for v in "AB"}
    project, cache = tmp_path / "p", tmp_path / "cache"
    write_project(project, version="A")
    start = time.monotonic()
    first = start_build(project, cache)
    assert first.wait(timeout=120) == 0
    span = time.monotonic() - start
    version, phases, leftovers = "A", Counter[str](), 0
    actions = len(refs["A"]) - 2  # t/ holds three files
    for trial in range(trials):
        mode = rng.choice(["cold", "restore", "switch"])
        if mode == "cold":
            shutil.rmtree(cache, ignore_errors=True)
            shutil.rmtree(project / "out", ignore_errors=True)
        elif mode == "restore":
            shutil.rmtree(project / "out", ignore_errors=True)
        else:
            version = "B" if version == "A" else "A"
        write_project(project, version=version)
        phases[phase(kill_during(project, cache, rng, span, 2 * actions + 2), actions)] += 1
        # Fresh temp files of the dead writer are not entries and not (yet) stale: verify is clean.
        assert Store(cache).verify() == [], f"trial {trial} ({mode})"
        leftovers += any((cache / "tmp").iterdir()) if (cache / "tmp").is_dir() else 0
        for rel, data in output_files(project / "out").items():
            if rel.endswith(".ukbuild-tmp") and rel not in refs[version]:
                continue  # a dead writer's temp file, not an output path: the next build removes it
            assert data in (refs["A"].get(rel), refs["B"].get(rel)), f"trial {trial} ({mode}): partial output {rel}"
        again = ukbuild("build", "-C", project, "--cache-dir", cache)
        assert again.code == 0, f"trial {trial} ({mode}): {again.err}"
        assert output_files(project / "out") == refs[version], f"trial {trial} ({mode})"
        verify_clean(cache)
    print(f"sigkill trials={trials} phases={dict(sorted(phases.items()))} with-temp-leftovers={leftovers}")
