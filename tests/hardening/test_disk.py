"""A full disk and a read-only cache (real mounts: the suite runs as root, so chmod proves
nothing): the build completes, uncached, with one warning, and the cache holds nothing broken."""

from __future__ import annotations

import random
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.core.helpers import CliResult, ukbuild
from tests.hardening.helpers import output_files, verify_clean

pytestmark = pytest.mark.realtool("mount", "umount")

Mount = Callable[..., Path]


@pytest.fixture
def mount(tmp_path: Path) -> Iterator[Mount]:
    """``mount(*args, target=dir)`` runs mount; everything mounted is unmounted at teardown."""
    mounted: list[Path] = []

    def run(*args: str, target: Path) -> Path:
        target.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(["mount", *args, str(target)], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            pytest.skip(f"mount {' '.join(args)} is not permitted here: {proc.stderr.strip()}")
        mounted.append(target)
        return target

    yield run
    for target in reversed(mounted):
        if subprocess.run(["umount", str(target)], capture_output=True, check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(target)], capture_output=True, check=False)


def incompressible_project(root: Path, files: int, size: int) -> Path:
    """Actions that copy seeded random inputs (zstd cannot shrink them) into outputs."""
    rng = random.Random(8)
    (root / "data").mkdir(parents=True)
    lines = ['[project]\nname = "disk"\n']
    for n in range(files):
        (root / "data" / f"{n}.bin").write_bytes(rng.randbytes(size))
        lines.append(f'[action.copy{n}]\ncommand = ["cp", "data/{n}.bin", "o/{n}.bin"]\n'
                     f'inputs = ["data/{n}.bin"]\noutputs = ["o/{n}.bin"]\n')
    lines.append('[action.small]\ncommand = ["sh", "-c", "echo small > s.txt"]\noutputs = ["s.txt"]\n')
    (root / "ukbuild.toml").write_text("\n".join(lines))
    return root


def warnings(result: CliResult) -> list[str]:
    return [e["message"] for e in result.events() if e["event"] == "warning"]


def test_full_disk_builds_uncached_with_one_warning(tmp_path: Path, private_tmpdir: Path, mount: Mount) -> None:
    """A 1 MiB tmpfs cache and 3 MiB of incompressible outputs: ENOSPC mid-write turns into one
    warning, every output is still correct, and what reached the cache verifies clean."""
    cache = mount("-t", "tmpfs", "-o", "size=1m", "tmpfs", target=tmp_path / "small-fs")
    project = incompressible_project(tmp_path / "p", files=6, size=512 * 1024)
    result = ukbuild("build", "-C", project, "--cache-dir", cache, "--json", "-j", "2")
    assert result.code == 0, result.err
    [warning] = warnings(result)
    assert "not writable" in warning and "No space left on device" in warning
    assert output_files(project / "out") == {
        **{f"o/{n}.bin": (project / "data" / f"{n}.bin").read_bytes() for n in range(6)}, "s.txt": b"small\n",
    }
    verify_clean(cache)
    assert not list((cache / "tmp").iterdir()), "a failed write left its temp file"
    assert not list(private_tmpdir.glob("ukbuild-spill-*")), "the spill area outlived the build"


def test_read_only_cache_serves_hits_and_caches_nothing(tmp_path: Path, private_tmpdir: Path, mount: Mount) -> None:
    """A cache filled earlier, then bind-mounted read-only: unchanged actions are hits, a changed
    one runs, the build warns once and succeeds; the cache below is unchanged."""
    project = incompressible_project(tmp_path / "p", files=2, size=128 * 1024)
    cache = tmp_path / "cache"
    assert ukbuild("build", "-C", project, "--cache-dir", cache).code == 0
    before = sorted(str(p.relative_to(cache)) for p in cache.rglob("*"))
    view = mount("--bind", str(cache), target=tmp_path / "ro-view")
    mount("-o", "remount,ro,bind", target=view)
    assert subprocess.run(["touch", str(view / "probe")], capture_output=True, check=False).returncode != 0
    toml = project / "ukbuild.toml"
    toml.write_text(toml.read_text().replace("echo small", "echo changed"))
    shutil.rmtree(project / "out")
    result = ukbuild("build", "-C", project, "--cache-dir", view, "--json")
    assert result.code == 0, result.err
    assert result.executed() == ["small"]
    assert result.cached() == ["copy0", "copy1"]
    [warning] = warnings(result)
    assert "not writable" in warning and "Read-only file system" in warning
    assert (project / "out" / "s.txt").read_text() == "changed\n"
    assert (project / "out" / "o" / "1.bin").read_bytes() == (project / "data" / "1.bin").read_bytes()
    assert sorted(str(p.relative_to(cache)) for p in cache.rglob("*")) == before


def test_read_only_empty_cache_dir(tmp_path: Path, private_tmpdir: Path, mount: Mount) -> None:
    """A read-only mount that is not yet a cache (no VERSION, no cas/): one warning, build succeeds."""
    empty = tmp_path / "empty"
    empty.mkdir()
    view = mount("--bind", str(empty), target=tmp_path / "ro-empty")
    mount("-o", "remount,ro,bind", target=view)
    project = incompressible_project(tmp_path / "p", files=1, size=70 * 1024)
    result = ukbuild("build", "-C", project, "--cache-dir", view, "--json")
    assert result.code == 0, result.err
    assert len(warnings(result)) == 1
    assert (project / "out" / "o" / "0.bin").read_bytes() == (project / "data" / "0.bin").read_bytes()
    assert not list(empty.iterdir())
