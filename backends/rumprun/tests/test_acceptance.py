"""Acceptance: a C program and an autotools library, cross-built, baked, cached and booted.

Runs against the fake toolchain and, when one is installed, a real Rumprun
toolchain (``toolchain_prefix`` is parametrized over both).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.core.helpers import ukbuild
from ukbuild.multiboot import check_multiboot

TUPLE = "x86_64-rumprun-netbsd"


def test_cross_build_bake_and_cache(toolchain_prefix: str, project: object, tmp_path: Path) -> None:
    root: Path = project.root  # type: ignore[attr-defined]
    cache = tmp_path / "cache"
    first = ukbuild("build", "-C", root, "--cache-dir", cache, "--json", "libnonce", "hello")
    assert first.code == 0, first.out + first.err
    assert first.executed() == ["hello", "hello-prog", "libnonce"]

    # The cross environment reached configure and make: what they recorded.
    record = root / "out" / "pkg" / "libnonce" / "usr" / "share" / "libnonce"
    configured = (record / "configure.record").read_text().splitlines()
    assert configured[:4] == [
        f"argv: --host={TUPLE} --prefix=/usr --disable-shared",
        f"host={TUPLE} cross_compiling=yes",
        f"CC={TUPLE}-gcc AR={TUPLE}-ar RANLIB={TUPLE}-ranlib",
        configured[3],
    ]
    assert configured[3].startswith("CFLAGS=-g -O2 -idirafter /")
    assert configured[4] == "ac_cv_func_fork=no"  # a cached answer from the toolchain's environment
    built = (record / "build.record").read_text().splitlines()
    assert built[0] == f"make: UKBUILD_HOST={TUPLE} CC={TUPLE}-gcc AR={TUPLE}-ar"
    assert built[1].startswith(f"{TUPLE}-gcc -g -O2 -idirafter ")
    assert built[1].endswith(" -I. -c nonce.c -o nonce.o")
    assert built[2:] == [f"{TUPLE}-ar rc libnonce.a nonce.o", f"{TUPLE}-ranlib libnonce.a"]

    kernel = root / "out" / "kernel" / "hello.bin"
    header = check_multiboot(kernel.read_bytes())
    assert (header.elf_class, header.loads_by_aout) == (64, True)

    again = ukbuild("build", "-C", root, "--cache-dir", cache, "--json", "libnonce", "hello")
    assert again.code == 0, again.err
    assert again.executed() == []
    assert again.cached() == ["hello", "hello-prog", "libnonce"]
    # Also a fresh output directory, so the action cache (not the no-op journal) answers.
    fresh = ukbuild("build", "-C", root, "--cache-dir", cache, "-o", tmp_path / "out2", "--json", "hello")
    assert fresh.executed() == []
    assert {e["via"] for e in fresh.events() if e["event"] == "action-cached"} == {"local"}


@pytest.mark.realtool("qemu-system-x86_64")
def test_run_shows_the_nonces_and_returns_the_status(toolchain_prefix: str, project: object, tmp_path: Path) -> None:
    root: Path = project.root  # type: ignore[attr-defined]
    result = ukbuild("run", "-C", root, "--cache-dir", tmp_path / "cache", "hello", "--", "run-nonce,x", "7")
    assert result.code == 7, result.out + result.err
    lines = [line.rstrip("\r") for line in result.out.splitlines()]
    assert f"program nonce: {project.program}" in lines  # type: ignore[attr-defined]
    assert f"library nonce: {project.library} (sizeof(long)=8, fork=no)" in lines  # type: ignore[attr-defined]
    # argv: argv[0], the table's args, then the run's, through the JSON config with single commas.
    argv = [line for line in lines if line.startswith("argv[")]
    assert argv == ["argv[0]=hello", f"argv[1]={project.config}", "argv[2]=run-nonce,x", "argv[3]=7"]  # type: ignore[attr-defined]
    assert "GREETING=hi,there" in lines
    assert '=== main() of "hello" returned 7 ===' in lines
    assert not any("Virtio Block Device" in line for line in lines)  # no disk unless asked for


@pytest.mark.realtool("qemu-system-x86_64")
def test_run_attaches_drives(toolchain_prefix: str, project: object, tmp_path: Path) -> None:
    """``--drive FILE`` is a virtio block device the guest finds on its PCI bus; a bad one is named."""
    root: Path = project.root  # type: ignore[attr-defined]
    disk = tmp_path / "extra.img"
    disk.write_bytes(b"\0" * 1024 * 1024)
    result = ukbuild("run", "-C", root, "--cache-dir", tmp_path / "cache", "--drive", disk, "hello", "--", "x", "0")
    assert result.code == 0, result.out + result.err
    lines = [line.rstrip("\r") for line in result.out.splitlines()]
    assert any(line.endswith("Virtio Block Device (rev. 0x00)") for line in lines), result.out
    assert any(line.startswith("ld0 at virtio") for line in lines), result.out
    assert disk.read_bytes() == b"\0" * 1024 * 1024  # behind a snapshot overlay

    missing = ukbuild("run", "-C", root, "--cache-dir", tmp_path / "cache", "--drive", "nope.img", "hello")
    assert missing.code == 2
    assert "--drive nope.img: no data image of that name" in missing.err and "Traceback" not in missing.err
