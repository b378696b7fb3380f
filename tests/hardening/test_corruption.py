"""Random damage to stored blobs and action results: found by verify, never served, rebuilt."""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path

import pytest

from tests.core.helpers import ukbuild
from tests.hardening.helpers import output_files, write_project
from ukbuild._reapi import ActionResult, Digest, OutputFile
from ukbuild._store import COMPRESS_MIN, Store

SEED = int(os.environ.get("UKBUILD_HARDENING_SEED", "8"))


def damage(path: Path, rng: random.Random) -> str:
    """Change the file's bytes in one of four ways; returns which."""
    data = bytearray(path.read_bytes())
    how = rng.choice(["flip", "truncate", "extend", "replace"] if data else ["extend"])
    if how == "flip":
        data[rng.randrange(len(data))] ^= rng.randrange(1, 256)
    elif how == "truncate":
        del data[rng.randrange(len(data)) :]
    elif how == "extend":
        data += rng.randbytes(rng.randrange(1, 100))
    else:
        replacement = rng.randbytes(len(data))
        data = bytearray(replacement if replacement != data else bytes(b ^ 1 for b in replacement))
    path.write_bytes(bytes(data))
    return how


@pytest.mark.trials(12, 150)
def test_random_damage_is_detected_and_never_served(tmp_path: Path, private_tmpdir: Path, trials: int) -> None:
    """Each trial damages 1-4 random CAS blobs or AC entries (bit flips, truncation, appended
    bytes, same-size garbage): verify names every damaged file, a build from an empty output
    dir equals a clean build, and after `verify --repair` the store is clean."""
    rng = random.Random(SEED)
    project, cache = write_project(tmp_path / "p", small=8, large=2), tmp_path / "cache"
    assert ukbuild("build", "-C", project, "--cache-dir", cache).code == 0
    reference = output_files(project / "out")
    hits = {"cas": 0, "ac": 0}
    for trial in range(trials):
        entries = sorted(p for area in ("cas", "ac") for p in (cache / area).glob("*/*"))
        damaged = {}
        for path in rng.sample(entries, rng.randint(1, 4)):
            damaged[str(path)] = damage(path, rng)
            hits[path.parent.parent.name] += 1
        found = {p.path: p.kind for p in Store(cache).verify()}
        for path, how in damaged.items():
            assert found.get(path) in ("corrupt-blob", "corrupt-action"), f"trial {trial}: {how} of {path} not found"
        shutil.rmtree(project / "out")
        result = ukbuild("build", "-C", project, "--cache-dir", cache)
        assert result.code == 0, f"trial {trial}: {result.err}"
        assert output_files(project / "out") == reference, f"trial {trial}: damaged={damaged}"
        Store(cache).verify(repair=True)
        assert Store(cache).verify() == []
        assert ukbuild("build", "-C", project, "--cache-dir", cache).code == 0  # restores what repair removed
    print(f"corruption trials={trials} damaged={hits}")


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


def test_bytes_after_a_compressed_frame_are_corruption(tmp_path: Path) -> None:
    """A .zst blob with bytes appended after its frame decompresses to the right content when the
    reader stops at the frame's end; verify and export read across frames, so it is found,
    refused and removed."""
    store = Store(tmp_path / "cache")
    digest = store.put_bytes(b"large output\n" * COMPRESS_MIN)
    path = store.blob_path(digest)
    path.write_bytes(path.read_bytes() + b"\x00garbage")
    assert [(p.kind, p.path) for p in store.verify()] == [("corrupt-blob", str(path))]
    assert not store.export(digest, tmp_path / "out")
    assert not path.exists() and not (tmp_path / "out").exists()
