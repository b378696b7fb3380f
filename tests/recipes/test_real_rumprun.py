"""With a real Rumprun toolchain ($UKBUILD_RUMPRUN_PREFIX or PATH): the recipes build, and the
unikernels boot under QEMU.  Skipped with the reason when there is none (it cannot be
installed on the CI machine: upstream Rumprun needs gcc 5-7)."""

from __future__ import annotations

import os
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from ukbuild.api import detect_backends

from ._build import build, free_port, recipe

_ORIGINAL_ENV = dict(os.environ)


def real_prefix() -> str | None:
    from ukbuild_rumprun.plugin import RumprunBackend  # noqa: PLC0415

    found = detect_backends({"rumprun": RumprunBackend()}, _ORIGINAL_ENV)[0]
    prefix = found.toolchain.prefix if found.toolchain else None
    bake = Path(prefix or "/nonexistent") / "bin" / "rumprun-bake"
    if prefix is None or (bake.is_file() and "Fake rumprun-bake" in bake.read_text(errors="replace")):
        return None
    return prefix


@pytest.fixture
def real_rumprun(monkeypatch: pytest.MonkeyPatch) -> str:
    prefix = real_prefix()
    if prefix is None:
        pytest.skip("no real Rumprun toolchain: set UKBUILD_RUMPRUN_PREFIX to one, or put its bin/ on PATH "
                    "(upstream Rumprun needs gcc 5-7 and cannot be built on the CI machine)")
    monkeypatch.setenv("UKBUILD_RUMPRUN_PREFIX", prefix)
    return prefix


def cmdline(project_name: str, unikernel: str) -> str:
    """The Rumprun JSON the backend renders for the recipe's unikernel."""
    from ukbuild_rumprun.plugin import RumprunBackend  # noqa: PLC0415

    return RumprunBackend().image_metadata(recipe(project_name).unikernels[unikernel]).cmdline


def boot(kernel: Path, append: str, until: str, *, memory: int = 256, extra: tuple[str, ...] = (),
         timeout: float = 120) -> tuple[subprocess.Popen[str], str]:
    """Boot a hw kernel under QEMU (TCG); read the console until ``until`` appears (QEMU left running)."""
    argv = ["qemu-system-x86_64", "-machine", "pc", "-accel", "tcg", "-display", "none", "-monitor", "none",
            "-serial", "stdio", "-no-reboot", "-vga", "none", "-m", str(memory), *extra,
            "-kernel", str(kernel), "-append", append]  # fmt: skip
    if "-netdev" not in extra:
        argv[argv.index("-no-reboot"):argv.index("-no-reboot")] = ["-nic", "none"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    for line in proc.stdout:
        seen.append(line)
        if until in line or time.monotonic() > deadline:
            break
    return proc, "".join(seen)


def kill(proc: subprocess.Popen[str]) -> None:
    proc.kill()
    proc.wait()


@pytest.mark.realtool("qemu-system-x86_64")
def test_php_cli_boots(real_rumprun: str, tmp_path: Path) -> None:
    result = build(recipe("php"), ["php-cli-uk"], tmp_path / "php", cache=tmp_path / "cache",
                   sources=["php", "pcre2", "zlib"])
    proc, console = boot(result.out_dir / "kernel/php-cli-uk.bin", cmdline("php", "php-cli-uk"), "returned")
    kill(proc)
    assert 'main() of "php" returned 0' in console and "2" in console, console


@pytest.mark.realtool("qemu-system-x86_64")
def test_nginx_boots_and_serves(real_rumprun: str, tmp_path: Path) -> None:
    result = build(recipe("nginx"), ["nginx-uk", "nginx-data"], tmp_path / "nginx", cache=tmp_path / "cache",
                   sources=["nginx", "pcre2", "zlib"])
    port = free_port()
    extra = ("-netdev", f"user,id=n0,hostfwd=tcp:127.0.0.1:{port}-:80", "-device", "virtio-net-pci,netdev=n0",
             "-drive", f"if=virtio,format=raw,readonly=on,file={result.out_dir / 'image/nginx-data.iso'}")
    proc, console = boot(result.out_dir / "kernel/nginx-uk.bin", cmdline("nginx", "nginx-uk"), "NetBSD", extra=extra)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=5) as response:  # noqa: S310
                    assert b"nginx in a Rumprun unikernel" in response.read()
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
    finally:
        kill(proc)
    assert "NetBSD" in console


@pytest.mark.slow
def test_mariadb_builds(real_rumprun: str, tmp_path: Path) -> None:
    result = build(recipe("mariadb"), ["mariadb-uk"], tmp_path / "mariadb", cache=tmp_path / "cache",
                   sources=["mariadb", "pcre2", "zlib", "fmt"])
    assert (result.out_dir / "kernel/mariadb-uk.bin").is_file()
