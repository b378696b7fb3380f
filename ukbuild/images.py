"""``[image.NAME]`` tables → image actions (raw disk, ISO, OCI layout and archives).

    [image.hello-disk]
    unikernel = "hello"
    format = "raw"          # raw | iso | oci | oci-archive | docker-archive
    cmdline = "…"           # default: what the unikernel's backend says
    size_mib = 16           # raw only (default: fits the kernel, at least 8)
    label = "UKBOOT"        # raw and iso volume label
    files = { "motd.txt" = "data/motd.txt" }   # extra files in the image
    tag = "latest"          # OCI formats
    compression = "gzip"    # OCI layers: gzip | zstd | none
    urunc = true            # OCI: add urunc keys (guest and monitor from the backend)
    kraftkit = false        # OCI: add a KraftKit qemu/x86_64 entry

Each image is one action running ``ukbuild-emit`` on the staged kernel;
the bootloader files it reads are inputs (keyed by content), and the tools
it drives (``syslinux``, ``xorriso``) are its toolchain.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from .errors import ConfigError
from .model import Action, ExternalInput, Origin, OutputInput, PathInput, ToolchainSpec
from .plugins import ImageMetadata

STEP_VERSION = 1
OPTIONS = {"unikernel", "format", "cmdline", "size_mib", "label", "files", "tag", "compression", "urunc", "kraftkit"}
#: format → (output path template, tools it drives, bootloader files it reads)
FORMATS: Mapping[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "raw": ("image/{name}.img", ("syslinux",), ("mbr.bin", "mboot.c32", "libcom32.c32", "ldlinux.c32")),
    "iso": ("image/{name}.iso", ("xorriso",), ("isolinux.bin", "mboot.c32", "libcom32.c32", "ldlinux.c32")),
    "oci": ("oci/{name}/", (), ()),
    "oci-archive": ("image/{name}.oci.tar", (), ()),
    "docker-archive": ("image/{name}.docker.tar", (), ()),
}


@attrs.frozen
class ImageSpec:
    name: str
    unikernel: str
    format: str
    output: str
    origin: Origin


def toolchain_name(fmt: str) -> str:
    return f"ukbuild-emit-{fmt}"


def emit_toolchains(formats: set[str], origin: Origin) -> dict[str, ToolchainSpec]:
    """The implicit toolchains image actions use: the host tools each format drives."""
    return {
        toolchain_name(f): ToolchainSpec(toolchain_name(f), FORMATS[f][1], origin, launchers=("ukbuild-emit",))
        for f in formats
    }


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
    unikernel = str(table["unikernel"])
    template, _tools, boot_files = FORMATS[str(fmt)]
    output = template.format(name=name)
    cmdline = table.get("cmdline", meta.cmdline)
    if not isinstance(cmdline, str):
        raise bad("cmdline", "expected a string", 'cmdline = "…"')
    argv = ["ukbuild-emit", str(fmt), "--kernel", meta.kernel, "--out", output.rstrip("/"), "--cmdline", cmdline,
            "--name", name]
    for key, flag in (("label", "--label"), ("tag", "--tag"), ("compression", "--compression")):
        if key in table:
            if not isinstance(table[key], str):
                raise bad(key, "expected a string", f'{key} = "…"')
            argv += [flag, str(table[key])]
    if "size_mib" in table:
        size = table["size_mib"]
        if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
            raise bad("size_mib", "expected a positive integer", "size_mib = 16")
        argv += ["--size-mib", str(size)]
    inputs: list[object] = [OutputInput(unikernel)]
    files = table.get("files", {})
    if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
        raise bad("files", "expected a table of image name = project path", 'files = { "a.txt" = "data/a.txt" }')
    for image_name, path in sorted(files.items()):
        inputs.append(PathInput(path, f"files/{image_name}"))
        argv += ["--file", f"{image_name}=files/{image_name}"]
    if table.get("urunc"):
        if meta.guest is None or meta.monitor is None:
            raise bad("urunc", f"the {unikernel} kernel is not something urunc can run",
                      "urunc runs Rumprun (solo5 bakes) and MirageOS kernels; drop urunc for this one")
        argv += ["--urunc", f"{meta.guest}:{meta.monitor}"]
        if "bake" in meta.devices:
            argv += ["--bake", meta.devices["bake"]]
    if table.get("kraftkit"):
        argv.append("--kraftkit")
    for boot_file in boot_files:
        inputs.append(ExternalInput(_bootloader_path(boot_file), f".boot-inputs/{boot_file}", f"syslinux-{boot_file}"))
    action = Action(
        name=name, argv=argv, outputs=[output], inputs=inputs, toolchain=toolchain_name(str(fmt)),
        step=f"image/{fmt}", step_version=STEP_VERSION, origin=origin,
    )
    return ImageSpec(name, unikernel, str(fmt), output, origin), action


def _bootloader_path(name: str) -> str:
    from .disk.syslinux import find_file  # noqa: PLC0415

    return str(find_file(name))
