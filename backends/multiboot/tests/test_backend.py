"""The Multiboot backend through ukbuild: plan, build, cache, check, run."""

from __future__ import annotations

import shutil
from pathlib import Path

import attrs
import pytest

from tests.core.helpers import ukbuild

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "multiboot"


@pytest.fixture
def example(tmp_path: Path) -> Path:
    dest = tmp_path / "multiboot"
    shutil.copytree(EXAMPLE, dest, ignore=shutil.ignore_patterns("out"))
    return dest


def test_kernel_builds_per_source_and_is_cached(example: Path, tmp_path: Path) -> None:
    first = ukbuild("build", "-C", example, "--cache-dir", tmp_path / "c", "--json", "hello")
    assert first.code == 0, first.err
    assert first.executed() == sorted([
        "hello", "hello.compile[0-boot-i386]", "hello.compile[1-kernel]", "hello.compile[2-serial]",
        "hello.compile[3-hello]",
    ])
    kernel = example / "out" / "kernel" / "hello.elf"
    assert kernel.read_bytes()[:4] == b"\x7fELF"
    (example / "hello.c").write_text((example / "hello.c").read_text().replace("BYE", "BYE!"))
    second = ukbuild("build", "-C", example, "--cache-dir", tmp_path / "c", "--json", "hello")
    assert second.executed() == ["hello", "hello.compile[3-hello]"]


@pytest.mark.realtool("qemu-system-x86_64")
def test_run_boots_the_kernel_with_the_arguments(example: Path, tmp_path: Path) -> None:
    result = ukbuild("run", "-C", example, "--cache-dir", tmp_path / "c", "hello", "--", "nonce-4711", "x,y")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert "HELLO from ukbuild" in lines
    assert "LOADER: qemu" in lines
    cmdline = next(line for line in lines if line.startswith("CMDLINE: "))
    assert cmdline.endswith('hello from the ukbuild example, args: a,b "c d" nonce-4711 x,y')


def test_a_non_multiboot_kernel_is_refused_and_not_cached(example: Path, tmp_path: Path) -> None:
    """The link's check rejects a kernel without a Multiboot header; nothing is cached for it."""
    from ukbuild import api  # noqa: PLC0415
    from ukbuild.plugins._manager import backends, plugin_manager  # noqa: PLC0415

    found = backends(plugin_manager())
    project = api.load_project(example, backends=found)
    link = project.actions["hello"]
    objects = [a for a in link.argv if a.endswith(".o") and "boot" not in a]
    # Link without the boot code and the runtime's linker script: no Multiboot header.
    broken = attrs.evolve(link, argv=["ld", "-m", "elf_i386", "-e", "uk_app_main", "-o", "kernel/hello.elf", *objects])
    project = attrs.evolve(project, actions={**project.actions, "hello": broken})
    result = api.Build(project, ["hello"], api.BuildOptions(cache_dir=tmp_path / "c"), backends=found).run()
    assert not result.ok
    error = result.errors[0]
    assert error.reason == "not-multiboot"
    assert error.message.startswith("hello: kernel/hello.elf: hello.elf: not a Multiboot kernel")
    key = result.outcomes["hello"].key
    assert key is not None and not (tmp_path / "c" / "ac" / key.hash[:2] / key.hash).exists()


def test_bad_options_name_the_line(example: Path) -> None:
    (example / "ukbuild.toml").write_text((example / "ukbuild.toml").read_text().replace('arch = "i386"', 'arch = "arm"'))
    result = ukbuild("build", "-C", example)
    assert result.code == 2
    assert "ukbuild.toml:10: unikernel.hello.arch: expected one of i386, x86_64" in result.err
