"""``[image.NAME]`` tables → image actions (raw disk, ISO, OCI layout and archives, data images).

    [image.hello-disk]
    unikernel = "hello"
    format = "raw"          # raw | iso | oci | oci-archive | docker-archive
    cmdline = "…"           # default: what the unikernel's backend says
    size_mib = 16           # raw only (default: fits the kernel, at least 8)
    label = "UKBOOT"        # raw and iso volume label
    bootloader = "syslinux" # raw only: syslinux (default) | grub
    files = { "motd.txt" = "data/motd.txt" }   # extra files in the image
    tag = "latest"          # OCI formats
    compression = "gzip"    # OCI layers: gzip | zstd | none
    urunc = true            # OCI: add urunc keys (guest and monitor from the backend)
    kraftkit = false        # OCI: add a KraftKit qemu/x86_64 entry

A **data image** has no kernel: a file system for a unikernel to mount
(:mod:`ukbuild.disk.dataimage`)::

    [image.www]
    format = "ext2"         # ext2 | iso9660 | fat | ffs
    tree = "www/"           # a project directory: the image's content
    files = { "etc/motd" = "motd.txt" }         # more files (path in the image = project path)
    size_mib = 8            # ext2, fat, ffs (default: fits the content)
    label = "WWW"           # ext2, iso9660, fat (default "DATA")
    owner = "0:0"           # UID:GID of every entry
    file_mode = "0644"      # every file; dir_mode = "0755" every directory
    modes = { "bin/run" = "0755" }              # per path (file or directory)
    owners = { "home/app" = "1000:1000" }       # per path

Nothing is taken from the checkout but names, bytes and link targets, so
the image is the same whatever the umask or the checkout's owners.  FAT
holds no owners, modes or symlinks and only 8.3 names: asking for them is
an error, not a silent loss.

Each image is one action running ``ukbuild-emit`` on the staged kernel or
tree; the bootloader files it reads are inputs (keyed by content), and the
tools it drives (``syslinux``, ``grub-mkimage``, ``xorriso``, ``mke2fs``,
``debugfs``, ``makefs``) are its toolchain.  What can be checked before
building is checked here, so the error names the table's ``file:line``: a
kernel format raw disks and ISOs cannot boot, a command line the boot
loader would change, a guest/monitor pair urunc refuses, a missing
bootloader file, options that do not apply to the format, owners, modes,
labels and FAT names that cannot be stored.  OCI layouts and archives carry
a build record and an SPDX SBOM as referrers
(:mod:`ukbuild.emitters.provenance`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import TypeVar

import attrs

from .errors import ConfigError, EmitError
from .model import Action, ExternalInput, Input, Origin, OutputInput, PathInput, ToolchainSpec
from .oci.model import check_ref_name
from .plugins import ImageMetadata

T = TypeVar("T")

STEP_VERSION = 2
OPTIONS = {"unikernel", "format", "cmdline", "size_mib", "label", "files", "tag", "compression", "urunc", "kraftkit",
           "bootloader"}
DATA_OPTIONS = {"format", "tree", "files", "size_mib", "label", "owner", "file_mode", "dir_mode", "modes", "owners"}
DISK_FORMATS = ("raw", "iso")
DATA_FORMATS = ("ext2", "iso9660", "fat", "ffs")
BOOTLOADERS = ("syslinux", "grub")
#: Options that only apply to some formats.
ONLY_FOR: Mapping[str, tuple[str, ...]] = {
    "size_mib": ("raw", "ext2", "fat", "ffs"),
    "label": (*DISK_FORMATS, "ext2", "iso9660", "fat"),
    "bootloader": ("raw",),
    "tag": ("oci", "oci-archive", "docker-archive"),
    "compression": ("oci", "oci-archive", "docker-archive"),
    "urunc": ("oci", "oci-archive", "docker-archive"),
    "kraftkit": ("oci", "oci-archive"),
}
COMPRESSIONS = ("gzip", "zstd", "none")
#: format → (output path template, tools it drives, bootloader files it reads)
FORMATS: Mapping[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "raw": ("image/{name}.img", ("syslinux",), ("mbr.bin", "mboot.c32", "libcom32.c32", "ldlinux.c32")),
    "iso": ("image/{name}.iso", ("xorriso",), ("isolinux.bin", "mboot.c32", "libcom32.c32", "ldlinux.c32")),
    "oci": ("oci/{name}/", (), ()),
    "oci-archive": ("image/{name}.oci.tar", (), ()),
    "docker-archive": ("image/{name}.docker.tar", (), ()),
    "ext2": ("image/{name}.ext2", ("mke2fs", "debugfs"), ()),
    "iso9660": ("image/{name}.iso", ("xorriso",), ()),
    "fat": ("image/{name}.fat", (), ()),
    "ffs": ("image/{name}.ffs", ("makefs",), ()),
}
#: Raw disks booted by GRUB use their own toolchain and boot file.
GRUB_TOOLS = ("grub-mkimage",)


@attrs.frozen
class ImageSpec:
    name: str
    #: The kernel it boots or packs (``None`` for data images).
    unikernel: str | None
    format: str
    output: str
    origin: Origin
    #: The ``ref.name`` of OCI layouts and archives (``None`` for disk formats).
    tag: str | None = None


def toolchain_name(fmt: str) -> str:
    return f"ukbuild-emit-{fmt}"


def emit_toolchains(formats: set[str], origin: Origin) -> dict[str, ToolchainSpec]:
    """The implicit toolchains image actions use: the host tools each format drives.

    A raw disk gets two, syslinux's and GRUB's; only the one its action
    uses is ever detected.
    """
    specs = {
        toolchain_name(f): ToolchainSpec(toolchain_name(f), FORMATS[f][1], origin, launchers=("ukbuild-emit",))
        for f in formats
    }
    if "raw" in formats:
        name = toolchain_name("raw-grub")
        specs[name] = ToolchainSpec(name, GRUB_TOOLS, origin, launchers=("ukbuild-emit",))
    return specs


def image_action(name: str, table: Mapping[str, object], meta: ImageMetadata, origin: Origin) -> tuple[ImageSpec, Action]:
    """Validate one ``[image.NAME]`` table and plan its action."""
    where = f"{origin}: image.{name}"

    def bad(field: str, message: str, hint: str) -> ConfigError:
        return ConfigError(f"{where}.{field}: {message}", hint=hint, reason="bad-value")

    for key in table:
        if key not in OPTIONS:
            raise ConfigError(f"{where}.{key}: unknown field", hint="allowed: " + ", ".join(sorted(OPTIONS)),
                              reason="unknown-field")
    fmt = table.get("format", "raw")
    if fmt not in FORMATS:
        raise bad("format", f"unknown format {fmt!r}", "one of: " + ", ".join(FORMATS))
    fmt = str(fmt)
    for key, formats in ONLY_FOR.items():
        if key in table and fmt not in formats:
            raise bad(key, f"does not apply to format {fmt!r}", f"{key} is for: {', '.join(formats)}; remove it")
    unikernel = str(table["unikernel"])
    template, _tools, boot_files = FORMATS[fmt]
    output = template.format(name=name)
    cmdline = table.get("cmdline", meta.cmdline)
    if not isinstance(cmdline, str):
        raise bad("cmdline", "expected a string", 'cmdline = "…"')
    bootloader = table.get("bootloader", "syslinux")
    if bootloader not in BOOTLOADERS:
        raise bad("bootloader", f"unknown boot loader {bootloader!r}", "one of: " + ", ".join(BOOTLOADERS))
    if fmt in DISK_FORMATS:
        _check_disk_kernel(meta, cmdline, bad, grub=bootloader == "grub")
    # --flag=value throughout: a value may start with "-" (MirageOS arguments all do).
    argv = ["ukbuild-emit", fmt, f"--kernel={meta.kernel}", f"--out={output.rstrip('/')}", f"--cmdline={cmdline}",
            f"--name={name}"]
    for key, flag in (("label", "--label"), ("tag", "--tag"), ("compression", "--compression"),
                      ("bootloader", "--bootloader")):
        if key in table:
            if not isinstance(table[key], str):
                raise bad(key, "expected a string", f'{key} = "…"')
            argv.append(f"{flag}={table[key]}")
    if table.get("compression", "gzip") not in COMPRESSIONS:
        raise bad("compression", f"unknown compression {table['compression']!r}", "one of: " + ", ".join(COMPRESSIONS))
    if "tag" in table:
        _check(bad, "tag", lambda: check_ref_name(str(table["tag"])), 'tag = "latest"')
    if "size_mib" in table:
        size = table["size_mib"]
        if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
            raise bad("size_mib", "expected a positive integer", "size_mib = 16")
        argv.append(f"--size-mib={size}")
    inputs: list[Input] = [OutputInput(unikernel)]
    files = table.get("files", {})
    if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
        raise bad("files", "expected a table of image name = project path", 'files = { "a.txt" = "data/a.txt" }')
    for image_name, path in sorted(files.items()):
        inputs.append(PathInput(path, f"files/{image_name}"))
        argv.append(f"--file={image_name}=files/{image_name}")
    if table.get("urunc"):
        argv += _urunc_args(unikernel, meta, bad)
    if table.get("kraftkit"):
        argv.append("--kraftkit")
    if fmt not in DISK_FORMATS:
        argv += [f"--unikernel={unikernel}", f"--kernel-format={meta.kernel_format}"]
    toolchain = toolchain_name(fmt)
    if bootloader == "grub":
        from .disk import grub

        toolchain, boot_files = toolchain_name("raw-grub"), ()
        path = str(grub.MODULE_DIR / "boot.img")
        _check(bad, "bootloader", grub.boot_image, "install the package named above")
        inputs.append(ExternalInput(path, ".boot-inputs/boot.img", "grub-boot.img"))
    for boot_file in boot_files:
        path = _check(bad, "format", functools.partial(_bootloader_path, boot_file), "install the package named above")
        inputs.append(ExternalInput(path, f".boot-inputs/{boot_file}", f"syslinux-{boot_file}"))
    action = Action(
        name=name, argv=argv, outputs=[output], inputs=inputs, toolchain=toolchain,
        step=f"image/{fmt}", step_version=STEP_VERSION, origin=origin,
    )
    tag = None if fmt in DISK_FORMATS else str(table.get("tag", "latest"))
    return ImageSpec(name, unikernel, fmt, output, origin, tag), action


def data_image_action(name: str, table: Mapping[str, object], origin: Origin) -> tuple[ImageSpec, Action]:
    """Validate one ``[image.NAME]`` table of a data format (no kernel) and plan its action."""
    from .disk import dataimage, fat
    from .disk.tree import Owner, clean_path, parse_mode

    where = f"{origin}: image.{name}"

    def bad(field: str, message: str, hint: str) -> ConfigError:
        return ConfigError(f"{where}.{field}: {message}", hint=hint, reason="bad-value")

    for key in table:
        if key not in DATA_OPTIONS:
            hint = "allowed for data images: " + ", ".join(sorted(DATA_OPTIONS))
            if key in OPTIONS:
                hint = f"{key} is for images of a unikernel; " + hint
            raise ConfigError(f"{where}.{key}: unknown field", hint=hint, reason="unknown-field")
    fmt = str(table["format"])
    for key, formats in ONLY_FOR.items():
        if key in table and fmt not in formats:
            raise bad(key, f"does not apply to format {fmt!r}", f"{key} is for: {', '.join(formats)}; remove it")
    if fmt == "fat":
        for key in ("owner", "owners", "file_mode", "dir_mode", "modes"):
            if key in table:
                raise bad(key, "a FAT file system stores no owners or modes",
                          'remove it, or use format = "ext2", "iso9660" or "ffs"')  # fmt: skip
    output = FORMATS[fmt][0].format(name=name)
    argv = ["ukbuild-emit", fmt, "--out", output, "--name", name]
    inputs: list[Input] = []

    def text(key: str, example: str) -> str:
        value = table[key]
        if not isinstance(value, str):
            raise bad(key, "expected a string", f"{key} = {example}")
        return value

    def text_table(key: str, example: str) -> dict[str, str]:
        value = table.get(key, {})
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise bad(key, "expected a table of image path = string", f"{key} = {example}")
        return {_check(bad, key, functools.partial(clean_path, k, where=repr(k)), example): v for k, v in value.items()}

    if "tree" in table:
        tree = text("tree", '"www/"').rstrip("/")
        if not tree or tree.startswith("/") or ".." in tree.split("/"):
            raise bad("tree", f"expected a directory of the project, got {table['tree']!r}", 'tree = "www/"')
        inputs.append(PathInput(tree, "tree"))
        argv += ["--tree", "tree"]
    files = text_table("files", '{ "etc/motd" = "motd.txt" }')
    for image_path, path in sorted(files.items()):
        if fmt == "fat":
            for part in image_path.split("/"):
                _check(bad, "files", functools.partial(fat.short_name, part, where=image_path), "use 8.3 names on FAT")
        inputs.append(PathInput(path, f"files/{image_path}"))
        argv += ["--file", f"{image_path}=files/{image_path}"]
    if "label" in table:
        label = text("label", '"DATA"')
        _check(bad, "label", functools.partial(dataimage.check_label, fmt, label), 'label = "DATA"')
        argv += ["--label", label]
    if "size_mib" in table:
        size, minimum = table["size_mib"], dataimage.MIN_SIZE_MIB[fmt]
        if not isinstance(size, int) or isinstance(size, bool) or size < minimum:
            raise bad("size_mib", f"expected an integer of at least {minimum} for {fmt}", f"size_mib = {minimum * 2}")
        argv.append(f"--size-mib={size}")
    if "owner" in table:
        owner = text("owner", '"0:0"')
        _check(bad, "owner", functools.partial(Owner.parse, owner, where="owner"), 'owner = "0:0"')
        argv += ["--owner", owner]
    for key, flag in (("file_mode", "--file-mode"), ("dir_mode", "--dir-mode")):
        if key in table:
            mode = text(key, '"0644"')
            _check(bad, key, functools.partial(parse_mode, mode, where=key), f'{key} = "0644"')
            argv += [flag, mode]
    for path, mode in sorted(text_table("modes", '{ "bin/run" = "0755" }').items()):
        _check(bad, "modes", functools.partial(parse_mode, mode, where=path), '{ "bin/run" = "0755" }')
        argv += ["--mode", f"{path}={mode}"]
    for path, owner in sorted(text_table("owners", '{ "home/app" = "1000:1000" }').items()):
        _check(bad, "owners", functools.partial(Owner.parse, owner, where=path), '{ "home/app" = "1000:1000" }')
        argv += ["--owner-of", f"{path}={owner}"]
    action = Action(
        name=name, argv=argv, outputs=[output], inputs=inputs, toolchain=toolchain_name(fmt),
        step=f"image/{fmt}", step_version=STEP_VERSION, origin=origin,
    )
    return ImageSpec(name, None, fmt, output, origin), action


def _check(bad: Callable[[str, str, str], ConfigError], field: str, check: Callable[[], T], hint: str) -> T:
    """Run a library check; its ``EmitError`` becomes a ``ConfigError`` at this table's field."""
    try:
        return check()
    except EmitError as exc:
        raise bad(field, exc.message, exc.hint or hint) from exc


def _check_disk_kernel(
    meta: ImageMetadata, cmdline: str, bad: Callable[[str, str, str], ConfigError], *, grub: bool
) -> None:
    """Raw disks and ISOs boot Multiboot kernels, with a command line the boot loader passes verbatim."""
    from .disk import grub as grub_loader
    from .disk import syslinux

    check_cmdline = grub_loader.check_cmdline if grub else syslinux.check_cmdline

    if not meta.kernel_format.startswith("multiboot"):
        raise bad("format", f"a {meta.kernel_format} kernel is not Multiboot and cannot boot from a raw disk or ISO",
                  "raw disks and ISOs need a Multiboot kernel (e.g. Rumprun hw, Solo5 virtio); "
                  "ship Solo5 hvt/spt and other kernels as format = \"oci\" (with urunc = true)")
    _check(bad, "cmdline", lambda: check_cmdline(cmdline), "change the command line")


def _urunc_args(unikernel: str, meta: ImageMetadata, bad: Callable[[str, str, str], ConfigError]) -> list[str]:
    """``--urunc`` and friends, once urunc's allowed guest/monitor pairs accept the kernel."""
    from .oci.urunc import UruncSpec

    if meta.guest is None or meta.monitor is None:
        raise bad("urunc", f"the {unikernel} kernel ({meta.kernel_format}) is not something urunc can run",
                  "urunc runs Rumprun (solo5 bakes) and MirageOS kernels; drop urunc for this one")
    nets = sorted(n for n, kind in meta.devices.items() if kind == "NET_BASIC")
    blks = sorted(n for n, kind in meta.devices.items() if kind == "BLOCK_BASIC")
    spec = UruncSpec(meta.guest, meta.monitor, bake=meta.devices.get("bake"),
                     solo5_net_dev=nets[0] if nets else None, solo5_blk_dev=blks[0] if blks else None)
    _check(bad, "urunc", spec.validate, "drop urunc = true for this kernel")
    argv = [f"--urunc={meta.guest}:{meta.monitor}"]
    for flag, value in (("--bake", spec.bake), ("--solo5-net", spec.solo5_net_dev), ("--solo5-blk", spec.solo5_blk_dev)):
        if value is not None:
            argv.append(f"{flag}={value}")
    return argv


def _bootloader_path(name: str) -> str:
    from .disk.syslinux import find_file

    return str(find_file(name))
