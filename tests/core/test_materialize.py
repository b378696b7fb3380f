"""Placing the outputs of several targets at once, in their order where they overlap."""

from __future__ import annotations

import hashlib
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
    from ukbuild._materialize import _temp_path  # noqa: PLC0415

    partial = Path(_temp_path(str(output)))  # a killed build's partial copy: found and removed
    assert len(partial.name) <= 255 and partial.name.startswith(".sss") and partial.name.endswith(".ukbuild-tmp")
    partial.write_text("half")
    (tmp_path / "out" / ".ukbuild" / "noop").unlink()
    assert ukbuild(*args).code == 0
    assert not partial.exists() and output.read_text() == "int x;\n"
