"""Bad input, table-driven: exact exit code, a `file:line: field: message` line, a hint,
no traceback, and the cache left exactly as it was."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.core.helpers import cache_listing, ukbuild, ukbuild_process
from ukbuild._store import Store

GOOD_ACTION = '[action.a]\ncommand = ["sh", "-c", "echo a > a.txt"]\noutputs = ["a.txt"]\n'

CASES = {
    "output-is-everything": (
        '[project]\nname = "p"\n[action.a]\ncommand = ["true"]\noutputs = ["./"]\n',
        2, r"ukbuild\.toml:5: action\.a\.outputs: './' is the whole scratch directory", "build/",
    ),
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
    "foreach-same-stem": (
        '[project]\nname = "p"\n[action.compile]\nforeach = "src/**/*.c"\ncommand = ["cp", "{in}", "obj/{stem}.o"]\n'
        'inputs = ["{in}"]\noutputs = ["obj/{stem}.o"]\n',
        2, r"ukbuild\.toml:4: action\.compile\.foreach: 'src/x/util\.c' and 'src/y/util\.c' would both be action "
        r"'compile\[util\]'", r'rename one of the files, or split .* foreach = "src/x/\*\.c"',
    ),
    "same-output": (
        '[project]\nname = "p"\n' + GOOD_ACTION + '[action.b]\ncommand = ["sh", "-c", "echo b > a.txt"]\noutputs = ["a.txt"]\n',
        2, r"ukbuild\.toml:8: action\.b\.outputs: 'a\.txt' is also an output of action 'a' \(.*ukbuild\.toml:3\)",
        "give each action its own output paths, or make 'b' depend on 'a'",
    ),
    "output-inside-another": (
        '[project]\nname = "p"\n[action.a]\ncommand = ["mkdir", "d"]\noutputs = ["d/"]\n'
        '[action.b]\ncommand = ["sh", "-c", "mkdir d && echo b > d/x"]\noutputs = ["d/x"]\n',
        2, r"ukbuild\.toml:8: action\.b\.outputs: 'd/x' lies inside 'd/', an output of action 'a'",
        "its own output paths",
    ),
    "env-set-by-ukbuild": (
        '[project]\nname = "p"\n[action.a]\ncommand = ["true"]\noutputs = ["a"]\n'
        'env = { TZ = "Europe/Paris", PATH = "/opt/bin:/usr/bin" }\n',
        2, r"ukbuild\.toml:6: action\.a\.env\.PATH: PATH is set by ukbuild for every action and cannot be changed",
        r"\[toolchain\.NAME\] tools",
    ),
    "package-env-set-by-ukbuild": (
        '[project]\nname = "p"\n[package.z]\nsource = { path = "z" }\nsteps = ["true"]\n'
        '[package.z.env]\nHOME = "/home/me"\n',
        2, r"ukbuild\.toml:7: package\.z\.env\.HOME: HOME is set by ukbuild", "its own empty HOME",
    ),
    "native-env-set-by-ukbuild": (
        '[project]\nname = "p"\n[package.z]\nsource = { path = "z" }\nsteps = ["true"]\n'
        'native = { steps = ["true"], env = { TMPDIR = "/var/tmp" } }\n',
        2, r"ukbuild\.toml:6: package\.z\.native\.env\.TMPDIR: TMPDIR is set by ukbuild", "its own empty TMPDIR",
    ),
    "nul-in-command": (
        '[project]\nname = "p"\n[action.a]\ncommand = ["sh", "-c", "echo \\u0000"]\noutputs = ["a"]\n',
        2, r"ukbuild\.toml:4: action\.a\.command: 'echo \\x00' contains a NUL character", "remove the",
    ),
    "nul-in-env-value": (
        '[project]\nname = "p"\n[action.a]\ncommand = ["true"]\noutputs = ["a"]\nenv = { A = "a\\u0000b" }\n',
        2, r"ukbuild\.toml:6: action\.a\.env\.A: 'a\\x00b' contains a NUL character", "cannot hold one",
    ),
    "nul-in-package-step": (
        '[project]\nname = "p"\n[package.z]\nsource = { path = "z" }\nsteps = ["make\\u0000"]\n',
        2, r"ukbuild\.toml:5: package\.z\.steps: 'make\\x00' contains a NUL character", "cannot hold one",
    ),
    "env-name-with-equals": (
        '[project]\nname = "p"\n[action.a]\ncommand = ["true"]\noutputs = ["a"]\nenv = { "A=B" = "c" }\n',
        2, r"ukbuild\.toml:6: action\.a\.env: 'A=B' is not an environment variable name", "no '=' or NUL",
    ),
    "env-name-empty": (
        '[project]\nname = "p"\n[action.a]\ncommand = ["true"]\noutputs = ["a"]\nenv = { "" = "c" }\n',
        2, r"ukbuild\.toml:6: action\.a\.env: '' is not an environment variable name", "not empty",
    ),
    "env-name-with-nul": (
        '[project]\nname = "p"\n[action.a]\ncommand = ["true"]\noutputs = ["a"]\nenv = { "A\\u0000" = "c" }\n',
        2, r"ukbuild\.toml:6: action\.a\.env: 'A\\x00' is not an environment variable name", "no '=' or NUL",
    ),
    "deps-listed-twice": (
        '[project]\nname = "p"\n' + GOOD_ACTION + '[action.b]\ncommand = ["true"]\noutputs = ["b"]\ndeps = ["a", "a"]\n',
        2, r"ukbuild\.toml:9: action\.b\.deps: 'a' is listed twice", r'remove one .*at = "dir"',
    ),
    "deps-group-and-member": (
        '[project]\nname = "p"\n[action.c]\nforeach = "src/*.c"\ncommand = ["cp", "{in}", "{stem}.o"]\n'
        'inputs = ["{in}"]\noutputs = ["{stem}.o"]\n'
        '[action.b]\ncommand = ["true"]\noutputs = ["b"]\ndeps = ["c", "c[m]"]\n',
        2, r"ukbuild\.toml:\d+: b: deps: 'c\[m\]' is listed twice \(as 'c' and as 'c\[m\]'\)",
        "a foreach group's name stands for all of its actions",
    ),
    "deps-not-a-name": (
        '[project]\nname = "p"\n' + GOOD_ACTION + '[action.b]\ncommand = ["true"]\noutputs = ["b"]\ndeps = [1]\n',
        2, r"ukbuild\.toml:9: action\.b\.deps: expected an action name or a table, got an integer",
        r'\{ action = "…", path = "…", at = "…" \}',
    ),
    "deps-path-is-a-file": (
        '[project]\nname = "p"\n' + GOOD_ACTION + '[action.b]\ncommand = ["true"]\noutputs = ["b"]\n'
        'deps = [{ action = "a", path = "a.txt" }]\n',
        2, r"ukbuild\.toml:\d+: b: deps: 'a\.txt' is a file output of 'a'", r'list "a" .*or add at = "NAME"',
    ),
    "deps-path-no-output": (
        '[project]\nname = "p"\n' + GOOD_ACTION + '[action.b]\ncommand = ["true"]\noutputs = ["b"]\n'
        'deps = [{ action = "a", path = "obj", at = "in" }]\n',
        2, r"ukbuild\.toml:\d+: b: deps: 'a' has no output 'obj'", r"its outputs are 'a\.txt'",
    ),
    "not-utf-8": (
        b'[project]\nname = "p"\n# caf\xe9 (Latin-1)\n' + GOOD_ACTION.encode(),
        2, r"ukbuild\.toml:3: not UTF-8: byte 0xe9 at column 6", "save the file as UTF-8",
    ),
    "bom-then-mistake": (  # a byte-order mark is accepted: the mistake after it is reported, at its line
        '\ufeff[project]\nname = "p"\n[action.a]\ncommand = ["true"]\noutputs = [1]\n',
        2, r"ukbuild\.toml:5: action\.a\.outputs: expected a list of strings", r'\["a", "b"\]',
    ),
}

#: Project files besides ukbuild.toml that a case needs (relative path → content).
FILES = {
    "foreach-same-stem": {"src/x/util.c": "int x;\n", "src/y/util.c": "int y;\n"},
    "package-env-set-by-ukbuild": {"z/README": "z\n"},
    "native-env-set-by-ukbuild": {"z/README": "z\n"},
    "nul-in-package-step": {"z/README": "z\n"},
    "deps-group-and-member": {"src/m.c": "int m;\n"},
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_project(case: str, tmp_path: Path) -> None:
    text, code, message, hint = CASES[case]
    project = tmp_path / "p"
    project.mkdir()
    if isinstance(text, bytes):
        (project / "ukbuild.toml").write_bytes(text)
    else:
        (project / "ukbuild.toml").write_text(text)
    for rel, content in FILES.get(case, {}).items():
        (project / rel).parent.mkdir(parents=True, exist_ok=True)
        (project / rel).write_text(content)
    cache = tmp_path / "cache"
    Store(cache)  # an existing, initialised cache
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


def test_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    """A UTF-8 byte-order mark (as some Windows editors save) before the first table."""
    project = tmp_path / "p"
    project.mkdir()
    (project / "ukbuild.toml").write_bytes(b"\xef\xbb\xbf" + ('[project]\nname = "p"\n' + GOOD_ACTION).encode())
    result = ukbuild("build", "-C", project, "--cache-dir", tmp_path / "c")
    assert result.code == 0, result.err
    assert (project / "out" / "a.txt").read_text() == "a\n"


@pytest.mark.parametrize("command", ["build", "graph"])
def test_project_file_given_as_the_directory(command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "ukbuild.toml").write_text('[project]\nname = "p"\n' + GOOD_ACTION)
    monkeypatch.chdir(tmp_path)
    result = ukbuild(command, "-C", "ukbuild.toml", "--cache-dir", tmp_path / "c")
    assert result.code == 2
    assert "error: ukbuild.toml: is a file, not a project directory" in result.err
    assert "hint: -C takes the project's directory; to name the project file, use -f ukbuild.toml" in result.err


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
