"""The targets the backend knows: MirageOS's ``-t`` values and what each produces."""

from __future__ import annotations

from typing import Literal

import attrs

Family = Literal["solo5", "unix", "unikraft"]


@attrs.frozen
class Target:
    """One ``mirage configure -t`` value.

    ``abi`` is the Solo5 ABI the binary is linked for (what ``solo5-elftool
    query-abi`` must answer); ``tender`` the Solo5 program that runs it;
    ``monitor`` what urunc calls the monitor.
    """

    name: str
    family: Family
    ext: str
    abi: str | None = None
    tender: str | None = None
    monitor: str | None = None

    def artefact(self, name: str) -> str:
        """The file ``dune build ./dist`` writes, relative to the unikernel directory."""
        return f"dist/{name}.{self.ext}" if self.ext else f"dist/{name}"


TARGETS: dict[str, Target] = {t.name: t for t in (
    Target("unix", "unix", ""),
    Target("hvt", "solo5", "hvt", abi="hvt", tender="solo5-hvt", monitor="hvt"),
    Target("spt", "solo5", "spt", abi="spt", tender="solo5-spt", monitor="spt"),
    Target("virtio", "solo5", "virtio", abi="virtio", monitor="qemu"),
    Target("muen", "solo5", "muen", abi="muen"),
    Target("xen", "solo5", "xen", abi="xen"),
    Target("qubes", "solo5", "xen", abi="xen"),
    Target("unikraft-qemu", "unikraft", "qemu"),
    Target("unikraft-firecracker", "unikraft", "fc"),
)}

#: The ABIs a bare Solo5 C unikernel can be linked for (Solo5 0.12 on x86_64).
SOLO5_ABIS = ("hvt", "spt", "virtio", "muen", "xen")
