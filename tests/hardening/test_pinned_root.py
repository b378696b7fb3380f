"""Pinned build environments: an action runs inside another action's output tree as its root."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from ukbuild import api
from ukbuild.model import Action, OutputInput

pytestmark = pytest.mark.realtool("bwrap", "busybox")

#: A busybox root file system, itself a cached action output.
MAKE_ROOT = """\
[project]
name = "pinned"

[toolchain.host]
tools = ["sh", "mkdir", "cp", "ln", "busybox"]

[action.root]
command = ["sh", "-c", '''mkdir -p rootfs/bin rootfs/etc && cp "$(command -v busybox)" rootfs/bin/ &&
for applet in $(busybox --list); do ln -s busybox rootfs/bin/$applet; done && echo {release} > rootfs/etc/release''']
outputs = ["rootfs/"]
"""

#: What the pinned action reports: the root's own file, and that the host's are not there.
INSIDE = ("cat /etc/release > report.txt; "
          "if [ -e /usr/bin/python3 ]; then echo host-visible; else echo host-hidden; fi >> report.txt; "
          "pwd >> report.txt; readlink /bin/sh >> report.txt")


def project(root: Path, release: str) -> api.Project:
    root.mkdir(exist_ok=True)
    (root / "ukbuild.toml").write_text(MAKE_ROOT.format(release=release))
    loaded = api.load_project(root)
    inside = Action(name="inside", argv=["sh", "-c", INSIDE], outputs=["report.txt"],
                    rootfs=OutputInput("root", path="rootfs"))
    return attrs.evolve(loaded, actions={**loaded.actions, "inside": inside}, default_targets=["inside"])


def test_action_runs_in_its_pinned_root_keyed_by_its_content(tmp_path: Path) -> None:
    options = api.BuildOptions(cache_dir=tmp_path / "cache")
    first = api.Build(project(tmp_path / "p", "old-debian"), ["inside"], options).run()
    assert first.ok, first.errors
    report = (tmp_path / "p" / "out" / "report.txt").read_text().splitlines()
    assert report == ["old-debian", "host-hidden", "/ukbuild/work", "busybox"]

    again = api.Build(project(tmp_path / "p", "old-debian"), ["inside"], options).run()
    assert again.outcomes["inside"].status == "cached"
    changed = api.Build(project(tmp_path / "p", "older-debian"), ["inside"], options).run()
    assert changed.ok, changed.errors
    assert changed.outcomes["inside"].status == "executed"
    assert changed.outcomes["inside"].key != first.outcomes["inside"].key
    assert (tmp_path / "p" / "out" / "report.txt").read_text().startswith("older-debian\n")
    assert not list((tmp_path / "scratch").glob("rootfs-*")) if (tmp_path / "scratch").exists() else True


def test_a_tree_that_is_no_root_is_refused(tmp_path: Path) -> None:
    loaded = project(tmp_path / "p", "x")
    bad = attrs.evolve(loaded.actions["inside"], rootfs=OutputInput("root", path="rootfs/etc"))
    broken = attrs.evolve(loaded, actions={**loaded.actions, "inside": bad})
    result = api.Build(broken, ["inside"], api.BuildOptions(cache_dir=tmp_path / "cache")).run()
    assert not result.ok
    assert "does not look like a root file system" in result.errors[0].message
    assert result.errors[0].reason == "bad-rootfs"
