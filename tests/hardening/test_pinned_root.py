"""Pinned build environments: an action runs inside another action's output tree as its root."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.core.helpers import ukbuild

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

#: The pinned action: it reports the root's own file, and that the host's are not there.
INSIDE = """
[action.inside]
command = ["sh", "-c", "cat /etc/release > report.txt; if [ -e /usr/bin/python3 ]; then echo host-visible; else echo host-hidden; fi >> report.txt; pwd >> report.txt; readlink /bin/sh >> report.txt"]
outputs = ["report.txt"]
rootfs = { action = "root", path = "rootfs" }
"""


def project(root: Path, release: str, inside: str = INSIDE) -> Path:
    root.mkdir(exist_ok=True)
    (root / "ukbuild.toml").write_text(MAKE_ROOT.format(release=release) + inside)
    return root


def test_action_runs_in_its_pinned_root_keyed_by_its_content(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = ukbuild("build", "-C", project(tmp_path / "p", "old-debian"), "--cache-dir", cache, "--json", "inside")
    assert first.code == 0, first.err
    report = (tmp_path / "p" / "out" / "report.txt").read_text().splitlines()
    assert report == ["old-debian", "host-hidden", "/ukbuild/work", "busybox"]
    again = ukbuild("build", "-C", tmp_path / "p", "--cache-dir", cache, "-o", tmp_path / "out2", "--json", "inside")
    assert sorted(again.cached()) == ["inside", "root"]
    changed = ukbuild("build", "-C", project(tmp_path / "p", "older-debian"), "--cache-dir", cache, "--json", "inside")
    assert changed.code == 0, changed.err
    assert sorted(changed.executed()) == ["inside", "root"]
    assert (tmp_path / "p" / "out" / "report.txt").read_text().startswith("older-debian\n")


def test_a_tree_that_is_no_root_is_refused(tmp_path: Path) -> None:
    p = project(tmp_path / "p", "x", INSIDE.replace('path = "rootfs"', 'path = "rootfs/etc"'))
    result = ukbuild("build", "-C", p, "--cache-dir", tmp_path / "cache", "inside")
    assert result.code == 1
    assert "inside: rootfs 'out:root:rootfs/etc' does not look like a root file system" in result.err


@pytest.mark.parametrize(("change", "message"), [
    ('rootfs = { action = "root", path = "rootfs", at = "r" }', "action.inside.rootfs.at: a root file system is mounted at /"),
    ('rootfs = { action = "root", path = "rootfs" }\ntoolchain = "host"', "action.inside.toolchain: an action with a rootfs runs the root's own tools"),
    ('rootfs = "nope"', "inside: rootfs: no action or package named 'nope'"),
])
def test_bad_rootfs_tables(tmp_path: Path, change: str, message: str) -> None:
    p = project(tmp_path / "p", "x", INSIDE.replace('rootfs = { action = "root", path = "rootfs" }', change))
    result = ukbuild("build", "-C", p, "--cache-dir", tmp_path / "cache", "inside")
    assert result.code == 2, result.err
    assert message in result.err
