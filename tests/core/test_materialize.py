"""Placing the outputs of several targets at once, in their order where they overlap."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from tests.core.helpers import ukbuild

PROJECT = """\
[project]
name = "placing"

[action.a]
command = ["sh", "-c", "printf a > same.txt && mkdir -p d && printf a > d/kept"]
outputs = ["same.txt", "d/"]

[action.b]
command = ["sh", "-c", "printf b > same.txt && mkdir -p d && printf b > d/extra"]
deps = ["a"]  # (two actions may write one path only when one builds on the other)
outputs = ["same.txt", "d/extra"]
"""


@pytest.mark.parametrize(("order", "same", "listing"), [
    (["a", "b"], "b", ["extra", "kept"]),  # b adds d/extra beside a's directory
    (["b", "a"], "a", ["kept"]),  # a's directory output replaces d/ whole, d/extra with it
])
def test_overlapping_targets_are_placed_in_order(tmp_path: Path, order: list[str], same: str,
                                                 listing: list[str]) -> None:
    (tmp_path / "ukbuild.toml").write_text(PROJECT)
    args = ("build", "-C", tmp_path, "--cache-dir", tmp_path / "cache", "-j", "2", *order)
    for run in ("built", "restored"):
        assert ukbuild(*args).code == 0, run
        assert (tmp_path / "out" / "same.txt").read_text() == same, run
        assert sorted(p.name for p in (tmp_path / "out" / "d").iterdir()) == listing, run
        for path in (tmp_path / "out").rglob("*"):
            assert not path.name.endswith(".ukbuild-tmp"), path
        (tmp_path / "out" / "same.txt").unlink()


@pytest.mark.parametrize("second", [
    '[action.b]\ncommand = ["sh", "-c", "cat d/x > d/x.checked"]\ndeps = ["a"]\noutputs = ["d/x", "d/x.checked"]\n',
    '[action.b]\ncommand = ["sh", "-c", "mkdir -p d && echo a > d/x"]\noutputs = ["d/"]\n',
    '[action.b]\ncommand = ["true"]\ndeps = ["a"]\noutputs = ["d/"]\n[action.c]\ncommand = ["true"]\n'
    'deps = ["b"]\noutputs = ["d/x"]\n',
])
def test_outputs_may_overlap_along_a_dependency_or_between_twins(tmp_path: Path, second: str) -> None:
    """A dependant passing on (a verify step) or adding to what it staged, directly or not, and
    the same step declared twice (same key, same bytes) may declare the same output paths."""
    from ukbuild._project import load_project  # noqa: PLC0415

    (tmp_path / "ukbuild.toml").write_text('[project]\nname = "p"\n[action.a]\n'
                                           'command = ["sh", "-c", "mkdir -p d && echo a > d/x"]\noutputs = ["d/"]\n'
                                           + second)
    assert "b" in load_project(tmp_path).actions


@pytest.mark.parametrize(("claimed", "path", "overlaps"), [
    ("d", "d", True),
    ("d", "d/x/y", True),  # below a claimed directory
    ("d/x/y", "d", True),  # holds a claimed path
    ("d/x", "d/y", False),  # siblings
    ("d", "dx", False),  # a common prefix is not a common directory
    ("dx/y", "d", False),
])
def test_claims_find_every_overlap(claimed: str, path: str, overlaps: bool) -> None:
    from ukbuild._materialize import _Claims  # noqa: PLC0415

    claims = _Claims()
    claims.add(claimed)
    assert claims.overlaps(path) is overlaps


def test_many_targets_restore_exactly(tmp_path: Path) -> None:
    """Large and small files of six targets, placed on one pool: every byte where it belongs."""
    lines = ['[project]\nname = "many"\n']
    for t in range(6):
        lines.append(
            f'[action.t{t}]\ncommand = ["sh", "-c", "mkdir -p o{t} && '
            f"for i in 1 2 3 4 5 6 7 8; do head -c $((i * 30000 + {t})) /dev/urandom > o{t}/f$i; done\"]\n"
            f'outputs = ["o{t}/"]\n'
        )
    (tmp_path / "ukbuild.toml").write_text("\n".join(lines))
    args = ("build", "-C", tmp_path, "--cache-dir", tmp_path / "cache", "-j", "2")
    assert ukbuild(*args).code == 0
    built = {p.relative_to(tmp_path / "out"): hashlib.sha256(p.read_bytes()).hexdigest()
             for p in (tmp_path / "out").rglob("f*")}
    assert len(built) == 48
    for path in (tmp_path / "out").glob("o*"):
        for f in path.iterdir():
            f.unlink()
    result = ukbuild(*args, "--json")
    assert result.code == 0 and result.executed() == []
    assert {p.relative_to(tmp_path / "out"): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in (tmp_path / "out").rglob("f*")} == built


def test_outputs_lost_again_after_the_rebuild_are_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A store that loses every blob it is asked to export: one rebuild, then a clear error."""
    from ukbuild._store import Store  # noqa: PLC0415

    (tmp_path / "ukbuild.toml").write_text(PROJECT)
    monkeypatch.setattr(Store, "export", lambda *_args, **_kw: False)
    result = ukbuild("build", "-C", tmp_path, "--cache-dir", tmp_path / "cache", "a")
    assert result.code != 0
    assert "a: its stored outputs keep disappearing" in result.err
    assert "Traceback" not in result.err


def test_a_symlink_left_by_an_earlier_build_does_not_lead_writes_outside(tmp_path: Path) -> None:
    """Build 1 outputs a symlink `data` to a directory outside; build 2 outputs `data/sub/`:
    the link is replaced by a directory, and nothing outside the output dir is pruned or written."""
    victim = tmp_path / "victim"
    (victim / "sub").mkdir(parents=True)
    (victim / "sub" / "precious.txt").write_text("mine\n")
    project = tmp_path / "p"
    project.mkdir()
    toml = '[project]\nname = "p"\n[action.a]\ncommand = ["sh", "-c", "{}"]\noutputs = ["{}"]\n'
    args = ("build", "-C", project, "--cache-dir", tmp_path / "cache")
    (project / "ukbuild.toml").write_text(toml.format(f"ln -s {victim} data", "data"))
    assert ukbuild(*args).code == 0
    assert (project / "out" / "data").is_symlink()
    (project / "ukbuild.toml").write_text(toml.format("mkdir -p data/sub && echo gen > data/sub/gen.txt", "data/sub/"))
    result = ukbuild(*args)
    assert result.code == 0, result.err
    assert sorted(p.name for p in (victim / "sub").iterdir()) == ["precious.txt"]
    assert not (project / "out" / "data").is_symlink()
    assert (project / "out" / "data" / "sub" / "gen.txt").read_text() == "gen\n"


def test_a_name_near_name_max_is_placed(tmp_path: Path) -> None:
    """The temp name beside it must fit NAME_MAX too (it added 13 characters)."""
    name = "n" * 250
    (tmp_path / "ukbuild.toml").write_text(
        f'[project]\nname = "p"\n[action.a]\ncommand = ["sh", "-c", "echo x > {name}"]\noutputs = ["{name}"]\n'
    )
    result = ukbuild("build", "-C", tmp_path, "--cache-dir", tmp_path / "cache")
    assert result.code == 0, result.err
    assert (tmp_path / "out" / name).read_text() == "x\n"


def test_an_unwritable_output_dir_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "ukbuild.toml").write_text(
        '[project]\nname = "p"\n[action.a]\ncommand = ["sh", "-c", "echo x > x"]\noutputs = ["x"]\n'
    )
    out = tmp_path / "out"
    out.mkdir()
    if subprocess.run(["chattr", "+i", str(out)], capture_output=True, check=False).returncode != 0:
        pytest.skip("chattr +i is not supported on this file system")
    try:
        result = ukbuild("build", "-C", tmp_path, "--cache-dir", tmp_path / "cache", "--state-dir", tmp_path / "state")
    finally:
        subprocess.run(["chattr", "-i", str(out)], check=True)
    assert result.code == 1
    assert f"cannot write the outputs into {out}" in result.err
    assert "Traceback" not in result.err


def test_two_builds_into_one_output_dir_take_turns(tmp_path: Path) -> None:
    """The second waits for the first (they would remove each other's temp files)."""
    (tmp_path / "ukbuild.toml").write_text(
        '[project]\nname = "p"\n[action.big]\ncommand = ["sh", "-c", "sleep 1; head -c 30000000 /dev/zero > big"]\n'
        'outputs = ["big"]\n'
    )
    argv = [sys.executable, "-m", "ukbuild", "build", "-C", str(tmp_path), "--cache-dir", str(tmp_path / "cache")]
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [p.communicate(timeout=120) + (p.returncode,) for p in procs]
    assert [code for _, _, code in results] == [0, 0], results
    assert any("another build is writing" in err for _, err, _ in results)
    assert (tmp_path / "out" / "big").stat().st_size == 30_000_000
    assert not any(p.name.endswith(".ukbuild-tmp") for p in (tmp_path / "out").iterdir())


def test_output_named_near_name_max_is_placed(tmp_path: Path) -> None:
    """A foreach stem of 250 characters: the action's log, its output of 252 and the output's
    temp file (which `.NAME.ukbuild-tmp` would make 265 bytes) all fit in NAME_MAX."""
    stem = "s" * 250
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / f"{stem}.c").write_text("int x;\n")
    (tmp_path / "ukbuild.toml").write_text(
        '[project]\nname = "p"\n[action.cc]\nforeach = "src/*.c"\n'
        'command = ["sh", "-c", "cp {in} {stem}.o"]\ninputs = ["{in}"]\noutputs = ["{stem}.o"]\n')
    args = ("build", "-C", tmp_path, "--cache-dir", tmp_path / "cache")
    result = ukbuild(*args)
    assert result.code == 0, result.err
    output = tmp_path / "out" / f"{stem}.o"
    assert output.read_text() == "int x;\n"
    from ukbuild._materialize import _temp_name  # noqa: PLC0415

    partial = Path(_temp_name(str(output)))  # a killed build's partial copy: found and removed
    assert len(partial.name) <= 255 and partial.name.startswith(".sss") and partial.name.endswith(".ukbuild-tmp")
    partial.write_text("half")
    (tmp_path / "out" / ".ukbuild" / "noop").unlink()
    assert ukbuild(*args).code == 0
    assert not partial.exists() and output.read_text() == "int x;\n"
