"""KraftKit-compatible images, so ``kraft run`` and ``runu`` find the kernel.

KraftKit selects by ``platform.os`` = the Unikraft platform (``qemu``, …) and
``platform.architecture`` = ``x86_64``/``arm64``/``arm``, then unpacks every
layer and boots the hard-wired ``unikraft/bin/kernel``.  The layer is an
uncompressed annotated tar without parent-directory entries, as ``kraft pkg``
writes it.  Such a manifest can sit beside ``linux/<GOARCH>`` entries in one
index: stock tools pick those, KraftKit picks this one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ukbuild.errors import EmitError

from .model import ImageConfig, Manifest, Platform, image_manifest
from .tar import TarEntry, make_layer

KERNEL_PATH = "/unikraft/bin/kernel"
INITRD_PATH = "/unikraft/bin/initrd"
KERNEL_ANNOTATION = "org.unikraft.kernel.image"
INITRD_ANNOTATION = "org.unikraft.kernel.initrd"
KERNEL_VERSION_ANNOTATION = "org.unikraft.kernel.version"
IMAGE_NAME_ANNOTATION = "org.unikraft.image.name"

PLATFORMS = ("qemu", "fc", "xen", "kraftcloud")
ARCHITECTURES = ("x86_64", "arm64", "arm")


def kraftkit_manifest(
    kernel: bytes,
    *,
    plat: str = "qemu",
    arch: str = "x86_64",
    initrd: bytes | None = None,
    kconfig: Sequence[str] = (),
    unikraft_version: str | None = None,
    image_name: str | None = None,
    cmd: Sequence[str] = (),
    env: Sequence[str] = (),
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    mtime: int = 0,
    created: int | None = None,
) -> Manifest:
    """A manifest as ``kraft pkg`` writes it for one (plat, arch, kconfig) target.

    ``kconfig`` holds ``CONFIG_FOO=y`` strings; they become the sorted
    ``os.features`` that ``kraft run`` matches requested options against.
    """
    if plat not in PLATFORMS or arch not in ARCHITECTURES:
        raise EmitError(
            f"KraftKit has no target {plat}/{arch}",
            hint=f"platforms: {', '.join(PLATFORMS)}; architectures: {', '.join(ARCHITECTURES)}",
            reason="bad-platform",
        )
    bad = [item for item in kconfig if not item.startswith("CONFIG_") or "=" not in item]
    if bad:
        raise EmitError(
            f"KraftKit kconfig entries must look like CONFIG_FOO=y: {', '.join(bad)}",
            reason="bad-platform",
        )
    platform = Platform(
        plat, arch, os_version=unikraft_version, os_features=tuple(sorted(set(kconfig)))
    )
    layers = [
        make_layer(
            [TarEntry.file(KERNEL_PATH, kernel, 0o755)],
            compression="none",
            mtime=mtime,
            parents=False,
            annotations={KERNEL_ANNOTATION: KERNEL_PATH},
        )
    ]
    if initrd is not None:
        layers.append(
            make_layer(
                [TarEntry.file(INITRD_PATH, initrd)],
                compression="none",
                mtime=mtime,
                parents=False,
                annotations={INITRD_ANNOTATION: INITRD_PATH},
            )
        )
    manifest_annotations = dict(annotations or {})
    if unikraft_version:
        manifest_annotations[KERNEL_VERSION_ANNOTATION] = unikraft_version
    if image_name:
        manifest_annotations[IMAGE_NAME_ANNOTATION] = image_name
    return image_manifest(
        layers,
        platform=platform,
        config=ImageConfig(cmd=cmd, env=env, labels=labels or {}),
        created=created,
        annotations=manifest_annotations,
        config_descriptor_platform=True,
    )
