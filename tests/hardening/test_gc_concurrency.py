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
# The first collection runs before the builders start (it announces itself through the
# ``first`` file), so it deterministically evicts aged entries the builders are about to
# need; every later one races the builders.
GC_LOOP = """
import io, pathlib, re, sys
from ukbuild.cli import main
stop, first = pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[4])
runs, evicted = 0, []
while not stop.exists():
    out = io.StringIO()
    assert main(["cache", "--cache-dir", sys.argv[1], "gc", "--max-size", sys.argv[3]], stdout=out) == 0
    runs += 1
    evicted.append(int(re.search(r"removed (\\d+)", out.getvalue() + "removed 0").group(1)))
    if runs == 1:
        first.touch()
print(runs, evicted[0], sum(evicted[1:]))
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
    cache, stop, first = tmp_path / "shared", tmp_path / "stop-gc", tmp_path / "first-gc"
    for project in projects[:2]:
        assert ukbuild("build", "-C", project, "--cache-dir", cache).code == 0
    yesterday = time.time() - 86400
    for entry in cache.rglob("*"):
        os.utime(entry, (yesterday, yesterday))
    start = time.monotonic()
    collector = subprocess.Popen([sys.executable, "-c", GC_LOOP, str(cache), str(stop), "256K", str(first)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not first.exists():
            assert collector.poll() is None, collector.communicate()[1]
            assert time.monotonic() < deadline, "the first collection did not finish in 60 s"
            time.sleep(0.01)
        with ThreadPoolExecutor(len(projects)) as pool:
            builds = sum(pool.map(builder, projects, [cache] * 4, [trials] * 4, references))
    finally:
        stop.touch()
        out, err = collector.communicate(timeout=60)
    assert collector.returncode == 0, err
    runs, evicted_first, evicted_during = out.split()
    assert int(evicted_first) > 0, "the first collection evicted nothing: the builders would only hit"
    print(f"gc-concurrency builds={builds} gc-runs={runs} evicted-first={evicted_first} "
          f"evicted-during-builds={evicted_during} seconds={time.monotonic() - start:.1f}")
    verify_clean(cache)
    for project, reference in zip(projects, references, strict=True):
        shutil.rmtree(project / "out")
        assert ukbuild("build", "-C", project, "--cache-dir", cache).code == 0
        assert output_files(project / "out") == reference
