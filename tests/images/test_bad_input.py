"""Bad image input through ``ukbuild build``: a clear error, ``file:line`` when the project
file is the cause, and nothing (not even a temporary) at the output path."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from ukbuild.disk import syslinux

from .conftest import FAKE_BACKEND, run_ukbuild

TOOLS = ("gcc", "ld", "syslinux", "xorriso")


def line_of(project: Path, header: str) -> int:
    lines = (project / "ukbuild.toml").read_text().splitlines()
    return lines.index(header) + 1


def fake_project(root: Path, unikernel: str, image: str, kernel: bytes) -> Path:
    """A project of the ``imgtest`` backend: the kernel is ``kernel.bin`` as given."""
    root.mkdir()
    (root / "kernel.bin").write_bytes(kernel)
    (root / "ukbuild.toml").write_text(
        '[project]\nname = "bad"\n\n[toolchain.t]\nbackend = "imgtest"\n\n'
        f'[unikernel.k]\ntoolchain = "t"\nkernel = "kernel.bin"\n{unikernel}\n'
        f'[image.img]\nunikernel = "k"\n{image}\n'
    )
    return root


def build_fake(project: Path, tmp_path: Path) -> tuple[int, str]:
    result = run_ukbuild("build", "-C", project, "--cache-dir", tmp_path / "cache",
                         env={"PYTHONPATH": str(FAKE_BACKEND)})  # fmt: skip
    return result.code, result.err


def assert_nothing_at(out: Path) -> None:
    """Neither the output nor any temporary of it exists."""
    if out.parent.exists():
        assert [p.name for p in out.parent.iterdir()] == []
    assert not out.exists()


@pytest.mark.parametrize("fmt", ["raw", "iso"])
def test_kernel_format_not_multiboot(fmt: str, tmp_path: Path) -> None:
    """Metadata saying solo5-hvt: refused before anything runs, at the image table's line."""
    project = fake_project(tmp_path / "p", 'kernel_format = "solo5-hvt"', f'format = "{fmt}"', b"\x7fELF")
    code, err = build_fake(project, tmp_path)
    assert code == 2
    assert re.search(rf"ukbuild\.toml:{line_of(project, '[image.img]')}: image\.img\.format: "
                     r"a solo5-hvt kernel is not Multiboot", err), err  # fmt: skip
    assert "hint:" in err and "oci" in err
    assert not (project / "out" / "image").exists()


@pytest.mark.realtool(*TOOLS)
@pytest.mark.parametrize(("fmt", "output"), [("raw", "img.img"), ("iso", "img.iso")])
def test_kernel_bytes_not_multiboot(fmt: str, output: str, tmp_path: Path) -> None:
    """A kernel claimed to be Multiboot that is not: the emitter says so; no image is left behind."""
    project = fake_project(tmp_path / "p", "", f'format = "{fmt}"', b"\x7fELF" + bytes(9000))
    code, err = build_fake(project, tmp_path)
    assert code == 1
    assert "img: command failed" in err and "no Multiboot v1 header" in err, err
    assert_nothing_at(project / "out" / "image" / output)


@pytest.mark.realtool("gcc", "ld")
def test_urunc_with_a_multiboot_kernel(example: Callable[..., Path], tmp_path: Path) -> None:
    """urunc cannot run a Multiboot kernel: refused at the table's line."""
    project = example(extra='\n[image.uk-urunc]\nunikernel = "hello"\nformat = "oci"\nurunc = true\n')
    result = run_ukbuild("build", "-C", project, "--cache-dir", tmp_path / "cache", "uk-urunc")
    assert result.code == 2
    line = line_of(project, "[image.uk-urunc]")
    assert f"ukbuild.toml:{line}: image.uk-urunc.urunc: the hello kernel (multiboot-elf32) is not something urunc" \
        in result.err  # fmt: skip
    assert not (project / "out" / "oci").exists()


def test_urunc_with_a_rumprun_hw_kernel(tmp_path: Path) -> None:
    """A Rumprun hw kernel (monitor qemu, bake hw_generic) under urunc: the hint names the fix."""
    project = fake_project(tmp_path / "p", 'kernel_format = "multiboot-elf32"\nguest = "rumprun"\n'
                           'monitor = "qemu"\nbake = "hw_generic"', 'format = "oci"\nurunc = true', b"k")  # fmt: skip
    code, err = build_fake(project, tmp_path)
    assert code == 2
    assert f"ukbuild.toml:{line_of(project, '[image.img]')}: image.img.urunc: urunc cannot run a rumprun " \
        "guest on 'qemu'" in err  # fmt: skip
    assert "solo5_hvt or solo5_spt" in err
    assert not (project / "out" / "oci").exists()


def test_urunc_with_a_rumprun_bake_mismatch(tmp_path: Path) -> None:
    """monitor hvt but baked for hw_virtio: the bake is named."""
    project = fake_project(tmp_path / "p", 'guest = "rumprun"\nmonitor = "hvt"\nbake = "hw_virtio"',
                           'format = "oci-archive"\nurunc = true', b"k")  # fmt: skip
    code, err = build_fake(project, tmp_path)
    assert code == 2 and "baked for 'hw_virtio' cannot run under urunc on hvt" in err, err


@pytest.mark.realtool("gcc", "ld")
@pytest.mark.parametrize(("image", "missing", "package"),
                         [("hello-disk", "mboot.c32", "syslinux-common"), ("hello-iso", "isolinux.bin", "isolinux")])
def test_bootloader_file_missing(
    image: str, missing: str, package: str, example: Callable[..., Path], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """A missing syslinux file: the table's line, the file and the Debian package to install."""
    from tests.core.helpers import ukbuild

    fake = tmp_path / "syslinux"
    fake.mkdir()
    for name in syslinux.PACKAGES:
        if name != missing:
            (fake / name).symlink_to(syslinux.find_file(name))
    monkeypatch.setattr(syslinux, "SEARCH_DIRS", (fake,))
    project = example()
    result = ukbuild("build", "-C", project, "--cache-dir", tmp_path / "cache", image)
    assert result.code == 2
    assert f"ukbuild.toml:{line_of(project, f'[image.{image}]')}: image.{image}.format: boot loader file " \
        f"{missing} not found" in result.err  # fmt: skip
    assert f"apt-get install {package}" in result.err
    assert not (project / "out" / "image").exists()


@pytest.mark.realtool("gcc", "ld")
@pytest.mark.parametrize(("table", "words"), [
    ('format = "raw"\ncmdline = "two  spaces"', "image.bad.cmdline: the kernel command line cannot pass through"),
    ('format = "raw"\ntag = "v1"', "image.bad.tag: does not apply to format 'raw'"),
    ('format = "docker-archive"\nkraftkit = true', "image.bad.kraftkit: does not apply to format 'docker-archive'"),
    ('format = "oci"\ncompression = "xz"', "image.bad.compression: unknown compression 'xz'"),
    ('format = "oci"\ntag = "-bad"', "image.bad.tag: '-bad' is not a valid image tag"),
])  # fmt: skip
def test_options_refused_at_their_line(
    table: str, words: str, example: Callable[..., Path], tmp_path: Path
) -> None:
    project = example(extra=f'\n[image.bad]\nunikernel = "hello"\n{table}\n')
    result = run_ukbuild("build", "-C", project, "--cache-dir", tmp_path / "cache", "bad")
    assert result.code == 2
    assert f"ukbuild.toml:{line_of(project, '[image.bad]')}: {words}" in result.err, result.err


@pytest.mark.parametrize(("table", "words", "hint"), [
    ('format = 5', "image.bad.format: expected a string, got an integer", 'format = "…", one of: raw, iso, oci'),
    ('unikernel = "hello"\nformat = ["raw"]', "image.bad.format: expected a string, got a list", 'format = "…", one of: raw'),
    ('format = "ext3"', "image.bad.format: unknown format 'ext3'", "did you mean 'ext2'?"),
    ('unikernel = "nope"', "image.bad.unikernel: no unikernel named 'nope'", "unikernels: hello"),
    ('unikernel = "helo"\nformat = "iso"', "image.bad.unikernel: no unikernel named 'helo'", "did you mean 'hello'?"),
])  # fmt: skip
def test_format_and_unikernel_refused_at_their_line(
    table: str, words: str, hint: str, example: Callable[..., Path], tmp_path: Path
) -> None:
    """What is wrong is named, whatever else the table lacks: a format that is no string (or no
    format) before a missing unikernel; an unknown unikernel with the unikernels there are."""
    project = example(extra=f'\n[image.bad]\n{table}\n')
    result = run_ukbuild("build", "-C", project, "--cache-dir", tmp_path / "cache", "bad")
    assert result.code == 2, result.err
    assert "Traceback" not in result.err
    field = words.split(":")[0].rsplit(".", 1)[1]
    lines = (project / "ukbuild.toml").read_text().splitlines()
    line = lines.index("[image.bad]") + 1 + next(i for i, t in enumerate(table.splitlines(), 1) if t.startswith(field))
    assert f"ukbuild.toml:{line}: {words}" in result.err, result.err
    assert f"hint: {hint}" in result.err, result.err
