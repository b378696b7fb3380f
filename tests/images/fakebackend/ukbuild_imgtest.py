"""A test backend whose kernel is a project file and whose image metadata is whatever the table says.

Put this directory on ``PYTHONPATH`` and ``ukbuild`` finds it by its entry
point, so bad image input can be tested through the real ``ukbuild build``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ukbuild.model import Action, PathInput
from ukbuild.plugins import (
    Backend,
    DetectContext,
    Detection,
    ImageMetadata,
    UnikernelSpec,
    hookimpl,
)
from ukbuild.toolchains import detect_host_toolchain


class ImageTestBackend(Backend):
    NAME = "imgtest"
    UNIKERNEL_OPTIONS = frozenset({"kernel", "kernel_format", "guest", "monitor", "bake"})

    def detect(self, options: Mapping[str, object], context: DetectContext) -> Detection:
        toolchain = detect_host_toolchain(["cp"], file_digest=context.file_digest, versions=context.versions)
        return Detection(self.NAME, toolchain, version="cp")

    def plan(self, unikernel: UnikernelSpec) -> Sequence[Action]:
        source = str(unikernel.options["kernel"])
        output = f"kernel/{unikernel.name}.bin"
        return [Action(name=unikernel.name, argv=["cp", source, output], outputs=[output],
                       inputs=[PathInput(source, source)], toolchain=unikernel.toolchain, step="imgtest/cp")]

    def image_metadata(self, unikernel: UnikernelSpec) -> ImageMetadata:
        opts = unikernel.options
        bake = opts.get("bake")
        return ImageMetadata(
            kernel=f"kernel/{unikernel.name}.bin", kernel_format=str(opts.get("kernel_format", "multiboot-elf32")),
            guest=str(opts["guest"]) if "guest" in opts else None,
            monitor=str(opts["monitor"]) if "monitor" in opts else None,
            devices={"bake": str(bake)} if bake else {},
        )


@hookimpl
def ukbuild_backends() -> list[type[Backend]]:
    return [ImageTestBackend]
