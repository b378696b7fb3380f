"""The Multiboot backend: freestanding C and assembly → a Multiboot kernel, host GCC only.

It works on every machine with gcc and GNU ld, which makes it ukbuild's
"hello world" backend and the worked example of a third-party backend.

    [toolchain.mb]
    backend = "multiboot"

    [unikernel.hello]
    toolchain = "mb"
    sources = ["hello.c"]          # the application: defines uk_app_main()
    arch = "i386"                  # or "x86_64" (ELF64 with the a.out kludge)
    cmdline = "boot arguments"     # what `ukbuild run` and images pass by default
    include = ["include"]          # extra header directories (optional)

Each source (the runtime's and the application's) is its own compile action,
then one link action produces ``kernel/NAME.elf``, checked for a valid
Multiboot header before it is cached.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath

from ukbuild.errors import ConfigError, ToolchainError
from ukbuild.model import Action, ExternalInput, OutputInput, PathInput
from ukbuild.multiboot import check_multiboot
from ukbuild.plugins import Backend, Check, DetectContext, Detection, ImageMetadata, UnikernelSpec, hookimpl
from ukbuild.runner import QemuLaunch
from ukbuild.toolchains import HOST_SEARCH_PATH, detect_host_toolchain

from .compile import KERNEL_DIR, VARIANTS, compile_argv, link_argv, runtime_sources

RUNTIME = "runtime"
TOOLS = ("gcc", "ld", "as")


def kernel_path(name: str) -> str:
    return f"kernel/{name}.elf"


def _check_kernel(path: Path) -> None:
    check_multiboot(path.read_bytes(), origin=path.name)


class MultibootBackend(Backend):
    NAME = "multiboot"
    KEY_VERSION = 1
    REQUIRES_API = (1, 0)
    DESCRIPTION = "freestanding C/assembly to Multiboot kernels (host gcc and ld)"
    UNIKERNEL_OPTIONS = frozenset({"sources", "arch", "cmdline", "include"})

    def detect(self, options: Mapping[str, object], context: DetectContext) -> Detection:
        try:
            toolchain = detect_host_toolchain(
                TOOLS, file_digest=context.file_digest, versions=context.versions, name=self.NAME
            )
        except ToolchainError as exc:
            return Detection(self.NAME, None, searched=HOST_SEARCH_PATH, reason=exc.message,
                             targets=dict.fromkeys(VARIANTS, False))
        gcc = toolchain.tool("gcc")
        return Detection(self.NAME, toolchain, version=gcc.version if gcc else None,
                         searched=HOST_SEARCH_PATH, targets=dict.fromkeys(VARIANTS, True))

    def check_options(self, spec: UnikernelSpec) -> None:
        super().check_options(spec)
        where = f"{spec.origin}: unikernel.{spec.name}"
        sources = spec.options.get("sources")
        if not isinstance(sources, list) or not sources or not all(isinstance(s, str) for s in sources):
            raise ConfigError(f"{where}.sources: expected a non-empty list of source files",
                              hint='sources = ["hello.c"]', reason="bad-value")
        if spec.options.get("arch", "i386") not in VARIANTS:
            raise ConfigError(f"{where}.arch: expected one of {', '.join(VARIANTS)}",
                              hint='arch = "i386"', reason="bad-value")
        for key in ("cmdline",):
            if not isinstance(spec.options.get(key, ""), str):
                raise ConfigError(f"{where}.{key}: expected a string", hint=f'{key} = "…"', reason="bad-value")
        include = spec.options.get("include", [])
        if not isinstance(include, list) or not all(isinstance(i, str) for i in include):
            raise ConfigError(f"{where}.include: expected a list of directories", hint='include = ["include"]',
                              reason="bad-value")

    def plan(self, unikernel: UnikernelSpec) -> Sequence[Action]:
        opts = unikernel.options
        variant = str(opts.get("arch", "i386"))
        app = [str(s) for s in opts["sources"]]  # type: ignore[union-attr]
        include = tuple(str(i).rstrip("/") for i in opts.get("include", []))  # type: ignore[union-attr]
        runtime = ExternalInput(str(KERNEL_DIR), RUNTIME, f"multiboot-runtime-{variant}")
        sources = [(str(p), True) for p in runtime_sources(variant, RUNTIME)] + [(s, False) for s in app]
        actions: list[Action] = []
        objects: list[str] = []
        for index, (source, is_runtime) in enumerate(sources):
            stem = PurePosixPath(source).stem
            obj = f"obj/{unikernel.name}/{index}-{stem}.o"
            inputs = [runtime] + ([] if is_runtime else [PathInput(source, source)])
            inputs += [PathInput(d, d) for d in include]
            actions.append(Action(
                name=f"{unikernel.name}.compile[{index}-{stem}]",
                argv=compile_argv(variant, source, obj, include_dirs=include, runtime_dir=RUNTIME),
                outputs=[obj], inputs=inputs, toolchain=unikernel.toolchain,
                step="multiboot/compile", step_version=self.KEY_VERSION, origin=unikernel.origin,
            ))
            objects.append(obj)
        output = kernel_path(unikernel.name)
        actions.append(Action(
            name=unikernel.name,
            argv=link_argv(variant, tuple(objects), output, runtime_dir=RUNTIME),
            outputs=[output],
            inputs=[runtime, *(OutputInput(a.name) for a in actions)],
            toolchain=unikernel.toolchain,
            step="multiboot/link", step_version=self.KEY_VERSION,
            checks=[(output, "multiboot/kernel")], origin=unikernel.origin,
        ))
        return actions

    def checks(self) -> Mapping[str, Check]:
        return {"multiboot/kernel": _check_kernel}

    def launch(self, unikernel: UnikernelSpec, kernel: Path, args: Sequence[str]) -> QemuLaunch:
        cmdline = " ".join([str(unikernel.options.get("cmdline", "")), *args]).strip()
        return QemuLaunch(kernel=kernel, append=cmdline, debug_exit=True)

    def image_metadata(self, unikernel: UnikernelSpec) -> ImageMetadata:
        variant = unikernel.options.get("arch", "i386")
        return ImageMetadata(
            kernel=kernel_path(unikernel.name),
            kernel_format="multiboot-elf32" if variant == "i386" else "multiboot-elf64-aout",
            cmdline=str(unikernel.options.get("cmdline", "")),
        )


@hookimpl
def ukbuild_backends() -> list[type[Backend]]:
    return [MultibootBackend]
