"""Bad input, table-driven: exact exit code, a `file:line: field: message` line, a hint,
no traceback, and the cache left exactly as it was."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.core.helpers import cache_listing, ukbuild, ukbuild_process

GOOD_ACTION = '[action.a]\ncommand = ["sh", "-c", "echo a > a.txt"]\noutputs = ["a.txt"]\n'

CASES = {
    "malformed-toml": (
        '[project]\nname = "p"\n[action.a\ncommand = []\n',
        2, r"ukbuild\.toml:3: TOML syntax: ", "fix the syntax",
    ),
    "unknown-field": (
        '[project]\nname = "p"\n[action.a]\ncommand = ["true"]\noutputs = ["x"]\ncomand = ["x"]\n',
        2, r"ukbuild\.toml:6: action\.a\.comand: unknown field", "did you mean 'command'",
    ),
    "missing-dependency": (
        '[project]\nname = "p"\n' + GOOD_ACTION + '[action.b]\ncommand = ["true"]\noutputs = ["b"]\ndeps = ["nope"]\n',
        2, r"ukbuild\.toml:\d+: b: deps: no action or package named 'nope'", "known: a, b",
    ),
    "cycle": (
        '[project]\nname = "p"\n[action.a]\ncommand = ["true"]\noutputs = ["a"]\ndeps = ["b"]\n'
        '[action.b]\ncommand = ["true"]\noutputs = ["b"]\ndeps = ["a"]\n',
        2, r"ukbuild\.toml:\d+: [ab]: dependency cycle: (a -> b -> a|b -> a -> b)", "remove one",
    ),
    "bad-sha256": (
        '[project]\nname = "p"\n[package.z]\nsource = { url = "https://example.invalid/z.tar.gz", sha256 = "abc" }\n'
        'steps = ["make"]\n',
        2, r"ukbuild\.toml:4: package\.z\.source\.sha256: 'abc' is not a sha256", "sha256sum",
    ),
    "missing-tool": (
        '[project]\nname = "p"\n[toolchain.host]\ntools = ["sh", "no-such-compiler-xyz"]\n' + GOOD_ACTION,
        2, r"ukbuild\.toml:4: toolchain\.host\.tools: tool 'no-such-compiler-xyz' not found in ", "install it",
    ),
    "wrong-type": (
        '[project]\nname = "p"\n[action.a]\ncommand = "make all"\noutputs = ["a"]\n',
        2, r"ukbuild\.toml:4: action\.a\.command: expected a list of strings, got a string", r'\["a", "b"\]',
    ),
    "path-escape": (
        '[project]\nname = "p"\n[action.a]\ncommand = ["true"]\noutputs = ["../a"]\n',
        2, r"ukbuild\.toml:5: action\.a\.outputs: '\.\./a' must be a relative path inside the project", "may not contain",
    ),
    "missing-name": (
        '[action.a]\ncommand = ["true"]\noutputs = ["a"]\n',
        2, r"ukbuild\.toml: project: missing required field 'name'", "add name",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_project(case: str, tmp_path: Path) -> None:
    text, code, message, hint = CASES[case]
    project = tmp_path / "p"
    project.mkdir()
    (project / "ukbuild.toml").write_text(text)
    cache = tmp_path / "cache"
    ukbuild_process("cache", "--cache-dir", cache, "stats")  # an existing, initialised cache
    before = cache_listing(cache)
    result = ukbuild_process("build", "-C", project, "--cache-dir", cache)
    assert result.code == code, result.err
    assert "Traceback" not in result.err + result.out
    first = result.err.splitlines()[0]
    assert first.startswith("error: " + str(project / "ukbuild.toml"))
    assert re.search(message, first), first
    assert re.search(hint, result.err), result.err
    assert cache_listing(cache) == before
    assert not (project / "out").exists()


def test_unknown_target(tmp_path: Path) -> None:
    project = tmp_path / "p"
    project.mkdir()
    (project / "ukbuild.toml").write_text('[project]\nname = "p"\n' + GOOD_ACTION)
    result = ukbuild("build", "-C", project, "--cache-dir", tmp_path / "c", "b")
    assert result.code == 2
    assert "no target named 'b'" in result.err


def test_no_project_file(tmp_path: Path) -> None:
    result = ukbuild("build", "-C", tmp_path)
    assert result.code == 2
    assert "no project file" in result.err and "hint:" in result.err


@pytest.mark.parametrize("where", ["input", "output", "file-output"])
def test_special_file_is_a_clear_failure(where: str, tmp_path: Path) -> None:
    """A named pipe among an action's inputs, in a declared output directory or as a declared
    output file (which was opened to be stored and hung the build): exit 1, the path as the
    user knows it, a hint, no traceback, nothing cached."""
    project = tmp_path / "p"
    (project / "in").mkdir(parents=True)
    if where == "input":
        os.mkfifo(project / "in" / "pipe")
    command, outputs = {
        "input": ('["sh", "-c", "mkdir d"]', '["d/"]'),
        "output": ('["sh", "-c", "mkdir -p d && mkfifo d/pipe"]', '["d/"]'),
        "file-output": ('["sh", "-c", "mkfifo pipe"]', '["pipe"]'),
    }[where]
    (project / "ukbuild.toml").write_text(
        '[project]\nname = "p"\n[toolchain.host]\ntools = ["sh", "mkdir", "mkfifo"]\n'
        f'[action.a]\ncommand = {command}\ninputs = ["in/"]\noutputs = {outputs}\n')
    cache = tmp_path / "cache"
    result = ukbuild_process("build", "-C", project, "--cache-dir", cache, timeout=30)
    assert result.code == 1, result.err
    assert "Traceback" not in result.err + result.out
    named = {"input": str(project / "in" / "pipe"), "output": "a: output d/pipe", "file-output": "a: output pipe"}[where]
    assert f"{named}: a named pipe; ukbuild stores only regular files, symlinks and directories" in result.err
    hint = "hint: have the command write a regular file" if where == "file-output" else "hint: remove it"
    assert hint in result.err
    assert not list((cache / "ac").rglob("*/*"))


def test_program_that_cannot_run_is_a_clear_failure(tmp_path: Path) -> None:
    """A script without its executable bit: exit 1, what to do about it, no traceback."""
    project = tmp_path / "p"
    project.mkdir()
    (project / "gen.sh").write_text("echo hi > o\n")
    (project / "ukbuild.toml").write_text(
        '[project]\nname = "p"\n[action.a]\ncommand = ["./gen.sh"]\ninputs = ["gen.sh"]\noutputs = ["o"]\n')
    result = ukbuild_process("build", "-C", project, "--cache-dir", tmp_path / "cache")
    assert result.code == 1, result.err
    assert "Traceback" not in result.err + result.out
    assert "a: cannot run './gen.sh': Permission denied" in result.err
    assert 'command = ["sh", "./gen.sh"]' in result.err
