"""A dependency on one output file of another action is keyed by that file's content."""

from __future__ import annotations

from pathlib import Path

from ukbuild import api

PROJECT = """\
[project]
name = "p"
default = ["use"]

[toolchain.host]
tools = ["sh", "cat"]

[action.make]
command = ["sh", "-c", "echo {text} > one.txt && echo same > two.txt"]
outputs = ["one.txt", "two.txt"]

[action.use]
command = ["sh", "-c", "cat in > used.txt"]
deps = [{{ action = "make", at = "in", path = "one.txt" }}]
outputs = ["used.txt"]
"""


def test_changed_file_changes_the_dependant_key(tmp_path: Path) -> None:
    root = tmp_path / "p"
    root.mkdir()

    def build(text: str) -> api.BuildResult:
        (root / "ukbuild.toml").write_text(PROJECT.format(text=text))
        options = api.BuildOptions(cache_dir=tmp_path / "cache")
        return api.Build(api.load_project(root), ["use"], options).run()

    first, second = build("a"), build("b")
    assert first.ok and second.ok, second.errors
    assert first.outcomes["use"].key != second.outcomes["use"].key
    assert second.outcomes["use"].status == "executed"
    assert (root / "out" / "used.txt").read_text() == "b\n"
