"""The Rumprun backend: programs cross-built with a Rumprun toolchain, baked into a kernel.

    [toolchain.rr]
    backend = "rumprun"
    prefix = "/opt/rumprun"          # optional; $UKBUILD_RUMPRUN_PREFIX wins, PATH is the fallback

    [package.hello]                  # "ferment": any build system, with the cross environment
    toolchain = "rr"
    source = { path = "hello" }
    steps = ["./configure --host=$UKBUILD_HOST --prefix=$PREFIX", "make", "make install DESTDIR=$DESTDIR"]

    [unikernel.hello]                # bake (and optionally strip) into kernel/hello.bin
    toolchain = "rr"
    programs = [{ package = "hello", path = "usr/bin/hello" }]

The options of the unikernel table are documented in :mod:`ukbuild_rumprun.options`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from ukbuild.errors import BuildError, RunError
from ukbuild.model import Action, OutputInput, PathInput
from ukbuild.multiboot import check_multiboot
from ukbuild.plugins import (
    Backend,
    Check,
    DetectContext,
    Detection,
    ImageMetadata,
    UnikernelSpec,
    hookimpl,
)
from ukbuild.runner import Drive, QemuLaunch

from . import detect as _detect
from .options import RumprunOptions, parse

#: What a guest prints when a program ends; group 1 is its status.
_MAIN_RETURNED = r'=== main\(\) of "{name}" returned (-?\d+) ==='
#: With one program, exit() ends it too (no "main() returned" line then).
_EXITED = r'=== (?:main\(\) of "{name}" returned |(?:ERROR: )?_exit\()(-?\d+)(?:\) called)? ==='


def kernel_path(name: str) -> str:
    return f"kernel/{name}.bin"


def _kernel_format(opts: RumprunOptions) -> str:
    if opts.platform == "hw":
        return "multiboot-elf32" if opts.arch == "i486" else "multiboot-elf64-aout"
    return "xen-pv" if opts.platform == "xen" else opts.config.replace("_", "-")  # solo5-hvt, solo5-spt


def _require_file(path: Path) -> None:
    if not path.is_file():
        raise BuildError(f"{path.name}: the command exited 0 but wrote no file",
                         hint="read the log: rumprun-bake (or strip) should have written it", reason="missing-output")


def _check_hw_kernel(path: Path) -> None:
    """A hw bake must be a Multiboot kernel QEMU ``-kernel`` loads (ELF64: a.out kludge)."""
    _require_file(path)
    header = check_multiboot(path.read_bytes(), origin=path.name)
    if not header.qemu_loadable:
        raise BuildError(f"{path.name}: an ELF64 Multiboot kernel without the a.out kludge",
                         hint="bake with a hw_* configuration of a Rumprun toolchain", reason="not-multiboot")


def _check_elf(path: Path) -> None:
    """Xen and Solo5 bakes must at least be ELF executables."""
    _require_file(path)
    with path.open("rb") as f:
        head = f.read(18)
    if head[:4] != b"\x7fELF" or int.from_bytes(head[16:18], "little") != 2:
        raise BuildError(f"{path.name}: not an ELF executable (ET_EXEC)",
                         hint="check the bake's log; rumprun-bake should link a static executable",
                         reason="not-elf-executable")


class RumprunBackend(Backend):
    NAME = "rumprun"
    KEY_VERSION = 1
    REQUIRES_API = (1, 0)
    ENV_VAR = _detect.ENV_VAR
    DESCRIPTION = "Rumprun unikernels: cross builds with a Rumprun toolchain, rumprun-bake, QEMU"
    TOOLCHAIN_OPTIONS = frozenset({"prefix"})
    UNIKERNEL_OPTIONS = frozenset({
        "programs", "config", "arch", "strip", "bake_conf", "bake_commands",
        "env", "hostname", "net", "blk", "memory",
    })

    def detect(self, options: Mapping[str, object], context: DetectContext) -> Detection:
        unknown = dict.fromkeys(_detect.KNOWN_CONFIGS, False)
        searched: list[str] = []
        try:
            where, bin_dirs = _detect.candidates(options, context.environ)
            searched = bin_dirs
            located = _detect.locate(bin_dirs)
            if located is None:
                tools = " or ".join(f"{t}-gcc" for t in _detect.TUPLES)
                msg = f"no rumprun-bake with {tools} next to it (looked in {where})"
                raise _detect.NotFound(msg)
            found = _detect.detect(*located, file_digest=context.file_digest, versions=context.versions)
        except _detect.NotFound as exc:
            return Detection(self.NAME, None, searched=tuple(searched), reason=str(exc), env_var=self.ENV_VAR,
                             targets=unknown)
        return Detection(self.NAME, found.toolchain, version=found.version, searched=tuple(searched),
                         env_var=self.ENV_VAR, targets=found.configs)

    def check_options(self, spec: UnikernelSpec) -> None:
        super().check_options(spec)
        parse(spec)

    def plan(self, unikernel: UnikernelSpec) -> Sequence[Action]:
        opts = parse(unikernel)
        name, kernel = unikernel.name, kernel_path(unikernel.name)
        baked = kernel.replace(".bin", ".unstripped.bin") if opts.strip else kernel
        argv = ["rumprun-bake"]
        inputs: list[PathInput | OutputInput] = []
        if opts.bake_conf is not None:
            argv += ["-c", opts.bake_conf]
            inputs.append(PathInput(opts.bake_conf, opts.bake_conf))
        for command in opts.bake_commands:
            argv += ["-m", command]
        argv += [opts.config, baked, *(s.path for s in opts.staged)]
        inputs += [OutputInput(a) for a in dict.fromkeys(s.action for s in opts.staged)]
        check = "rumprun/hw-kernel" if opts.platform == "hw" else "rumprun/elf"
        bake = Action(
            name=f"{name}.bake" if opts.strip else name,
            argv=argv, outputs=[baked], inputs=inputs, env={"RUMPRUN_WARNING_STFU": "please"},
            toolchain=unikernel.toolchain, step="rumprun/bake", step_version=self.KEY_VERSION,
            checks=[(baked, check)], origin=unikernel.origin,
        )
        if not opts.strip:
            return [bake]
        strip = Action(
            name=name, argv=[f"{opts.tuple}-strip", "-o", kernel, baked], outputs=[kernel],
            inputs=[OutputInput(bake.name)], toolchain=unikernel.toolchain, step="rumprun/strip",
            step_version=self.KEY_VERSION, checks=[(kernel, check)], origin=unikernel.origin,
        )
        return [bake, strip]

    def checks(self) -> Mapping[str, Check]:
        return {"rumprun/hw-kernel": _check_hw_kernel, "rumprun/elf": _check_elf}

    def launch(self, unikernel: UnikernelSpec, kernel: Path, args: Sequence[str]) -> QemuLaunch:
        opts = parse(unikernel)
        if opts.platform != "hw":
            monitor = "Xen (xl)" if opts.platform == "xen" else "a Solo5 tender (solo5-hvt/solo5-spt) or urunc"
            raise RunError(f"{unikernel.name}: a {opts.config} kernel boots under {monitor}, not QEMU",
                           hint="bake it with config = \"hw_virtio\" to run it with ukbuild run",
                           reason="not-runnable")
        runtime = opts.runtime.with_args(args)
        problem = runtime.check_args()
        if problem:
            raise RunError(f"{unikernel.name}: {problem}", hint="pass arguments without spaces, quotes or backslashes",
                           reason="bad-usage")
        pattern = _EXITED if len(runtime.programs) == 1 else _MAIN_RETURNED
        extra = ["-vga", "none"]  # without it a Rumprun guest's console goes to VGA, not serial
        for index, _net in enumerate(runtime.net):
            extra += ["-netdev", f"user,id=net{index}", "-device", f"virtio-net-pci,netdev=net{index}"]
        root = Path(unikernel.project_root)
        return QemuLaunch(
            kernel=kernel, append=runtime.render(), memory_mib=opts.memory, extra_args=extra,
            drives=[Drive(root / b.image, "virtio", readonly=b.readonly) for b in runtime.blk],
            exit_line=pattern.format(name=re.escape(runtime.exit_program)), debug_exit=False,
        )

    def image_metadata(self, unikernel: UnikernelSpec) -> ImageMetadata:
        opts = parse(unikernel)
        monitor = {"hw": "qemu", "xen": None, "solo5": opts.config.removeprefix("solo5_")}[opts.platform]
        return ImageMetadata(
            kernel=kernel_path(unikernel.name), kernel_format=_kernel_format(opts), cmdline=opts.runtime.render(),
            guest="rumprun", monitor=monitor, devices={"bake": opts.config},
        )


@hookimpl
def ukbuild_backends() -> list[type[Backend]]:
    return [RumprunBackend]
