"""Images that urunc can run: ``com.urunc.unikernel.*`` keys in three places.

urunc reads the keys from runtime annotations, which recent shims fill from
the manifest annotations and config Labels; older set-ups only find
``/urunc.json`` in the rootfs (every value base64).  ukbuild writes all three
so that any of them works.  Arguments go in ``config.Cmd`` (urunc >= 0.7);
the deprecated ``cmdline`` key is written only in the legacy profile.
"""

from __future__ import annotations

import base64
import posixpath
import re
from collections.abc import Mapping, Sequence

import attrs

from ukbuild.errors import EmitError

from .model import ImageConfig, Manifest, Platform, canonical_json, image_manifest
from .tar import Compression, TarEntry, make_layer

PREFIX = "com.urunc.unikernel."
URUNC_JSON_PATH = "urunc.json"
DEFAULT_BINARY = "/.boot/kernel"

#: Which monitors urunc supports for each guest (urunc's 2026 annotations.go).
GUEST_MONITORS: Mapping[str, tuple[str, ...]] = {
    "rumprun": ("hvt", "spt"),
    "mirage": ("hvt", "spt", "qemu"),
    "unikraft": ("qemu", "firecracker", "hyperlight"),
    "linux": ("qemu", "firecracker", "cloud-hypervisor"),
    "mewz": ("qemu",),
    "hermit": ("qemu",),
    "freebsd": ("qemu", "firecracker"),
}
SOLO5_MONITORS = ("hvt", "spt")
RUMPRUN_BAKES = {"hvt": "solo5_hvt", "spt": "solo5_spt"}

_PATH_RE = re.compile(r"[A-Za-z0-9._/-]+\Z")
_SOLO5_NAME_RE = re.compile(r"[A-Za-z0-9]{1,67}\Z")


def _check_path(key: str, path: str | None, *, allow_root: bool = False) -> None:
    if path is None:
        return
    if (
        not _PATH_RE.match(path)
        or not path.startswith("/")
        or posixpath.normpath(path) != path
        or "//" in path
        or (path == "/" and not allow_root)
        or len(path.encode()) > 4096
    ):
        raise EmitError(
            f"urunc {key} path {path!r} is not a clean absolute path",
            hint="use letters, digits and '._/-' only, e.g. /.boot/kernel; no '..', no trailing '/'",
            reason="bad-urunc-path",
        )


@attrs.frozen
class UruncSpec:
    """What urunc needs to boot the image.

    ``bake`` is the Rumprun bake target of the kernel when known (``hw_virtio``,
    ``solo5_hvt``, …); it lets a wrong bake fail here instead of at run time.
    ``legacy_cmdline`` adds the ``cmdline`` key for urunc older than 0.7.
    """

    unikernel_type: str
    hypervisor: str
    binary: str = DEFAULT_BINARY
    initrd: str | None = None
    block: str | None = None
    blk_mnt_point: str | None = None
    mount_rootfs: bool | None = None
    unikernel_version: str | None = None
    solo5_net_dev: str | None = None
    solo5_blk_dev: str | None = None
    bake: str | None = None
    legacy_cmdline: bool = False

    def validate(self) -> None:
        """Raise ``EmitError`` unless urunc can run this combination."""
        monitors = GUEST_MONITORS.get(self.unikernel_type)
        if monitors is None:
            raise EmitError(
                f"urunc does not know the unikernel type {self.unikernel_type!r}",
                hint="use one of " + ", ".join(sorted(GUEST_MONITORS)),
                reason="urunc-unsupported",
            )
        if self.hypervisor not in monitors:
            hint = f"urunc runs {self.unikernel_type} on {', '.join(monitors)}"
            if self.unikernel_type == "rumprun":
                hint += "; bake the kernel with solo5_hvt or solo5_spt instead of hw_* and pick hvt or spt"
            raise EmitError(
                f"urunc cannot run a {self.unikernel_type} guest on {self.hypervisor!r}",
                hint=hint,
                reason="urunc-unsupported",
            )
        if self.unikernel_type == "rumprun" and self.bake is not None:
            wanted = RUMPRUN_BAKES[self.hypervisor]
            if self.bake != wanted:
                raise EmitError(
                    f"a Rumprun kernel baked for {self.bake!r} cannot run under urunc on {self.hypervisor}",
                    hint=f"re-bake it with {wanted} (urunc runs Rumprun only on Solo5 hvt/spt)",
                    reason="urunc-unsupported",
                )
        for key, path in (("binary", self.binary), ("initrd", self.initrd), ("block", self.block)):
            _check_path(key, path)
        _check_path("blkMntPoint", self.blk_mnt_point, allow_root=True)
        if self.blk_mnt_point is not None and self.block is None:
            raise EmitError(
                "urunc blkMntPoint is set but no block image is",
                hint="give the block image's path too, or drop the mount point",
                reason="urunc-unsupported",
            )
        for key, name in (("solo5NetDev", self.solo5_net_dev), ("solo5BlkDev", self.solo5_blk_dev)):
            if name is None:
                continue
            if self.hypervisor not in SOLO5_MONITORS:
                raise EmitError(
                    f"urunc {key} applies to Solo5 monitors (hvt, spt), not {self.hypervisor}",
                    reason="urunc-unsupported",
                )
            if not _SOLO5_NAME_RE.match(name):
                raise EmitError(
                    f"Solo5 device name {name!r} for {key} is not 1-67 letters or digits",
                    hint="use the name from the kernel's Solo5 manifest (solo5-elftool query-manifest)",
                    reason="bad-urunc-device",
                )

    def keys(self, cmd: Sequence[str] = ()) -> dict[str, str]:
        """The ``com.urunc.unikernel.*`` keys with plain string values."""
        self.validate()
        blk_mnt_point = self.blk_mnt_point
        if self.block is not None and blk_mnt_point is None:
            blk_mnt_point = "/data" if self.unikernel_type == "rumprun" else "/"
        values = {
            "unikernelType": self.unikernel_type,
            "hypervisor": self.hypervisor,
            "binary": self.binary,
            "initrd": self.initrd,
            "block": self.block,
            "blkMntPoint": blk_mnt_point,
            "mountRootfs": None if self.mount_rootfs is None else str(self.mount_rootfs).lower(),
            "unikernelVersion": self.unikernel_version,
            "solo5NetDev": self.solo5_net_dev,
            "solo5BlkDev": self.solo5_blk_dev,
            "cmdline": " ".join(cmd) if self.legacy_cmdline else None,
        }
        return {PREFIX + key: value for key, value in values.items() if value is not None}


def urunc_json(keys: Mapping[str, str]) -> bytes:
    """The ``/urunc.json`` file: the same keys, every value standard padded base64."""
    return canonical_json(
        {key: base64.b64encode(value.encode()).decode("ascii") for key, value in keys.items()}
    )


def urunc_image(
    spec: UruncSpec,
    kernel: bytes,
    *,
    platform: Platform | str = "linux/amd64",
    cmd: Sequence[str] = (),
    env: Sequence[str] = (),
    initrd: bytes | None = None,
    block: bytes | None = None,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    compression: Compression = "gzip",
    mtime: int = 0,
    created: int | None = None,
) -> Manifest:
    """A one-layer image with the kernel, its initrd/block image and ``/urunc.json``.

    The urunc keys win over same-named entries in ``labels`` and
    ``annotations``; ``Entrypoint`` stays empty as urunc >= 0.7 expects.
    """
    keys = spec.keys(cmd)
    for what, data, path in (
        ("an initrd", initrd, spec.initrd),
        ("a block image", block, spec.block),
    ):
        if (data is None) != (path is None):
            raise EmitError(
                f"urunc image: {what} needs both its content and its path in the spec",
                hint="set UruncSpec.initrd/block to where the file goes, and pass the file",
                reason="urunc-unsupported",
            )
    entries = [
        TarEntry.file(spec.binary, kernel, 0o755),
        TarEntry.file(URUNC_JSON_PATH, urunc_json(keys)),
    ]
    if initrd is not None and spec.initrd is not None:
        entries.append(TarEntry.file(spec.initrd, initrd))
    if block is not None and spec.block is not None:
        entries.append(TarEntry.file(spec.block, block))
    layer = make_layer(entries, compression=compression, mtime=mtime)
    if isinstance(platform, str):
        platform = Platform.parse(platform)
    return image_manifest(
        [layer],
        platform=platform,
        config=ImageConfig(cmd=cmd, env=env, labels={**(labels or {}), **keys}),
        created=created,
        annotations={**(annotations or {}), **keys},
    )
