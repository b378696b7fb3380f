"""What the no-op record must catch: a stale record must never answer "up to date" (or skip
an action) when a full build would do something different.

Each test builds, changes something the record should cover, and checks that the next
build does what a full build does.
"""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.core.helpers import ukbuild
from tests.fakes.mirage.fixture import fake_mirage  # noqa: F401
from ukbuild import api


def build(project: Path, *extra: str):  # type: ignore[no-untyped-def]
    result = ukbuild("build", "-C", project, "--json", *extra)
    assert result.code == 0, result.err + result.out
    return result


def up_to_date(project: Path) -> bool:
    result = ukbuild("build", "-C", project)
    assert result.code == 0, result.err + result.out
    return "up to date" in result.out


SLOW = """\
[project]
name = "slow"

[action.copy]
command = ["sh", "-c", "sleep 2; cat in.txt > out.txt"]
inputs = ["in.txt"]
outputs = ["out.txt"]
"""


def build_while(project: Path, change) -> None:  # type: ignore[no-untyped-def]
    """Build in another process and call ``change`` once the action is running."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "ukbuild", "build", "-C", str(project), "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("{") and json.loads(line)["event"] == "action-started":
            break
    time.sleep(0.5)  # the input is staged by now; the command still sleeps
    change()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err + out


class TestChangedDuringTheBuild:
    @pytest.fixture
    def project(self, tmp_path: Path, cache_dir: Path) -> Path:
        root = tmp_path / "proj"
        root.mkdir()
        (root / "ukbuild.toml").write_text(SLOW)
        (root / "in.txt").write_text("v1\n")
        return root

    def test_input_edited_during_the_build_is_built_next_time(self, project: Path) -> None:
        build_while(project, lambda: (project / "in.txt").write_text("v2\n"))
        assert (project / "out" / "out.txt").read_text() == "v1\n"  # the build used what it hashed
        assert not up_to_date(project)
        assert (project / "out" / "out.txt").read_text() == "v2\n"
        assert up_to_date(project)

    def test_project_file_edited_during_the_build_is_read_next_time(self, project: Path) -> None:
        toml = project / "ukbuild.toml"
        build_while(project, lambda: toml.write_text(SLOW.replace("cat in.txt", "cat in.txt in.txt")))
        assert (project / "out" / "out.txt").read_text() == "v1\n"
        assert not up_to_date(project)
        assert (project / "out" / "out.txt").read_text() == "v1\nv1\n"
        assert up_to_date(project)

    def test_input_edited_during_an_incremental_build_is_built_next_time(self, project: Path) -> None:
        build(project)
        (project / "in.txt").write_text("v2\n")  # the next build takes the incremental path
        build_while(project, lambda: (project / "in.txt").write_text("v3\n"))
        assert (project / "out" / "out.txt").read_text() == "v2\n"
        assert not up_to_date(project)
        assert (project / "out" / "out.txt").read_text() == "v3\n"

    def test_project_file_edited_while_it_is_parsed(self, project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """The project file is stat'ed before it is read, not after."""
        from ukbuild import _project  # noqa: PLC0415

        real = _project.read_toml

        def read_then_edit(path):  # type: ignore[no-untyped-def]
            found = real(path)
            if path.name == "ukbuild.toml":
                path.write_text(SLOW.replace("cat in.txt", "cat in.txt in.txt"))
            return found

        monkeypatch.setattr(_project, "read_toml", read_then_edit)
        build(project)
        monkeypatch.setattr(_project, "read_toml", real)
        assert (project / "out" / "out.txt").read_text() == "v1\n"
        assert not up_to_date(project)
        assert (project / "out" / "out.txt").read_text() == "v1\nv1\n"


class TestRecordFormat:
    def test_missing_stays_unchanged_and_unknown_never_matches(self, tmp_path: Path) -> None:
        from ukbuild import _noop  # noqa: PLC0415

        here, absent, doubtful = tmp_path / "here", tmp_path / "absent", tmp_path / "doubtful"
        here.write_text("x")
        doubtful.write_text("y")
        state, req = str(tmp_path / "state"), ["request"]
        paths = [str(here), str(absent), str(doubtful)]
        _noop.record(state, req, paths, {"actions": {}}, stats={str(absent): None})
        assert _noop.check(state, req) == {"actions": {}}  # a path missing then and now is unchanged
        absent.write_text("new")
        assert _noop.check(state, req) is None
        absent.unlink()
        _noop.record(state, req, paths, {"actions": {}}, stats={str(doubtful): _noop.UNKNOWN})
        assert _noop.check(state, req) is None
        assert _noop.changes(state, req)[1] == [str(doubtful)]


LINKS = """\
[project]
name = "links"

[action.lib]
command = ["sh", "-c", "echo lib > lib.so.1 && ln -s lib.so.1 lib.so && mkdir -p d/empty d/full && echo f > d/full/f && ln -s full/f d/link"]
outputs = ["lib.so.1", "lib.so", "d/"]
"""


class TestOutputsBesidesFiles:
    @pytest.fixture
    def project(self, tmp_path: Path, cache_dir: Path) -> Path:
        root = tmp_path / "proj"
        root.mkdir()
        (root / "ukbuild.toml").write_text(LINKS)
        build(root)
        assert up_to_date(root)
        return root

    def test_removed_output_symlink_is_put_back(self, project: Path) -> None:
        (project / "out" / "lib.so").unlink()
        assert not up_to_date(project)
        assert os.readlink(project / "out" / "lib.so") == "lib.so.1"
        assert up_to_date(project)

    def test_retargeted_output_symlink_is_put_back(self, project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(api, "load_project", _tripwire)  # the incremental path writes it again
        for link, target in (("lib.so", "elsewhere"), ("d/link", "../lib.so.1")):
            path = project / "out" / link
            path.unlink()
            path.symlink_to(target)
            assert not up_to_date(project)
            assert os.readlink(path) != target
        assert up_to_date(project)

    def test_removed_empty_output_directory_is_put_back(self, project: Path) -> None:
        (project / "out" / "d" / "empty").rmdir()
        assert not up_to_date(project)
        assert (project / "out" / "d" / "empty").is_dir()
        assert up_to_date(project)

    def test_stray_file_in_an_output_directory_is_removed(self, project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """A full build prunes what its action did not produce from an output directory (and
        so does the incremental path)."""
        monkeypatch.setattr(api, "load_project", _tripwire)
        (project / "out" / "d" / "empty" / "stray").write_text("x")
        assert not up_to_date(project)
        assert not (project / "out" / "d" / "empty" / "stray").exists()
        assert up_to_date(project)


def _tripwire(*_args: object, **_kwargs: object) -> None:
    raise AssertionError("the full path was taken")


NESTED = """\
[project]
name = "nested"
default = ["dir", "file"]

[action.dir]
command = ["sh", "-c", "mkdir -p d/sub && echo a > d/a"]
outputs = ["d/"]

[action.file]
command = ["sh", "-c", "mkdir -p d && echo b > d/b"]
deps = ["dir"]
outputs = ["d/b"]
"""


def test_file_written_into_another_targets_directory(tmp_path: Path, cache_dir: Path) -> None:
    """Writing one target's file changes the stat data of the other's directory: the two
    are placed together, as the full path does, and the next build is up to date."""
    root = tmp_path / "proj"
    root.mkdir()
    (root / "ukbuild.toml").write_text(NESTED)
    build(root)
    assert (root / "out" / "d" / "b").read_text() == "b\n"
    assert up_to_date(root)
    (root / "out" / "d" / "b").write_text("clobbered\n")
    assert not up_to_date(root)
    assert (root / "out" / "d" / "b").read_text() == "b\n"
    assert up_to_date(root)
    assert (root / "out" / "d" / "b").read_text() == "b\n"


TOOLCHAIN = """\
[project]
name = "tools"

[toolchain.m]
backend = "mirage"

[action.x]
toolchain = "m"
command = ["sh", "-c", "echo hi > out.txt"]
outputs = ["out.txt"]
"""


class TestToolChanges:
    """A MirageOS toolchain found on PATH (the fake one): its tools may be reached through
    links, and a tool may be shadowed by a new one earlier on the path."""

    @pytest.fixture
    def project(self, tmp_path: Path, cache_dir: Path, fake_mirage, monkeypatch: pytest.MonkeyPatch) -> Path:  # type: ignore[no-untyped-def]
        self.tmp = tmp_path
        self.fake = fake_mirage
        for name in ("front", "links", "alternatives", "versions"):
            (tmp_path / name).mkdir()
        for version in ("a", "b"):
            dune = tmp_path / "versions" / f"dune-{version}"
            dune.write_bytes((fake_mirage.bin_dir / "dune").read_bytes() + f"# {version}\n".encode())
            dune.chmod(0o755)
        (tmp_path / "alternatives" / "dune").symlink_to(tmp_path / "versions" / "dune-a")
        (tmp_path / "links" / "dune").symlink_to(tmp_path / "alternatives" / "dune")
        path = [tmp_path / "front", tmp_path / "links", fake_mirage.bin_dir, "/usr/bin", "/bin"]
        monkeypatch.setenv("PATH", os.pathsep.join(map(str, path)))
        for name in ("UKBUILD_MIRAGE_PREFIX", "UKBUILD_SOLO5_PREFIX", "OPAMSWITCH"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("OPAMROOT", str(fake_mirage.opam_root))
        root = tmp_path / "proj"
        root.mkdir()
        (root / "ukbuild.toml").write_text(TOOLCHAIN)
        assert build(root).executed() == ["x"]
        assert up_to_date(root)
        return root

    def test_tool_upgraded_by_retargeting_a_link(self, project: Path) -> None:
        """update-alternatives: links/dune -> alternatives/dune -> versions/dune-a, then -b."""
        link = self.tmp / "alternatives" / "dune"
        new = self.tmp / "alternatives" / ".dune.new"
        new.symlink_to(self.tmp / "versions" / "dune-b")
        os.replace(new, link)
        assert build(project).executed() == ["x"]
        assert up_to_date(project)

    def test_tool_shadowed_earlier_on_the_search_path(self, project: Path) -> None:
        shadow = self.tmp / "front" / "dune"
        shadow.write_bytes((self.tmp / "versions" / "dune-b").read_bytes())
        shadow.chmod(0o755)
        assert build(project).executed() == ["x"]
        assert up_to_date(project)

    def test_non_executable_file_earlier_on_the_search_path_made_executable(self, project: Path) -> None:
        shadow = self.tmp / "front" / "dune"
        shadow.write_bytes((self.tmp / "versions" / "dune-b").read_bytes())
        shadow.chmod(0o644)  # not a candidate yet
        assert build(project).executed() == []
        shadow.chmod(0o755)
        assert build(project).executed() == ["x"]


def test_link_chain_names_every_link_on_the_way(tmp_path: Path) -> None:
    """bin -> usr/bin (a directory link), usr/bin/cc -> ../../etc/alternatives/cc -> gcc-12."""
    from ukbuild.toolchains import link_chain  # noqa: PLC0415

    (tmp_path / "usr" / "bin").mkdir(parents=True)
    (tmp_path / "etc" / "alternatives").mkdir(parents=True)
    (tmp_path / "usr" / "bin" / "gcc-12").write_text("#!/bin/sh\n")
    (tmp_path / "bin").symlink_to("usr/bin")
    (tmp_path / "usr" / "bin" / "cc").symlink_to("../../etc/alternatives/cc")
    (tmp_path / "etc" / "alternatives" / "cc").symlink_to(tmp_path / "usr" / "bin" / "gcc-12")
    real = os.path.realpath(tmp_path)
    assert link_chain(str(tmp_path / "bin" / "cc"))[-4:] == [
        f"{real}/bin", f"{real}/usr/bin/cc", f"{real}/etc/alternatives/cc", f"{real}/usr/bin/gcc-12"]


class TestDetectionEnvironment:
    """Variables a backend's detection reads enter the toolchain (and so keys): the
    MirageOS backend puts OPAMSWITCH and OPAMROOT into the toolchain's env."""

    @pytest.fixture
    def project(self, tmp_path: Path, cache_dir: Path, fake_mirage, monkeypatch: pytest.MonkeyPatch) -> Path:  # type: ignore[no-untyped-def]
        monkeypatch.setenv("UKBUILD_MIRAGE_PREFIX", str(fake_mirage.prefix))
        monkeypatch.delenv("UKBUILD_SOLO5_PREFIX", raising=False)
        monkeypatch.setenv("OPAMROOT", str(fake_mirage.opam_root))
        monkeypatch.setenv("OPAMSWITCH", "default")
        root = tmp_path / "proj"
        root.mkdir()
        (root / "ukbuild.toml").write_text(TOOLCHAIN)
        assert build(root).executed() == ["x"]
        assert up_to_date(root)
        return root

    @pytest.mark.parametrize("name", ["OPAMSWITCH", "OPAMROOT"])
    def test_changed_variable_is_seen(self, project: Path, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv(name, "/elsewhere")
        assert build(project).executed() == ["x"]
        assert up_to_date(project)

    def test_unset_variable_is_seen(self, project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """(Unset, OPAMSWITCH defaults to the switch's name, "default": the same key.)"""
        monkeypatch.delenv("OPAMSWITCH")
        assert not up_to_date(project)  # detected again
        assert up_to_date(project)

    def test_variables_detection_does_not_read_are_not_in_the_record(
        self, project: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("SOMETHING_ELSE", "1")
        assert up_to_date(project)


def test_new_file_in_a_local_package_source(tmp_path: Path, cache_dir: Path) -> None:
    """A package built from a local directory: a file added to that directory's top."""
    root = tmp_path / "proj"
    (root / "src").mkdir(parents=True)
    (root / "src" / "a.txt").write_text("a\n")
    (root / "ukbuild.toml").write_text(
        '[project]\nname = "local"\n\n[package.foo]\nsource = { path = "src" }\n'
        'steps = ["mkdir -p $DESTDIR/usr/share && ls > $DESTDIR/usr/share/list"]\n')
    build(root)
    assert up_to_date(root)
    (root / "src" / "b.txt").write_text("b\n")
    assert not up_to_date(root)
    assert (root / "out" / "pkg" / "foo" / "usr" / "share" / "list").read_text() == "a.txt\nb.txt\n"


@pytest.mark.parametrize("pattern", ["src/*/*.c", "src/**/*.c", "src/*/x/*.c"])
def test_new_match_in_a_directory_without_matches_yet(tmp_path: Path, cache_dir: Path, pattern: str) -> None:
    """A foreach pattern with wildcards in directories: a file added where nothing matched."""
    root = tmp_path / "proj"
    for d in ("src/a/x", "src/b/x/deep"):
        (root / d).mkdir(parents=True)
    (root / "src" / "a" / "x" / "one.c").write_text("1\n")
    (root / "src" / "a" / "zero.c").write_text("1\n")
    (root / "ukbuild.toml").write_text(
        f'[project]\nname = "gl"\n\n[action.cp]\nforeach = "{pattern}"\n'
        'command = ["cp", "{in}", "o/{stem}.o"]\ninputs = ["{in}"]\noutputs = ["o/{stem}.o"]\n')
    build(root)
    assert up_to_date(root)
    for new in ("src/b/x/two.c", "src/b/x/deep/three.c", "src/c/x/four.c", "src/b/five.c"):
        (root / new).parent.mkdir(parents=True, exist_ok=True)
        (root / new).write_text("2\n")
        stem = Path(new).stem
        wanted = sorted(glob.glob(pattern, root_dir=root, recursive=True))
        result = build(root)
        assert (f"cp[{stem}]" in result.executed()) == (new in wanted), (pattern, new)
        assert up_to_date(root)


def test_no_path_is_statted_when_the_record_is_written(
    example: Path, tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every tracked path's stat data comes from when the build read or wrote it (the
    example: sources, a directory input, a package, host tools; and symlink outputs)."""
    from ukbuild import _noop  # noqa: PLC0415

    links = tmp_path / "links"
    links.mkdir()
    (links / "ukbuild.toml").write_text(LINKS)

    def late(path: str) -> None:
        raise AssertionError(f"{path} stat'ed after the build")

    real_record = _noop.record

    def record(*args, **kwargs):  # type: ignore[no-untyped-def]
        with monkeypatch.context() as patch:
            patch.setattr(_noop, "stat_of", late)
            return real_record(*args, **kwargs)

    monkeypatch.setattr(_noop, "record", record)
    for project in (example, links):
        build(project)
        assert up_to_date(project)
