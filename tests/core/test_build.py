"""The example graph end to end: what runs, what is reused, and what explain says."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import pytest

from tests.core.helpers import tree_bytes, ukbuild
from ukbuild import api

ALL = ["compile[greet]", "compile[main]", "compile[util]", "lib", "link", "package"]
SCHEMA = Path(__file__).resolve().parents[2] / "ukbuild" / "schemas" / "events-v1.schema.json"


def build(project: Path, *extra: str):  # type: ignore[no-untyped-def]
    result = ukbuild("build", "-C", project, "--json", *extra)
    assert result.code == 0, result.err
    return result


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


class TestRebuilds:
    def test_first_build_runs_everything_second_nothing(self, example: Path, cache_dir: Path) -> None:
        """Cold: every action executes; warm: zero execute and all are reported as cache hits."""
        first = build(example)
        assert first.executed() == ALL
        assert (example / "out" / "dist" / "hello.tar.gz").is_file()
        second = build(example)
        assert second.executed() == []
        assert second.cached() == ALL

    def test_fresh_output_dir_restores_from_the_cache(self, example: Path, cache_dir: Path) -> None:
        """Without the no-op journal every action is an AC hit and outputs come back byte-equal."""
        build(example)
        before = tree_bytes(example / "out")
        shutil.rmtree(example / "out")
        again = build(example)
        assert again.executed() == []
        assert again.cached() == ALL
        assert {e["via"] for e in again.events() if e["event"] == "action-cached"} == {"local"}
        assert tree_bytes(example / "out") == before

    def test_touch_without_change_runs_nothing(self, example: Path, cache_dir: Path) -> None:
        build(example)
        time.sleep(0.01)
        for source in (example / "src").iterdir():
            os.utime(source)
        assert build(example).executed() == []

    def test_code_edit_reruns_its_compile_and_what_depends_on_the_change(self, example: Path, cache_dir: Path) -> None:
        """A real change to util.c recompiles it; its new object re-runs lib, link and package."""
        build(example)
        edit(example / "src" / "util.c", "toupper((unsigned char)text[n])", "toupper((unsigned char)text[n]) ^ 0")
        assert build(example).executed() == ["compile[util]", "lib", "link", "package"]

    def test_edit_that_keeps_the_object_stops_at_the_compile(self, example: Path, cache_dir: Path) -> None:
        """A comment-only edit (same line numbers) recompiles, but the identical object cuts off the rest."""
        build(example)
        edit(example / "src" / "greet.c", "/* The text every build of the example prints. */", "/* Changed comment, same line. */")
        result = build(example)
        assert result.executed() == ["compile[greet]"]
        assert sorted(result.cached()) == [a for a in ALL if a != "compile[greet]"]

    def test_explain_names_exactly_the_changed_input(self, example: Path, cache_dir: Path) -> None:
        """explain lists the one changed field with its old and new digests, and nothing else."""
        build(example)
        source = example / "src" / "greet.c"
        old = f"sha256:{__import__('hashlib').sha256(source.read_bytes()).hexdigest()}/{source.stat().st_size}"
        edit(source, "/* The text every build of the example prints. */", "/* Changed. */")
        new = f"sha256:{__import__('hashlib').sha256(source.read_bytes()).hexdigest()}/{source.stat().st_size}"
        result = ukbuild("explain", "-C", example, "compile[greet]")
        assert result.code == 0, result.err
        lines = result.out.splitlines()
        assert lines[0].startswith("compile[greet]: will run, key sha256:")
        assert lines[1:] == [f"  inputs.path:src/greet.c: {old} -> {new}"]
        # After building, explain still shows the same single change (previous distinct key).
        build(example)
        after = ukbuild("explain", "-C", example, "compile[greet]").out.splitlines()
        assert after[0].startswith("compile[greet]: cached")
        assert after[1:] == [f"  inputs.path:src/greet.c: {old} -> {new}"]

    def test_explain_of_a_dependant_waiting_on_a_rebuild(self, example: Path, cache_dir: Path) -> None:
        build(example)
        edit(example / "src" / "util.c", "out[n] = '\\0';", "out[n] = 0;")
        result = ukbuild("explain", "-C", example, "link")
        assert result.out.startswith("link: depends on compile[util], which must run first")


    @pytest.mark.parametrize(("pattern", "first", "new"), [
        ("src/**/*.c", ["src/main.c", "src/sub/util.h"], "src/sub/util.c"),
        ("src/*/x/*.c", ["src/a/x/one.c", "src/b/readme"], "src/b/x/two.c"),
    ])
    def test_new_file_where_the_glob_had_no_match_is_found(
        self, tmp_path: Path, cache_dir: Path, pattern: str, first: list[str], new: str
    ) -> None:
        """A foreach match appearing in a directory that held none (or in a directory that did not
        exist) is not answered "up to date": every directory the glob walks is watched."""
        project = tmp_path / "p"
        for rel in first:
            (project / rel).parent.mkdir(parents=True, exist_ok=True)
            (project / rel).write_text(rel)
        (project / "ukbuild.toml").write_text(
            f'[project]\nname = "p"\n[action.c]\nforeach = "{pattern}"\n'
            'command = ["sh", "-c", "mkdir -p obj && cat {in} > obj/{stem}.o"]\n'
            'inputs = ["{in}"]\noutputs = ["obj/{stem}.o"]\n')
        build(project)
        assert "up to date" in ukbuild("build", "-C", project).out
        (project / new).parent.mkdir(parents=True, exist_ok=True)
        (project / new).write_text(new)
        stem = Path(new).stem
        assert build(project).executed() == [f"c[{stem}]"]
        assert (project / "out" / "obj" / f"{stem}.o").read_text() == new


class TestGraph:
    def test_names_are_valid_dot_ids(self, tmp_path: Path) -> None:
        """foreach names hold file names: a '"' or a trailing '\\' in one must not end its
        quoted ID early; each ID, unescaped, is the action's name."""
        import re  # noqa: PLC0415

        (tmp_path / "src").mkdir()
        stems = ['a"b', "back\\", "new\nline", "plain"]
        for stem in stems:
            (tmp_path / "src" / f"{stem}.c").write_text("")
        (tmp_path / "ukbuild.toml").write_text(
            '[project]\nname = "p"\n[action.c]\nforeach = "src/*.c"\ncommand = ["true"]\ninputs = ["{in}"]\n'
            'outputs = ["{stem}.o"]\n[action.link]\ncommand = ["true"]\ndeps = ["c"]\noutputs = ["l"]\n')
        result = ukbuild("graph", "-C", tmp_path)
        assert result.code == 0, result.err
        quoted = r'"((?:[^"\\\n]|\\.)*)"'
        lines = result.out.splitlines()
        assert re.fullmatch(rf"digraph {quoted} {{", lines[0]) and lines[1:2] == ["  rankdir=LR;"] and lines[-1] == "}"
        nodes, edges = set(), set()
        unescape = lambda text: re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), text)  # noqa: E731
        for line in lines[2:-1]:
            node = re.fullmatch(rf"  {quoted};", line)
            edge = re.fullmatch(rf"  {quoted} -> {quoted};", line)
            assert node or edge, line
            if node:
                nodes.add(unescape(node.group(1)))
            else:
                edges.add((unescape(edge.group(1)), unescape(edge.group(2))))
        members = {f"c[{stem}]" for stem in stems}
        assert nodes == members | {"link"}
        assert edges == {(m, "link") for m in members}


class TestPaths:
    def test_two_checkouts_share_keys_and_cache(self, example: Path, cache_dir: Path, tmp_path: Path) -> None:
        """A checkout at another path computes identical keys and executes nothing."""
        first = build(example)
        other = tmp_path / "elsewhere" / "deeper" / "copy"
        shutil.copytree(example, other, ignore=shutil.ignore_patterns("out"))
        second = build(other)
        assert second.executed() == []
        keys = lambda r: {e["action"]: e["key"] for e in r.events() if e["event"] in ("action-finished", "action-cached")}  # noqa: E731
        assert keys(first) == keys(second)
        assert tree_bytes(example / "out") == tree_bytes(other / "out")

    def test_no_scratch_path_in_outputs(self, example: Path, cache_dir: Path, tmp_path: Path) -> None:
        """Debug info names the logical build path, never the scratch directory."""
        build(example, "--no-cache")
        data = (example / "out" / "dist" / "hello.tar.gz").read_bytes()
        import gzip  # noqa: PLC0415

        raw = gzip.decompress(data)
        assert str(tmp_path).encode() not in raw
        assert b"/tmp/ukbuild-" not in raw


class TestEvents:
    def test_every_event_validates_against_the_schema(self, example: Path, cache_dir: Path) -> None:
        validator = jsonschema.Draft202012Validator(__import__("json").loads(SCHEMA.read_text()))
        events = build(example).events() + build(example).events()
        edit(example / "src" / "main.c", "return 0;", "return 1 - 1;")
        events += build(example).events()
        for event in events:
            validator.validate(event)
        kinds = {e["event"] for e in events}
        assert {"build-started", "action-started", "action-finished", "action-cached", "build-finished"} <= kinds

    def test_build_started_is_the_same_on_every_path(self, example: Path, cache_dir: Path) -> None:
        """The full build, the no-op answer and the incremental rebuild name the same project
        (not its directory), the resolved targets (not the words typed: none here) and the
        cache in use."""
        checkout = example.rename(example.with_name("not-the-project-name"))
        paths = []
        for change in (None, None, ("return 0;", "return 1 - 1;")):
            if change:
                edit(checkout / "src" / "main.c", *change)
            events = build(checkout).events()
            paths.append({e.get("via") for e in events if e["event"] == "action-cached"})
            started = [e for e in events if e["event"] == "build-started"]
            assert len(started) == 1
            assert (started[0]["project"], started[0]["cache_dir"]) == ("hello-c", str(cache_dir))
            assert sorted(started[0]["targets"]) == ["package"]
        assert paths[1] == {"journal"}  # the no-op answer
        assert "journal" in paths[2]  # the incremental path: the actions outside the change

    def test_failure_event_and_exit_code(self, example: Path, cache_dir: Path) -> None:
        """A compile error fails the build with exit 1, names the action and points at the log."""
        edit(example / "src" / "util.c", "int n = 0;", "int n = ;")
        result = ukbuild("build", "-C", example, "--json")
        assert result.code == 1
        failed = [e for e in result.events() if e["event"] == "action-failed"]
        assert [e["action"] for e in failed] == ["compile[util]"]
        assert "exit status" in failed[0]["message"]
        assert "expected expression" in failed[0]["detail"]
        assert Path(failed[0]["log"]).is_file()
        skipped = {e["action"] for e in result.events() if e["event"] == "action-skipped"}
        assert skipped <= {"lib", "link", "package"}


class TestApi:
    def test_two_builds_in_one_process(self, example: Path, tmp_path: Path) -> None:
        """Builds share nothing global: two run at once from two threads."""
        import threading  # noqa: PLC0415

        project = api.load_project(example)
        results = {}

        def run(n: int) -> None:
            options = api.BuildOptions(out_dir=tmp_path / f"out{n}", cache_dir=tmp_path / f"cache{n}")
            results[n] = api.Build(project, [], options).run()

        threads = [threading.Thread(target=run, args=(n,)) for n in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results[0].ok and results[1].ok
        assert results[0].outputs == results[1].outputs

    def test_cancel_stops_running_commands_and_caches_nothing(self, tmp_path: Path) -> None:
        project_dir = tmp_path / "p"
        project_dir.mkdir()
        (project_dir / "ukbuild.toml").write_text(
            '[project]\nname = "slow"\n[action.sleep]\ncommand = ["sh", "-c", "sleep 30; echo done > out.txt"]\noutputs = ["out.txt"]\n'
        )
        project = api.load_project(project_dir)
        build_ = api.Build(project, [], api.BuildOptions(cache_dir=tmp_path / "cache"))
        build_.subscribe(lambda e: e["event"] == "action-started" and build_.cancel())
        start = time.monotonic()
        from ukbuild.errors import Cancelled  # noqa: PLC0415

        with pytest.raises(Cancelled):
            build_.run()
        assert time.monotonic() - start < 10
        assert not any((tmp_path / "cache" / "ac").rglob("*"))
        assert not (project_dir / "out" / "out.txt").exists()


class TestHermeticStep:
    """What running as one step of another build system (Bazel, Make) relies on."""

    def test_no_cache_touches_no_cache_dir(self, example: Path, cache_dir: Path) -> None:
        result = ukbuild("build", "-C", example, "--no-cache", "--json")
        assert result.code == 0, result.err
        assert result.executed() == ALL
        assert not cache_dir.exists()

    def test_state_and_scratch_go_where_told(self, example: Path, cache_dir: Path, tmp_path: Path) -> None:
        state, scratch = tmp_path / "state", tmp_path / "scratch"
        args = ("build", "-C", example, "--state-dir", state, "--scratch-dir", scratch, "--json")
        assert ukbuild(*args).code == 0
        assert not (example / "out" / ".ukbuild").exists()
        assert (state / "noop").is_file() and (state / "journal").is_file()
        assert scratch.is_dir() and not any(p.name.startswith("a-") for p in scratch.iterdir())
        assert ukbuild(*args).cached() == ALL  # the fast path reads the state from there too


class TestClosedOutput:
    """`ukbuild … | head`: when the reader of stdout goes away, ukbuild stops cleanly."""

    def _ukbuild(self, *args: str | os.PathLike[str]) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, "-m", "ukbuild", *map(str, args)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    def test_json_reader_gone_mid_build_cancels_it(self, tmp_path: Path, cache_dir: Path) -> None:
        project = tmp_path / "slow"
        project.mkdir()
        (project / "ukbuild.toml").write_text(
            '[project]\nname = "slow"\n[action.first]\ncommand = ["sh", "-c", "sleep 1; echo 1 > one"]\n'
            'outputs = ["one"]\n[action.second]\ncommand = ["sh", "-c", "cat one > two"]\ndeps = ["first"]\n'
            'outputs = ["two"]\n'
        )
        with self._ukbuild("build", "-C", project, "--json") as proc:
            assert proc.stdout is not None and proc.stderr is not None
            assert '"build-started"' in proc.stdout.readline()
            proc.stdout.close()  # during `sleep 1`: the next event finds no reader
            err = proc.stderr.read()
            assert proc.wait(timeout=60) == 130, err
        assert "Traceback" not in err
        assert "the reader of the JSON events went away" in err
        assert not (project / "out" / "two").exists()
        verify = ukbuild("cache", "verify")
        assert verify.code == 0, verify.out + verify.err
        assert "second" in build(project).executed()
        assert (project / "out" / "two").read_text() == "1\n"

    def test_graph_reader_gone(self, tmp_path: Path, cache_dir: Path) -> None:
        (tmp_path / "ukbuild.toml").write_text('[project]\nname = "wide"\n' + "".join(  # > a pipe's buffer of dot
            f'[action.a{n}]\ncommand = ["sh", "-c", "echo > {n}"]\noutputs = ["{n}"]\n' for n in range(3000)))
        with self._ukbuild("graph", "-C", tmp_path) as proc:
            assert proc.stdout is not None and proc.stderr is not None
            assert proc.stdout.readline().startswith("digraph")
            proc.stdout.close()
            err = proc.stderr.read()
            assert proc.wait(timeout=60) == 141, err
        assert err == ""
