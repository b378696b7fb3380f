"""Each action sees only its inputs and an explicit environment; failures are never cached."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.core.helpers import ukbuild
from ukbuild._executor import ended, file_name
from ukbuild._reapi import ActionResult
from ukbuild._store import Store


def write_project(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "p"
    p.mkdir(exist_ok=True)
    (p / "ukbuild.toml").write_text('[project]\nname = "p"\n[toolchain.host]\ntools = ["sh", "ar"]\n' + body)
    return p


def test_environment_is_explicit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEAKY_SECRET", "1")
    monkeypatch.setenv("CFLAGS", "-from-the-caller")
    p = write_project(tmp_path, '[action.env]\ncommand = ["sh", "-c", "env | sort > env.txt"]\noutputs = ["env.txt"]\nenv = { CFLAGS = "-O2" }\n')
    assert ukbuild("build", "-C", p, "--cache-dir", tmp_path / "c").code == 0
    env = dict(line.split("=", 1) for line in (p / "out" / "env.txt").read_text().splitlines() if "=" in line)
    assert "LEAKY_SECRET" not in env
    assert env["CFLAGS"] == "-O2"
    assert (env["LC_ALL"], env["TZ"], env["SOURCE_DATE_EPOCH"]) == ("C", "UTC", "0")
    assert ".pyenv" not in env["PATH"] and str(Path.home()) != env["HOME"]


def test_only_declared_inputs_are_staged(tmp_path: Path) -> None:
    p = write_project(tmp_path, '[action.ls]\ncommand = ["sh", "-c", "find . | sort > ../listing.txt; mv ../listing.txt ."]\n'
                      'inputs = ["a.txt"]\noutputs = ["listing.txt"]\n')
    (p / "a.txt").write_text("a")
    (p / "b.txt").write_text("b")
    assert ukbuild("build", "-C", p, "--cache-dir", tmp_path / "c").code == 0
    assert (p / "out" / "listing.txt").read_text().split() == [".", "./a.txt"]


def test_rewriting_a_staged_input_does_not_touch_the_store(tmp_path: Path) -> None:
    """Like ranlib on a staged archive: the dependant changes its copy, never the stored blob."""
    p = write_project(tmp_path,
        '[action.make]\ncommand = ["sh", "-c", "echo original > lib.txt"]\noutputs = ["lib.txt"]\n'
        '[action.mutate]\ncommand = ["sh", "-c", "echo changed > lib.txt; cp lib.txt seen.txt"]\n'
        'deps = ["make"]\noutputs = ["seen.txt"]\n')
    assert ukbuild("build", "-C", p, "--cache-dir", tmp_path / "c", "make", "mutate").code == 0
    assert (p / "out" / "lib.txt").read_text() == "original\n"
    assert (p / "out" / "seen.txt").read_text() == "changed\n"
    assert Store(tmp_path / "c").verify() == []


def test_missing_output_is_an_error_and_not_cached(tmp_path: Path) -> None:
    p = write_project(tmp_path, '[action.lazy]\ncommand = ["sh", "-c", "echo working; echo nothing > other.txt"]\noutputs = ["wanted.txt"]\n')
    result = ukbuild("build", "-C", p, "--cache-dir", tmp_path / "c")
    assert result.code == 1
    assert "lazy: declared output 'wanted.txt' was not produced" in result.err
    assert "working" in result.err  # the log's tail
    assert not list((tmp_path / "c" / "ac").rglob("*/*"))
    again = ukbuild("build", "-C", p, "--cache-dir", tmp_path / "c", "--json")
    assert again.code == 1
    assert [e["action"] for e in again.events() if e["event"] == "action-started"] == ["lazy"]


def test_keep_going_runs_independent_actions(tmp_path: Path) -> None:
    p = write_project(tmp_path,
        '[action.bad]\ncommand = ["sh", "-c", "exit 3"]\noutputs = ["x"]\n'
        '[action.after]\ncommand = ["sh", "-c", "cp x y"]\ndeps = ["bad"]\noutputs = ["y"]\n'
        '[action.good]\ncommand = ["sh", "-c", "echo ok > g"]\noutputs = ["g"]\n')
    result = ukbuild("build", "-C", p, "--cache-dir", tmp_path / "c", "-k", "-j", "1", "--json")
    assert result.code == 1
    kinds = {e["action"]: e["event"] for e in result.events() if "action" in e and e["event"] != "action-started"}
    assert kinds == {"bad": "action-failed", "after": "action-skipped", "good": "action-finished"}
    assert "exit status 3" in [e for e in result.events() if e["event"] == "action-failed"][0]["message"]


def test_unknown_program_names_the_fix(tmp_path: Path) -> None:
    p = write_project(tmp_path, '[action.x]\ncommand = ["no-such-program-here"]\noutputs = ["x"]\n')
    result = ukbuild("build", "-C", p, "--cache-dir", tmp_path / "c")
    assert result.code == 1
    assert "program 'no-such-program-here' not found on the toolchain's PATH" in result.err


def test_large_staged_outputs_keep_bytes_modes_and_conflicts(tmp_path: Path) -> None:
    """Large dependency outputs are decompressed on threads after their paths are claimed:
    bytes and executable bits are as produced, and two inputs at one path still conflict."""
    p = write_project(tmp_path,
        '[action.big]\ncommand = ["sh", "-c", "mkdir d; for i in 1 2 3 4 5 6; do head -c 300000 /dev/urandom > d/b$i; done;'
        ' printf \'#!/bin/sh\\\\necho run\\\\n\' > d/tool; head -c 200000 /dev/zero >> d/tool; chmod +x d/tool"]\n'
        'outputs = ["d/"]\n'
        '[action.use]\ncommand = ["sh", "-c", "sh -c \'./d/tool\' > ran.txt 2>/dev/null || true; test -x d/tool && cat d/b* > all"]\n'
        'deps = ["big"]\noutputs = ["all", "ran.txt"]\n'
        '[action.clash]\ncommand = ["sh", "-c", "echo > x"]\n'
        'deps = [{ action = "big", path = "d", at = "d" }, "big"]\noutputs = ["x"]\n')
    assert ukbuild("build", "-C", p, "--cache-dir", tmp_path / "c", "big", "use").code == 0
    out = p / "out"
    assert (out / "all").read_bytes() == b"".join((out / "d" / f"b{i}").read_bytes() for i in range(1, 7))
    result = ukbuild("build", "-C", p, "--cache-dir", tmp_path / "c", "clash")
    assert result.code == 1
    assert "staged at the same path" in result.err


def test_long_action_and_toolchain_names_get_short_file_names(tmp_path: Path) -> None:
    """An action or toolchain name of 300 characters (NAME_MAX is 255 bytes): the log and the
    wrapper dir get a readable prefix and a hash; the log path printed is the real one."""
    long, tools = "L" * 300, "T" * 300
    cc = '"cc", ' if shutil.which("cc") else ""  # cc: the toolchain gets a wrapper dir
    p = tmp_path / "p"
    p.mkdir()
    (p / "ukbuild.toml").write_text(
        f'[project]\nname = "p"\n[toolchain.{tools}]\ntools = [{cc}"sh"]\n'
        f'[action.{long}]\ncommand = ["sh", "-c", "echo the log; exit 1"]\noutputs = ["x"]\ntoolchain = "{tools}"\n'
        f'[action.{long}x]\ncommand = ["sh", "-c", "echo other; exit 1"]\noutputs = ["y"]\ntoolchain = "{tools}"\n')
    result = ukbuild("build", "-C", p, "--cache-dir", tmp_path / "c", "-k", "--json")
    assert result.code == 1
    failed = [e for e in result.events() if e["event"] == "action-failed"]
    assert [e["reason"] for e in failed] == ["action-failed", "action-failed"]
    logs = [Path(e["log"]) for e in failed]
    assert logs[0] != logs[1]
    for event, log in zip(failed, logs):
        assert len(os.fsencode(log.name)) <= 255 and log.name.startswith("L" * 200) and log.suffix == ".log"
        assert log.read_text() in ("the log\n", "other\n")
        assert event["hint"] == f"full log: {log}"
    plain = ukbuild("build", "-C", p, "--cache-dir", tmp_path / "c", long)
    assert f"full log: {logs[0]}\n" in plain.err or f"full log: {logs[1]}\n" in plain.err


def test_file_name_keeps_a_prefix_and_hashes_the_whole_name() -> None:
    assert file_name("compile[main.c]", ".log") == "compile_main.c_.log"
    for name in ("a" * 300, "é" * 200, "x/" * 200):
        short = file_name(name, ".log")
        assert len(short.encode()) <= 255 and short.endswith(".log"), short
        assert short[:10] == file_name(name[:10])
        assert short != file_name(name + "!", ".log")


def test_failed_actions_log_tail_is_capped_and_escaped(tmp_path: Path) -> None:
    """A failing action's 3 MB line and raw control bytes: the tail in the error and the event is
    at most ~8 KiB, its end, saying what was cut, with control characters escaped; the log is whole."""
    p = write_project(tmp_path,
        '[action.long]\ncommand = ["sh", "-c", "head -c 3000000 /dev/zero | tr \'\\\\0\' a; echo END; exit 1"]\n'
        'outputs = ["x"]\n'
        '[action.raw]\ncommand = ["sh", "-c", "printf \'\\\\033[31mred\\\\007\\\\r\\\\n\\\\001tab\\\\there\\\\n\'; exit 1"]\n'
        'outputs = ["y"]\n')
    result = ukbuild("build", "-C", p, "--cache-dir", tmp_path / "c", "-k", "--json")
    assert result.code == 1
    failed = {e["action"]: e for e in result.events() if e["event"] == "action-failed"}
    long, raw = failed["long"]["detail"], failed["raw"]["detail"]
    assert long.startswith("… (2991811 bytes cut) aaaa") and long.endswith("aaaaEND")
    assert len(long.encode()) < 8300
    assert Path(failed["long"]["log"]).stat().st_size == 3_000_004
    assert raw == "\\x1b[31mred\\x07\\r\n\\x01tab\there"
    plain = ukbuild("build", "-C", p, "--cache-dir", tmp_path / "c", "-k")
    assert len(plain.err) < 20_000
    assert "  | \\x1b[31mred\\x07\\r\n  | \\x01tab\there\n" in plain.err
    assert not set(plain.err) & (set(map(chr, range(32))) - {"\n", "\t"})


def test_command_killed_by_a_signal_says_which(tmp_path: Path) -> None:
    """Not "exit status -9": the signal's name, in the error and in the action-failed event."""
    p = write_project(tmp_path, '[action.k]\ncommand = ["sh", "-c", "echo dying; kill -9 $$"]\noutputs = ["x"]\n')
    result = ukbuild("build", "-C", p, "--cache-dir", tmp_path / "c", "--json")
    assert result.code == 1
    failed = [e for e in result.events() if e["event"] == "action-failed"]
    assert [(e["message"], e["reason"], e["detail"]) for e in failed] == [("k: command killed by SIGKILL", "action-failed", "dying")]
    assert "k: command killed by SIGKILL\n" in ukbuild("build", "-C", p, "--cache-dir", tmp_path / "c").err
    assert ended(3) == "failed with exit status 3" and ended(-15) == "killed by SIGTERM"
    assert ended(-200) == "killed by signal 200"


def test_negative_exit_code_survives_the_wire() -> None:
    """A worker reports a command killed by SIGKILL as exit code -9 (int32): it decodes as -9,
    not as the 64-bit two's complement."""
    for code in (-9, -(2**31), 3, 2**31 - 1):
        assert ActionResult.decode(ActionResult((), (), (), code, None, None).encode()).exit_code == code
