"""Builds sharing one store while a garbage collector evicts it down to almost nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.core.helpers import ukbuild
from tests.hardening.helpers import output_files, verify_clean, write_project

VARIANTS = [{"small": 24, "large": 3}, {"small": 16, "large": 3}, {"small": 24, "large": 2}, {"small": 8, "large": 3}]
GC_LOOP = """
import io, pathlib, re, sys
from ukbuild.cli import main
stop, runs, evicted = pathlib.Path(sys.argv[2]), 0, 0
while not stop.exists():
    out = io.StringIO()
    assert main(["cache", "--cache-dir", sys.argv[1], "gc", "--max-size", sys.argv[3]], stdout=out) == 0
    runs += 1
    evicted += int(re.search(r"removed (\\d+)", out.getvalue() + "removed 0").group(1))
print(runs, evicted)
"""


def builder(project: Path, cache: Path, rounds: int, reference: dict[str, bytes]) -> int:
    """Build ``rounds`` times from an empty output dir; every build succeeds with the reference bytes."""
    for n in range(rounds):
        shutil.rmtree(project / "out", ignore_errors=True)
        proc = subprocess.run(
            [sys.executable, "-m", "ukbuild", "build", "-C", str(project), "--cache-dir", str(cache), "-j", "2"],
            capture_output=True, text=True, timeout=300, check=False,
        )
        assert proc.returncode == 0, f"{project.name} round {n}: {proc.stderr}"
        assert output_files(project / "out") == reference, f"{project.name} round {n}"
    return rounds


@pytest.mark.trials(3, 15)
def test_four_builders_and_a_gc_loop(tmp_path: Path, private_tmpdir: Path, trials: int) -> None:
    """Four processes build overlapping graphs (shared actions, one private action each) into one
    store while `ukbuild cache gc --max-size 256K` runs in a loop.  Two of the graphs were built a
    day ago (their entries aged), so the collector evicts what the builders are hitting.  Every
    build succeeds with outputs byte-equal to a private clean build; the store verifies clean."""
    projects, references = [], []
    for n, variant in enumerate(VARIANTS):
        project = write_project(tmp_path / f"p{n}", **variant)
        assert ukbuild("build", "-C", project, "--cache-dir", tmp_path / f"ref{n}").code == 0
        references.append(output_files(project / "out"))
        projects.append(project)
        shutil.rmtree(project / "out")
    cache, stop = tmp_path / "shared", tmp_path / "stop-gc"
    for project in projects[:2]:
        assert ukbuild("build", "-C", project, "--cache-dir", cache).code == 0
    yesterday = time.time() - 86400
    for entry in cache.rglob("*"):
        os.utime(entry, (yesterday, yesterday))
    start = time.monotonic()
    collector = subprocess.Popen([sys.executable, "-c", GC_LOOP, str(cache), str(stop), "256K"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        with ThreadPoolExecutor(len(projects)) as pool:
            builds = sum(pool.map(builder, projects, [cache] * 4, [trials] * 4, references))
    finally:
        stop.touch()
        out, err = collector.communicate(timeout=60)
    assert collector.returncode == 0, err
    runs, evicted = out.split()
    assert int(evicted) > 0, "the collector never evicted anything: the test proves nothing"
    print(f"gc-concurrency builds={builds} gc-runs={runs} evicted={evicted} seconds={time.monotonic() - start:.1f}")
    verify_clean(cache)
    for project, reference in zip(projects, references, strict=True):
        shutil.rmtree(project / "out")
        assert ukbuild("build", "-C", project, "--cache-dir", cache).code == 0
        assert output_files(project / "out") == reference
