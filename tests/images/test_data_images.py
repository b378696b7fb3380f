"""``[image.NAME]`` data tables (no kernel) and ``bootloader = "grub"``: planning errors name
the table and field, and the planned actions build through the engine (``api.Build`` on a
Python project, as ``_project`` will once it routes data formats here) into images that
real tools read back, from the cache the second time."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path

import attrs
import pytest

from ukbuild import api
from ukbuild._project import host_platform
from ukbuild.errors import ConfigError
from ukbuild.images import data_image_action, emit_toolchains, image_action
from ukbuild.model import Origin, Project
from ukbuild.plugins import ImageMetadata

ORIGIN = Origin("ukbuild.toml", 7)


def plan_error(table: Mapping[str, object]) -> str:
    with pytest.raises(ConfigError) as excinfo:
        data_image_action("data", table, ORIGIN)
    return f"{excinfo.value.message}\nhint: {excinfo.value.hint}"


@pytest.mark.parametrize(("table", "expected"), [
    ({"format": "ext2", "unikernel": "k"}, "image.data.unikernel: unknown field"),
    ({"format": "fat", "owner": "1:1"}, "image.data.owner: a FAT file system stores no owners or modes"),
    ({"format": "fat", "files": {"Long Name.txt": "a"}}, "image.data.files: Long Name.txt: cannot store"),
    ({"format": "ext2", "modes": {"a": "999"}}, "image.data.modes: a: mode '999' is not an octal permission"),
    ({"format": "ext2", "owners": {"a": "root:root"}}, "image.data.owners: a: owner 'root:root' is not UID:GID"),
    ({"format": "ext2", "file_mode": 644}, "image.data.file_mode: expected a string"),
    ({"format": "ffs", "label": "X"}, "image.data.label: does not apply to format 'ffs'"),
    ({"format": "iso9660", "size_mib": 8}, "image.data.size_mib: does not apply to format 'iso9660'"),
    ({"format": "fat", "size_mib": 2}, "image.data.size_mib: expected an integer of at least 4 for fat"),
    ({"format": "iso9660", "label": "lower"}, "image.data.label: label 'lower': an ISO volume ID"),
    ({"format": "ext2", "tree": "../up"}, "image.data.tree: expected a directory of the project"),
    ({"format": "ext2", "files": {"../x": "a"}}, "image.data.files: '../x': '../x' is not a clean relative path"),
])  # fmt: skip
def test_plan_errors_name_the_table_and_field(table: Mapping[str, object], expected: str) -> None:
    message = plan_error(table)
    assert message.startswith("ukbuild.toml:7: ") and expected in message, message


def test_grub_refuses_json_cmdline_at_plan_time() -> None:
    meta = ImageMetadata(kernel="kernel/hello.elf", kernel_format="multiboot-elf32", cmdline='{"a":1}')
    with pytest.raises(ConfigError) as excinfo:
        image_action("disk", {"unikernel": "k", "format": "raw", "bootloader": "grub"}, meta, ORIGIN)
    assert excinfo.value.message.startswith("ukbuild.toml:7: image.disk.cmdline: the kernel command line cannot "
                                            "pass through GRUB unchanged")  # fmt: skip
    assert 'bootloader = "syslinux"' in (excinfo.value.hint or "")
    with pytest.raises(ConfigError, match=r"image\.disk\.bootloader: unknown boot loader 'lilo'"):
        image_action("disk", {"unikernel": "k", "format": "raw", "bootloader": "lilo"}, meta, ORIGIN)


@pytest.mark.realtool("grub-mkimage")
def test_grub_raw_image_uses_the_grub_toolchain() -> None:
    meta = ImageMetadata(kernel="kernel/hello.elf", kernel_format="multiboot-elf32", cmdline="a=b")
    spec, action = image_action("disk", {"unikernel": "k", "format": "raw", "bootloader": "grub"}, meta, ORIGIN)
    assert action.toolchain == "ukbuild-emit-raw-grub" and action.toolchain in emit_toolchains({"raw"}, ORIGIN)
    assert action.argv[-1] == "--bootloader=grub"
    assert [i.label for i in action.inputs if i.label.startswith("ext:")] == ["ext:grub-boot.img@.boot-inputs/boot.img"]
    assert spec.output == "image/disk.img"


TABLES: dict[str, dict[str, object]] = {
    "www-ext2": {"format": "ext2", "tree": "www/", "files": {"etc/motd": "motd.txt"}, "label": "WWW",
                 "modes": {"etc/motd": "0600"}, "owners": {"index.html": "1000:100"}},
    "www-iso": {"format": "iso9660", "tree": "www/", "owner": "33:33", "file_mode": "0444", "dir_mode": "0555"},
    "www-fat": {"format": "fat", "files": {"index.htm": "www/index.html", "etc/motd": "motd.txt"}},
    "www-ffs": {"format": "ffs", "tree": "www", "size_mib": 6},
}  # fmt: skip


def data_project(root: Path) -> Project:
    (root / "www" / "css").mkdir(parents=True)
    (root / "www" / "index.html").write_text("<h1>hi</h1>\n")
    (root / "www" / "css" / "site.css").write_text("body{}\n")
    (root / "motd.txt").write_text("hello\n")
    actions, toolchains, images = {}, {}, {}
    for name, table in TABLES.items():
        spec, action = data_image_action(name, table, ORIGIN)
        actions[name], images[name] = action, spec
        toolchains.update(emit_toolchains({spec.format}, ORIGIN))
    return Project(name="data", root=str(root), actions=actions, platform=host_platform(), toolchains=toolchains,
                   images=images)  # fmt: skip


@pytest.mark.realtool("mke2fs", "debugfs", "e2fsck", "xorriso", "makefs", "mdir")
def test_data_images_build_through_the_engine(tmp_path: Path) -> None:
    project = data_project(tmp_path / "p")
    options = api.BuildOptions(cache_dir=tmp_path / "cache", jobs=2)
    result = api.Build(project, list(TABLES), options).run()
    assert result.ok, result.errors
    out = result.out_dir / "image"
    assert sorted(p.name for p in out.iterdir()) == ["www-ext2.ext2", "www-fat.fat", "www-ffs.ffs", "www-iso.iso"]
    subprocess.run(["e2fsck", "-fn", str(out / "www-ext2.ext2")], check=True, capture_output=True)
    ext2 = subprocess.run(["debugfs", "-R", "ls -l /", str(out / "www-ext2.ext2")], capture_output=True, text=True,
                          check=True).stdout  # fmt: skip
    assert " 1000    100      12 " in ext2 and "css" in ext2 and "etc" in ext2
    iso = subprocess.run(["xorriso", "-no_rc", "-indev", str(out / "www-iso.iso"), "-find", "/", "-exec", "lsdl"],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert "-r--r--r--    1 33       33             12 Jan  1  1980 '/index.html'" in iso
    assert "dr-xr-xr-x    1 33       33              0 Jan  1  1980 '/css'" in iso
    fat = subprocess.run(["mdir", "-i", str(out / "www-fat.fat"), "-/", "::"], capture_output=True, text=True,
                         check=True, env={"MTOOLS_SKIP_CHECK": "1", "PATH": "/usr/bin:/bin"}).stdout  # fmt: skip
    assert "index    htm        12" in fat and "motd                 6" in fat
    assert (out / "www-ffs.ffs").stat().st_size == 6 << 20
    again = api.Build(data_project(tmp_path / "q"), list(TABLES), attrs.evolve(options, out_dir=tmp_path / "q" / "out")).run()
    assert again.ok and again.count("cached") == len(TABLES)
    for name in TABLES:
        spec = project.images[name]
        assert (again.out_dir / spec.output).read_bytes() == (result.out_dir / spec.output).read_bytes()  # type: ignore[attr-defined]
