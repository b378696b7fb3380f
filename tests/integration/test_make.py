"""ukbuild as a step of GNU make: the depfile makes Make re-run it exactly when an input changes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def make(cwd: Path, *args: str, cache: Path) -> subprocess.CompletedProcess[str]:
    ukbuild = f"{sys.executable} -m ukbuild"
    return subprocess.run(
        ["make", f"UKBUILD={ukbuild}", *args], cwd=cwd, capture_output=True, text=True, check=False,
        env={**os.environ, "UKBUILD_CACHE_DIR": str(cache)},
    )


def age(path: Path) -> None:
    """Make compares mtimes at 1 s granularity here: push the output into the past."""
    stamp = time.time() - 10
    os.utime(path, (stamp, stamp))


@pytest.mark.realtool("make")
def test_make_reruns_only_when_a_listed_input_changes(tmp_path: Path) -> None:
    shutil.copytree(REPO / "examples" / "hello-c", tmp_path / "hello-c", ignore=shutil.ignore_patterns("out"))
    shutil.copytree(REPO / "examples" / "make", tmp_path / "make")
    cwd, cache = tmp_path / "make", tmp_path / "cache"
    first = make(cwd, cache=cache)
    assert first.returncode == 0, first.stderr
    output = cwd / "out" / "dist" / "hello.tar.gz"
    assert output.is_file()
    age(output)
    depfile = (cwd / "out" / "hello.d").read_text()
    assert "../hello-c/src/util.c" in depfile and "../hello-c/ukbuild.toml" in depfile
    assert make(cwd, "-q", cache=cache).returncode == 0  # up to date

    (tmp_path / "hello-c" / "NOTES.txt").write_text("not an input\n")
    assert make(cwd, "-q", cache=cache).returncode == 0  # an unlisted file changes nothing

    util = tmp_path / "hello-c" / "src" / "util.c"
    util.write_text(util.read_text().replace("out[n] = '\\0';", "out[n] = 0;"))
    assert make(cwd, "-q", cache=cache).returncode == 1  # a listed file changed: out of date
    again = make(cwd, cache=cache)
    assert again.returncode == 0, again.stderr
    assert "compile[util]" in again.stderr
    assert make(cwd, "-q", cache=cache).returncode == 0
