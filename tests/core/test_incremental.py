"""The incremental path: after a change to some inputs, only what they reach is keyed and run.

Each test builds a small graph (two libraries of three sources: a copy per
source, an archive per library, a link of both), changes something, and
checks what ran, which path was taken (the full path loads the project:
``api.load_project`` is replaced by a tripwire where it must not be), and
that outputs and records equal what a full build gives.
"""

from __future__ import annotations

import inspect
import marshal
import os
import shutil
import time
from pathlib import Path

import pytest

from tests.core.helpers import tree_bytes, ukbuild
from ukbuild import _incremental, api, cli

LIBS = ("a", "b")
STEMS = ("x", "y", "z")

PROJECT = """\
[project]
name = "incr"
default = ["cc_a", "cc_b", "ar_a", "ar_b", "link"]

[toolchain.host]
tools = ["cp", "cat", "sh"]
"""

LIB = """
[action.cc_{lib}]
foreach = "src/{lib}/*.c"
command = ["cp", "{{in}}", "obj/{lib}/{{stem}}.o"]
inputs = ["{{in}}", "include/"]
outputs = ["obj/{lib}/{{stem}}.o"]

[action.ar_{lib}]
command = ["sh", "-c", "cat obj/{lib}/*.o > lib/{lib}.a && ! grep -q FAIL lib/{lib}.a"]
deps = ["cc_{lib}"]
outputs = ["lib/{lib}.a"]
"""

LINK = """
[action.link]
command = ["sh", "-c", "cat lib/a.a lib/b.a > bin/app"]
deps = ["ar_a", "ar_b"]
outputs = ["bin/app"]
"""

CC_A = [f"cc_a[{s}]" for s in STEMS]
CC_B = [f"cc_b[{s}]" for s in STEMS]
ALL = sorted([*CC_A, *CC_B, "ar_a", "ar_b", "link"])


@pytest.fixture
def project(tmp_path: Path, cache_dir: Path) -> Path:
    root = tmp_path / "proj"
    for lib in LIBS:
        (root / "src" / lib).mkdir(parents=True)
        for stem in STEMS:
            (root / "src" / lib / f"{stem}.c").write_text(f"int {lib}_{stem};\n")
    (root / "include").mkdir()
    (root / "include" / "h.h").write_text("#define H 1\n")
    (root / "ukbuild.toml").write_text(PROJECT + "".join(LIB.format(lib=lib) for lib in LIBS) + LINK)
    return root


def build(project: Path, *extra: str):  # type: ignore[no-untyped-def]
    result = ukbuild("build", "-C", project, "--json", *extra)
    assert result.code == 0, result.err + result.out
    return result


def append(path: Path, text: str) -> None:
    with open(path, "a") as f:
        f.write(text)


def finished(result) -> dict:  # type: ignore[no-untyped-def]
    return next(e for e in result.events() if e["event"] == "build-finished")


def noop_summary(out: Path) -> dict:
    with open(out / ".ukbuild" / "noop", "rb") as f:
        return marshal.loads(f.read())["summary"]


def full_build_elsewhere(project: Path, tmp_path: Path) -> tuple[dict, dict[str, bytes]]:
    """What a full build of the project's current state records and writes (another out dir)."""
    out = tmp_path / "reference-out"
    shutil.rmtree(out, ignore_errors=True)
    result = ukbuild("build", "-C", project, "-o", out, "--json")
    assert result.code == 0, result.err
    return noop_summary(out), tree_bytes(out)


# The CLI calls the incremental path from its no-op check (ukbuild/cli.py, committed separately).
HOOKED = "_incremental" in inspect.getsource(cli)


@pytest.mark.skipif(not HOOKED, reason="this checkout's CLI does not call the incremental path yet")
class TestIncremental:
    def test_one_changed_source_reruns_exactly_its_dependants(
        self, project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """An edited source reruns its copy, its archive and the link; nothing else is keyed
        again, and outputs and the no-op record equal a full build's."""
        build(project)
        append(project / "src" / "a" / "y.c", "int edited;\n")
        monkeypatch.setattr(api, "load_project", _tripwire)
        result = build(project)
        monkeypatch.setattr(api, "load_project", REAL_LOAD)
        assert result.executed() == ["ar_a", "cc_a[y]", "link"]
        assert sorted(result.cached()) == sorted(set(ALL) - {"ar_a", "cc_a[y]", "link"})
        summary = finished(result)
        assert (summary["executed"], summary["cached"], summary["ok"]) == (3, len(ALL) - 3, True)
        assert (project / "out" / "bin" / "app").read_text().count("int edited;") == 1
        reference, files = full_build_elsewhere(project, tmp_path)
        assert noop_summary(project / "out") == reference
        assert summary["outputs"] == reference["outputs"]
        assert tree_bytes(project / "out") == files
        assert "up to date" in ukbuild("build", "-C", project).out  # the record is whole again

    def test_touch_reruns_nothing(self, project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """Touching a source (same bytes) keys it again and finds the same key: nothing runs,
        and no output file is rewritten."""
        build(project)
        outputs = {p: p.stat().st_ino for p in (project / "out").rglob("*") if p.is_file() and ".ukbuild" not in p.parts}
        time.sleep(0.01)
        os.utime(project / "src" / "a" / "x.c")
        monkeypatch.setattr(api, "load_project", _tripwire)
        result = build(project)
        assert result.executed() == []
        assert finished(result)["cached"] == len(ALL)
        assert {p: p.stat().st_ino for p in outputs} == outputs

    def test_header_change_reruns_every_reader(self, project: Path, cache_dir: Path) -> None:
        """A file read by many actions (a directory input) puts all of them in the cone; the
        copies produce the same objects, so their archives and the link are cache hits."""
        build(project)
        append(project / "include" / "h.h", "#define G 2\n")
        result = build(project)
        assert result.executed() == sorted([*CC_A, *CC_B])
        assert {"ar_a", "ar_b", "link"} <= set(result.cached())

    def test_project_file_edit_takes_the_full_path(self, project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        build(project)
        append(project / "ukbuild.toml", "# a comment\n")
        called = []
        real = api.load_project
        monkeypatch.setattr(api, "load_project", lambda *a, **k: called.append(a) or real(*a, **k))
        assert build(project).executed() == []
        assert called

    def test_new_source_in_a_globbed_directory_takes_the_full_path(self, project: Path) -> None:
        """A new file that a foreach pattern matches changes the graph: the full path finds it."""
        build(project)
        (project / "src" / "b" / "w.c").write_text("int w;\n")
        assert build(project).executed() == ["ar_b", "cc_b[w]", "link"]

    def test_new_source_in_a_directory_without_matches_takes_the_full_path(
        self, project: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A recursive pattern watches directories that hold no match yet: a source added there
        is a project change (the full path), not an input change or "up to date"."""
        (project / "src" / "a" / "sub").mkdir()
        (project / "src" / "a" / "sub" / "notes.h").write_text("\n")
        text = (project / "ukbuild.toml").read_text()
        (project / "ukbuild.toml").write_text(text.replace('"src/a/*.c"', '"src/a/**/*.c"'))
        build(project)
        (project / "src" / "a" / "sub" / "w.c").write_text("int w;\n")
        called = []
        monkeypatch.setattr(api, "load_project", lambda *a, **k: called.append(a) or REAL_LOAD(*a, **k))
        assert build(project).executed() == ["ar_a", "cc_a[w]", "link"]
        assert called

    def test_deleted_input_takes_the_full_path(self, project: Path) -> None:
        """A missing input is a configuration error, reported by the full path as usual."""
        build(project)
        (project / "include" / "h.h").unlink()
        (project / "include").rmdir()
        result = ukbuild("build", "-C", project)
        assert result.code == 2
        assert "does not exist" in result.err

    def test_edited_output_is_written_again_without_running_anything(
        self, project: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        build(project)
        before = (project / "out" / "lib" / "a.a").read_bytes()
        (project / "out" / "lib" / "a.a").write_text("clobbered")
        monkeypatch.setattr(api, "load_project", _tripwire)
        result = build(project)
        assert result.executed() == []
        assert (project / "out" / "lib" / "a.a").read_bytes() == before

    def test_lost_dependency_result_takes_the_full_path(self, project: Path, cache_dir: Path) -> None:
        """When a result the cone builds on is gone from the cache, the full path rebuilds it."""
        build(project)
        keys = noop_summary(project / "out")["actions"]
        digest = keys["cc_a[x]"].split(":")[1].split("/")[0]
        os.unlink(cache_dir / "ac" / digest[:2] / digest)
        append(project / "src" / "a" / "y.c", "int edited;\n")
        result = build(project)
        assert "cc_a[y]" in result.executed()
        assert (project / "out" / "bin" / "app").read_text().count("int edited;") == 1

    def test_failure_in_the_cone_fails_the_build_and_the_next_one_recovers(
        self, project: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """An archive that refuses its objects fails the build (exit 1, the link skipped,
        nothing recorded); once fixed, the next build runs what the failure left undone."""
        build(project)
        source = project / "src" / "a" / "y.c"
        append(source, "FAIL\n")
        monkeypatch.setattr(api, "load_project", _tripwire)
        result = ukbuild("build", "-C", project, "--json")
        assert result.code == 1
        assert result.executed() == ["cc_a[y]"]
        assert [e["action"] for e in result.events() if e["event"] == "action-failed"] == ["ar_a"]
        assert [e["action"] for e in result.events() if e["event"] == "action-skipped"] == ["link"]
        monkeypatch.setattr(api, "load_project", REAL_LOAD)  # a failed build leaves no record: the full path
        source.write_text("int fixed;\n")
        assert build(project).executed() == ["ar_a", "cc_a[y]", "link"]
        assert (project / "out" / "bin" / "app").read_text().count("int fixed;") == 1

    def test_explain_shows_the_change_after_an_incremental_build(self, project: Path) -> None:
        build(project)
        append(project / "src" / "b" / "z.c", "int edited;\n")
        build(project)
        result = ukbuild("explain", "-C", project, "cc_b[z]")
        assert result.code == 0, result.err
        assert "inputs.path:src/b/z.c" in result.out

    def test_incremental_record_follows_the_noop_record(self, project: Path) -> None:
        """Each record names the other's token: a stale incremental record is never used."""
        build(project)
        state = str(project / "out" / ".ukbuild")
        with open(os.path.join(state, "noop"), "rb") as f:
            token = marshal.load(f)["token"]
        assert _incremental._load(state)["token"] == token
        append(project / "src" / "a" / "x.c", "int e;\n")
        build(project)
        with open(os.path.join(state, "noop"), "rb") as f:
            token = marshal.load(f)["token"]
        assert _incremental._load(state)["token"] == token


REAL_LOAD = api.load_project


def _tripwire(*_args: object, **_kwargs: object) -> None:
    raise AssertionError("the full path was taken")


class TestChangedPaths:
    def test_changes_goes_on_from_where_check_stopped(self, tmp_path: Path) -> None:
        """check() stops at the first changed path; changes() lists every changed one, the
        same whether or not check() ran first, and gives their stat data now."""
        from ukbuild import _noop  # noqa: PLC0415

        files = [tmp_path / f"f{i}" for i in range(6)]
        for f in files:
            f.write_text("x")
        state = str(tmp_path / "state")
        req: list[object] = ["request"]
        _noop.record(state, req, [str(f) for f in files], {"actions": {}, "outputs": {}})
        time.sleep(0.01)
        for i in (1, 4):
            append(files[i], "y")
        files[5].unlink()
        assert _noop.check(state, req) is None
        found = _noop.changes(state, req)
        assert found is not None
        expected = [str(files[i]) for i in (1, 4, 5)]
        assert found[1] == expected
        assert found[2][str(files[5])] is None
        assert found[2][str(files[1])][2] == 2  # size now
        assert _noop.changes(state, req)[1] == expected  # (without check first)
        assert _noop.changes(state, ["another request"]) is None
