"""The plain ``build`` argument parser of the no-op path agrees with argparse, or declines; ``run``'s
guest arguments."""

from __future__ import annotations

import contextlib
import io
import random

import pytest

from ukbuild import cli

WORDS = ["-C", "d", "-Cd", "-o", "o", "--out-dir", "--out-dir=x", "-j", "2", "-j2", "--jobs=3", "-k",
         "--keep-going", "--json", "a", "b.toml", "-", "--", "-x", "--jso", "--out", "-j=2", "--cache-dir", "c",
         "--state-dir=s", "-f", "f.toml", "", "--jobs=", "-kj2", "-o=x", "-C-x", "-jx", "--json=1", "-h",
         "--no-cache", "--override", "p=d", "--debug", "-j", "٣"]


def argparse_args(argv: list[str]) -> dict[str, object] | None:
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        try:
            return vars(cli._parse(argv))
        except SystemExit:
            return None


@pytest.mark.parametrize("argv", [
    ["build"],
    ["build", "-C", "proj", "-o", "out", "-j", "2"],
    ["build", "-Cproj", "--out-dir=out", "--jobs=4", "--json", "-k", "app", "lib"],
    ["build", "app", "lib", "--cache-dir", "c", "--state-dir", "s", "-f", "x.toml"],
])
def test_common_lines_parse_as_argparse_does(argv: list[str]) -> None:
    fast = cli._build_args(argv)
    assert fast is not None
    assert vars(fast) == argparse_args(argv)


@pytest.mark.parametrize("argv", [
    ["build", "a", "-j2", "b"],  # argparse refuses targets on both sides of an option
    ["build", "--out", "o"],  # an abbreviation
    ["build", "-o=x"],  # argparse reads "x"
    ["build", "-j", "-1"],
    ["build", "-h"],
    ["--debug", "build"],
    ["graph"],
])
def test_other_lines_go_to_argparse(argv: list[str]) -> None:
    assert cli._build_args(argv) is None


def test_random_lines_agree_with_argparse_whenever_taken() -> None:
    rng = random.Random(2026)
    taken = 0
    for _ in range(3000):
        argv = ["build", *(rng.choice(WORDS) for _ in range(rng.randint(0, 6)))]
        fast = cli._build_args(argv)
        if fast is not None:
            taken += 1
            assert vars(fast) == argparse_args(argv), argv
    assert taken > 300


@pytest.mark.parametrize(("argv", "drives", "guest"), [
    (["run", "hello"], [], []),
    (["run", "hello", "--drive", "x.img"], ["x.img"], []),  # an option after UNIKERNEL is ukbuild's
    (["run", "--drive", "x.img", "hello", "--", "a", "--drive", "y"], ["x.img"], ["a", "--drive", "y"]),
    (["--debug", "run", "hello", "--", "--", "b"], [], ["--", "b"]),
])
def test_run_takes_its_options_anywhere_and_the_guests_after_dashes(
    argv: list[str], drives: list[str], guest: list[str]
) -> None:
    args = cli._parse(argv)
    assert (args.target, args.drive, args.args) == ("hello", drives, guest)


def test_run_without_dashes_says_where_guest_arguments_go() -> None:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as exc:
        cli._parse(["run", "hello", "a", "b"])
    assert exc.value.code == 2
    assert "ukbuild run hello -- a b" in err.getvalue()
