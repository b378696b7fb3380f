"""Random damage to stored blobs and action results: found by verify, never served, rebuilt."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.core.helpers import ukbuild
from tests.hardening.helpers import output_files, write_project
from ukbuild._reapi import ActionResult, Digest, OutputFile
from ukbuild._store import Store


@pytest.mark.parametrize("change", ["rename-output", "empty-file"])
def test_result_that_still_decodes_after_damage_is_a_miss(tmp_path: Path, private_tmpdir: Path, change: str) -> None:
    """An action result is protobuf without a checksum of its own: a flipped character in an
    output path, or an empty file (an empty message), still decodes.  The store seals each
    result with its SHA-256, so the damaged one is a miss: it is rebuilt, never served."""
    project, cache = write_project(tmp_path / "p", small=2, large=1), tmp_path / "cache"
    assert ukbuild("build", "-C", project, "--cache-dir", cache).code == 0
    reference = output_files(project / "out")
    for entry in (cache / "ac").glob("*/*"):
        data = entry.read_bytes()
        if [f.path for f in ActionResult.decode(data).output_files] == ["s/0.txt"]:
            entry.write_bytes(data.replace(b"s/0.txt", b"s/0.txu") if change == "rename-output" else b"")
            damaged = str(entry)
    assert {p.path: p.kind for p in Store(cache).verify()} == {damaged: "corrupt-action"}
    shutil.rmtree(project / "out")
    result = ukbuild("build", "-C", project, "--cache-dir", cache, "--json")
    assert result.code == 0, result.err
    assert result.executed() == ["small0"]
    assert output_files(project / "out") == reference
    assert Store(cache).verify() == []


def test_sealed_results_round_trip(tmp_path: Path) -> None:
    store = Store(tmp_path / "cache")
    result = ActionResult((OutputFile("o", store.put_bytes(b"x"), True),))
    store.put_action_result(Digest.of(b"k"), result)
    assert store.get_action_result(Digest.of(b"k")) == result
