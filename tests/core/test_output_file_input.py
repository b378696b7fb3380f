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


def build(root: Path, project: str, *targets: str) -> api.BuildResult:
    """Write ``project`` as ``root``'s project file and build ``targets`` (cache beside ``root``)."""
    root.mkdir(exist_ok=True)
    (root / "ukbuild.toml").write_text(project)
    options = api.BuildOptions(cache_dir=root.parent / "cache")
    return api.Build(api.load_project(root), list(targets), options).run()


def test_changed_file_changes_the_dependant_key(tmp_path: Path) -> None:
    root = tmp_path / "p"
    first, second = (build(root, PROJECT.format(text=t), "use") for t in "ab")
    assert first.ok and second.ok, second.errors
    assert first.outcomes["use"].key != second.outcomes["use"].key
    assert second.outcomes["use"].status == "executed"
    assert (root / "out" / "used.txt").read_text() == "b\n"


DIRECTORY_PROJECT = """\
[project]
name = "p"
default = ["use-file", "use-subdir"]

[toolchain.host]
tools = ["sh", "cat", "ls", "mkdir"]

[action.make]
command = ["sh", "-c", "mkdir -p d/sub && echo {text} > d/a.txt && echo b > d/b.txt && echo c > d/sub/c.txt"]
outputs = ["d/"]

[action.use-file]
command = ["sh", "-c", "cat in > used.txt"]
deps = [{{ action = "make", at = "in", path = "d/a.txt" }}]
outputs = ["used.txt"]

[action.use-subdir]
command = ["sh", "-c", "ls -R in > listing.txt && cat in/c.txt >> listing.txt"]
deps = [{{ action = "make", at = "in", path = "d/sub" }}]
outputs = ["listing.txt"]

[action.use-missing]
command = ["sh", "-c", "cat in > never.txt"]
deps = [{{ action = "make", at = "in", path = "d/missing.txt" }}]
outputs = ["never.txt"]
"""


def test_file_or_subdirectory_inside_an_output_directory(tmp_path: Path) -> None:
    """A dependency on a path inside another action's output directory stages just that path."""
    root = tmp_path / "p"
    first = build(root, DIRECTORY_PROJECT.format(text="a"), "use-file", "use-subdir")
    assert first.ok, first.errors
    assert (root / "out" / "used.txt").read_text() == "a\n"
    assert (root / "out" / "listing.txt").read_text() == "in:\nc.txt\nc\n"
    second = build(root, DIRECTORY_PROJECT.format(text="z"), "use-file", "use-subdir")
    assert second.ok, second.errors
    assert (root / "out" / "used.txt").read_text() == "z\n"
    assert second.outcomes["use-file"].status == "executed"
    assert second.outcomes["use-subdir"].status != "executed"  # d/sub did not change: early cutoff

    missing = build(root, DIRECTORY_PROJECT.format(text="z"), "use-missing")
    assert not missing.ok
    assert "use-missing: depends on 'd/missing.txt' of action 'make', which produced no such output" in str(
        missing.errors)


def test_changed_file_in_a_depended_on_directory_rebuilds(tmp_path: Path) -> None:
    """``path`` naming an output directory (how an install tree reaches a sysroot) is keyed by the
    directory's content, not as an empty directory."""
    root = tmp_path / "p"
    first, second = (build(root, DIRECTORY_PROJECT.format(text=t).replace("d/sub", "d"), "use-subdir") for t in "ab")
    assert first.ok and second.ok, second.errors
    assert first.outcomes["use-subdir"].key != second.outcomes["use-subdir"].key
    assert second.outcomes["use-subdir"].status == "executed"
