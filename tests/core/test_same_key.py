"""Two actions with the same key in one build (two unikernels pulling the same duniverse
entry): the command runs once, the other takes its result."""

from __future__ import annotations

from pathlib import Path

from tests.core.helpers import ukbuild

PROJECT = """\
[project]
name = "p"
default = ["a", "b"]

[toolchain.host]
tools = ["sh", "sleep"]

[action.a]
command = ["sh", "-c", "sleep 0.3; echo same > o.txt"]
outputs = ["o.txt"]

[action.b]
command = ["sh", "-c", "sleep 0.3; echo same > o.txt"]
outputs = ["o.txt"]
"""


def test_twins_run_once(tmp_path: Path) -> None:
    root = tmp_path / "p"
    root.mkdir()
    (root / "ukbuild.toml").write_text(PROJECT)
    result = ukbuild("build", "-C", root, "--cache-dir", tmp_path / "cache", "-j", "2", "--json")
    assert result.code == 0, result.err
    assert len(result.executed()) == 1 and len(result.cached()) == 1
    assert (root / "out" / "o.txt").read_text() == "same\n"
    forced = ukbuild("build", "-C", root, "--no-cache", "-j", "2", "--json", "-o", tmp_path / "out2")
    assert sorted(forced.executed()) == ["a", "b"]  # without the cache, everything runs
