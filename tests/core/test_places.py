"""Directories, files and signals from the command line: a clear error or a clean stop, never a
traceback, and never a project file lost to an output directory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.core.helpers import ukbuild, ukbuild_process

PROJECT = '[project]\nname = "p"\n[action.gen]\ncommand = ["sh", "-c", "mkdir -p src && echo g > src/gen.c"]\noutputs = ["src/"]\n'


@pytest.fixture
def project(tmp_path: Path, cache_dir: Path) -> Path:
    root = tmp_path / "p"
    (root / "src").mkdir(parents=True)
    (root / "ukbuild.toml").write_text(PROJECT)
    (root / "src" / "main.c").write_text("handwritten\n")
    (root / "notes.txt").write_text("my notes\n")
    return root


def files_of(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(("args", "message"), [
    (["-o", "."], "holds the project"),
    (["-o", ".."], "holds the project"),
    (["-o", "notes.txt"], "notes.txt is a file, not a directory"),
    (["-o", "notes.txt/sub"], "notes.txt is a file, not a directory"),
    (["--state-dir", "notes.txt"], "--state-dir"),
    (["--scratch-dir", "notes.txt"], "--scratch-dir"),
    (["-o", "/proc/ukbuild-test"], "cannot create output directory /proc/ukbuild-test"),
    (["--scratch-dir", "/proc/ukbuild-test"], "cannot create scratch directory"),
    (["--depfile", "."], "--depfile .: is a directory"),
    (["--depfile", "/proc/ukbuild-test.d"], "--depfile /proc/ukbuild-test.d: cannot write it"),
])
def test_unusable_places_are_refused_and_nothing_is_lost(
    project: Path, args: list[str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project)
    before = files_of(project.parent)
    result = ukbuild("build", "-C", project, *args)
    assert result.code == 2, result.out + result.err
    assert message in result.err
    assert "Traceback" not in result.err
    after = files_of(project.parent)
    assert {k: v for k, v in after.items() if k in before} == before  # every file as it was
    assert not any(name.endswith(".tmp") for name in after)


def test_an_override_tree_holding_the_outputs_is_refused(tmp_path: Path, cache_dir: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "ukbuild.toml").write_text(
        '[project]\nname = "p"\n[package.lib]\nsource = { path = "src" }\nsteps = ["true"]\n'
    )
    result = ukbuild("build", "-C", tmp_path, "--override", f"lib={tmp_path}")
    assert result.code == 2, result.err
    assert "the output directory" in result.err and "inside it" in result.err


@pytest.mark.parametrize("jobs", ["0", "-1", "abc", "--jobs=-3"])
def test_jobs_must_be_a_positive_number(project: Path, jobs: str, capsys: pytest.CaptureFixture[str]) -> None:
    args = [jobs] if jobs.startswith("--") else ["-j", jobs]
    assert ukbuild("build", "-C", project, *args).code == 2
    assert "1 or more" in capsys.readouterr().err  # (argparse writes to sys.stderr)


def test_a_bad_quota_is_named(project: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert ukbuild("build", "-C", project).code == 0
    monkeypatch.setenv("UKBUILD_CACHE_QUOTA", "bogus")
    result = ukbuild("cache", "gc")
    assert result.code == 2
    assert "UKBUILD_CACHE_QUOTA: not a size: 'bogus'" in result.err


def test_cache_commands_on_a_file_or_nothing(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    for command in ("stats", "verify", "gc"):
        on_file = ukbuild("cache", "--cache-dir", tmp_path / "file", command)
        assert on_file.code == 2 and "is a file, not a directory" in on_file.err
        missing = ukbuild("cache", "--cache-dir", tmp_path / "none", command)
        assert missing.code == 0 and "no cache there yet" in missing.out
    assert not (tmp_path / "none").exists()


def test_gc_says_why_entries_stay(project: Path, cache_dir: Path) -> None:
    assert ukbuild("build", "-C", project).code == 0
    result = ukbuild("cache", "gc", "--max-size", "0")
    assert result.code == 0
    assert "entries used in the last 15 minutes are kept" in result.out


class TestSymlinkedInputs:
    """An input is keyed by what it stages: a symlink named as an input is what it points to;
    a symlink inside an input directory must stay inside it."""

    def test_a_named_symlink_is_followed_and_its_target_tracked(self, tmp_path: Path, cache_dir: Path) -> None:
        target = tmp_path / "elsewhere"
        target.write_text("v1\n")
        root = tmp_path / "p"
        root.mkdir()
        (root / "flink").symlink_to(target)
        (root / "ukbuild.toml").write_text(
            '[project]\nname = "p"\n[action.b]\ncommand = ["sh", "-c", "test ! -L flink && cat flink > y"]\n'
            'inputs = ["flink"]\noutputs = ["y"]\n'
        )
        for text in ("v1\n", "v2\n", "v3\n"):
            target.write_text(text)
            os.utime(target, (time.time() - 10, time.time() - 10 + len(text)))  # (a new stat each time)
            result = ukbuild("build", "-C", root)
            assert result.code == 0, result.err
            assert (root / "out" / "y").read_text() == text

    @pytest.mark.parametrize("link", ["/etc/hostname", "../../outside", "sub/../../outside"])
    def test_a_link_leaving_an_input_directory_is_refused(self, tmp_path: Path, cache_dir: Path, link: str) -> None:
        (tmp_path / "cfg" / "sub").mkdir(parents=True)
        (tmp_path / "cfg" / "s").symlink_to(link)
        (tmp_path / "ukbuild.toml").write_text(
            '[project]\nname = "p"\n[action.a]\ncommand = ["sh", "-c", "cat cfg/s > x"]\ninputs = ["cfg/"]\n'
            'outputs = ["x"]\n'
        )
        result = ukbuild("build", "-C", tmp_path)
        assert result.code == 1
        assert f"a symbolic link to {link}, outside" in result.err
        assert "ukbuild.toml:3" in result.err

    def test_a_link_inside_an_input_directory_is_kept(self, tmp_path: Path, cache_dir: Path) -> None:
        (tmp_path / "cfg").mkdir()
        (tmp_path / "cfg" / "t").write_text("in\n")
        (tmp_path / "cfg" / "s").symlink_to("t")
        (tmp_path / "ukbuild.toml").write_text(
            '[project]\nname = "p"\n[action.a]\ncommand = ["sh", "-c", "test -L cfg/s && cat cfg/s > x"]\n'
            'inputs = ["cfg/"]\noutputs = ["x"]\n'
        )
        result = ukbuild("build", "-C", tmp_path)
        assert result.code == 0, result.err
        assert (tmp_path / "out" / "x").read_text() == "in\n"


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_sigterm_stops_the_build_as_ctrl_c_does(tmp_path: Path, cache_dir: Path, signum: int, code: int) -> None:
    """`timeout`, make, CI runners and `docker stop` send SIGTERM: the command is killed, no
    scratch dir is left, nothing is cached."""
    (tmp_path / "ukbuild.toml").write_text(
        '[project]\nname = "p"\n[action.s]\ncommand = ["sh", "-c", "echo $$ > ../pid; sleep 60; echo > x"]\n'
        'outputs = ["x"]\n'
    )
    scratch = tmp_path / "scratch"
    with subprocess.Popen([sys.executable, "-m", "ukbuild", "build", "-C", str(tmp_path), "--scratch-dir", str(scratch)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        pid_file = None
        for _ in range(300):
            pid_file = next(scratch.glob("*/pid"), None)
            if pid_file is not None and pid_file.read_text().strip():
                break
            time.sleep(0.05)
        assert pid_file is not None, "the action never started"
        command = int(pid_file.read_text())
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == code, err
    assert "error: terminated" in err and "Traceback" not in err
    with pytest.raises(ProcessLookupError):
        os.kill(command, 0)
    assert list(scratch.iterdir()) == []
    assert not any((cache_dir / "ac").rglob("*"))


def test_an_undeclared_compiler_is_named(tmp_path: Path, cache_dir: Path) -> None:
    """Its version would not be keyed and its outputs would embed the scratch path."""
    (tmp_path / "a.c").write_text("int x;\n")
    (tmp_path / "ukbuild.toml").write_text(
        '[project]\nname = "p"\n[toolchain.host]\ntools = ["sh"]\n'
        + "".join(f'[action.{n}]\ncommand = ["cc", "-g", "-c", "a.c", "-o", "{n}.o"]\ninputs = ["a.c"]\n'
                  f'outputs = ["{n}.o"]\n' for n in ("a", "b"))
    )
    result = ukbuild("build", "-C", tmp_path, "--json")
    assert result.code == 0, result.err
    warnings = [e["message"] for e in result.events() if e["event"] == "warning"]
    assert len(warnings) == 1  # once per compiler, not per action
    assert "runs the compiler 'cc', which toolchain 'host' does not list" in warnings[0]


def test_special_files_are_refused_not_waited_on(tmp_path: Path, cache_dir: Path) -> None:
    """A named pipe given as an input, or a socket an action leaves as an output, is an error
    naming it; the build neither hangs nor stops caching the other actions."""
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "ukbuild.toml").write_text(
        '[project]\nname = "p"\n[action.reads]\ncommand = ["sh", "-c", "echo > y"]\ninputs = ["fifo"]\noutputs = ["y"]\n'
        '[action.sock]\ncommand = ["python3", "-c", "import socket; socket.socket(socket.AF_UNIX).bind(\'x\')"]\n'
        'outputs = ["x"]\n[toolchain.host]\ntools = ["sh", "python3"]\n'
        '[action.fine]\ncommand = ["sh", "-c", "echo > z"]\noutputs = ["z"]\n'
    )
    result = ukbuild_process("build", "-C", tmp_path, "-k", "-j1", timeout=60)
    assert result.code == 1, result.err
    assert "input " + str(tmp_path / "fifo") + ": not a regular file or directory" in result.err
    assert "sock: output x: a socket" in result.err
    assert "Traceback" not in result.err
    assert len(list((cache_dir / "ac").rglob("*"))) >= 1  # `fine` was cached
