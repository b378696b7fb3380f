"""The launcher image: QEMU in a container, booting one service's unikernel.

Three layers (the launcher-in-container pattern, as in the DockerCon 2015
demo, without its host-side root steps):

1. **base** — ``qemu-system-x86_64``, the shared libraries it loads, the
   firmware it reads (SeaBIOS, the option ROMs of ``-kernel`` boots) and
   ``busybox`` (a static shell, ``ip``, ``nslookup``, ``nc``), taken from the
   build host's Debian packages (``qemu-system-x86``, ``seabios``,
   ``busybox-static`` and the libraries' packages).  One action builds it;
   its inputs are those files by content, so it is cached and rebuilt only
   when one of them changes (an upgraded package).  Shared by every service.
2. **unikernel** — ``/ukbuild/kernel`` and what the service's recipe adds
   to the boot (``/ukbuild/initrd``, the backend's drives under
   ``/ukbuild/drives/``).  An action of its own: editing a volume does not
   pack (and gzip) a 20 MB kernel again.
3. **app** — the service's data images under ``/ukbuild/volumes/``,
   ``/ukbuild/service.env`` (the static guest configuration, fixed at build
   time) and ``/ukbuild/launch``.

At start ``/ukbuild/launch`` reads the container's network facts: whether
it has a network at all (``ip -4 addr``), and the addresses of the linked
services' names through the container's DNS.  It then starts QEMU with a
user-mode network on the app's subnet that publishes the service's ports on
the container's interfaces and forwards connections to a linked service's
app address to that name (``guestfwd`` through ``nc``).  The guest itself
keeps its app address.  ``/dev/kvm``, when the container has it writable,
gives KVM; TCG otherwise (``UKBUILD_QEMU_ACCEL`` overrides).  No extra
capability or device is needed.
"""

from __future__ import annotations

import ipaddress
import os
import shlex
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ukbuild.errors import ConfigError

if TYPE_CHECKING:
    from ukbuild.oci.tar import Layer, TarEntry

#: Firmware files QEMU's ``-machine pc`` with ``-kernel`` reads.
FIRMWARE = (
    "/usr/share/seabios/bios-256k.bin", "/usr/share/seabios/vgabios-stdvga.bin",
    "/usr/share/qemu/kvmvapic.bin", "/usr/share/qemu/linuxboot.bin", "/usr/share/qemu/linuxboot_dma.bin",
    "/usr/share/qemu/multiboot.bin", "/usr/share/qemu/multiboot_dma.bin", "/usr/share/qemu/pvh.bin",
)
#: QEMU modules it loads at run time (Debian builds TCG as a module).
MODULES = ("/usr/lib/x86_64-linux-gnu/qemu/accel-tcg-x86_64.so",)
QEMU = "qemu-system-x86_64"
BUSYBOX = "busybox"
#: busybox applets the launch script uses, linked in /bin.
APPLETS = ("sh", "ip", "nslookup", "nc", "cat", "echo", "grep", "awk", "tr", "sed", "head", "hostname", "sleep",
           "ls", "env", "test", "[")
#: Debian packages the base layer's files come from (recorded in its annotations).
PACKAGES = ("qemu-system-x86", "seabios", "busybox-static")

LAUNCH_SCRIPT = r"""#!/bin/sh
# ukbuild launcher: boot this service's unikernel under QEMU inside the container.
# The static guest configuration is in /ukbuild/service.env (fixed at build time);
# the container's network facts are read here, at start.
set -eu
cd /ukbuild
. ./service.env
accel=tcg
if [ -w /dev/kvm ]; then accel=kvm; fi
accel=${UKBUILD_QEMU_ACCEL:-$accel}
facts=$(ip -4 -o addr show scope global 2>/dev/null | awk '{print $2 "=" $4}' | tr '\n' ' ')
if [ -n "$facts" ] && [ "$UKB_NIC" = 1 ]; then
  user="user,id=n0,ipv6=off,net=$UKB_NET,host=$UKB_SLIRP_HOST,dns=$UKB_SLIRP_DNS,dhcpstart=$UKB_DHCP"
  for port in $UKB_PORTS; do
    user="$user,hostfwd=tcp::$port-$UKB_ADDR:$port"
  done
  for link in $UKB_LINKS; do  # NAME:ADDRESS:PORT
    name=${link%%:*}; rest=${link#*:}; addr=${rest%%:*}; port=${rest#*:}
    user="$user,guestfwd=tcp:$addr:$port-cmd:nc $name $port"
  done
  echo "ukbuild-launch: $UKB_NAME: container network $facts-> guest $UKB_ADDR/$UKB_PREFIX" >&2
  set -- -netdev "$user" -device "virtio-net-pci,netdev=n0,mac=$UKB_MAC,romfile="
else
  [ "$UKB_NIC" = 1 ] || facts="(the guest has no network device)"
  echo "ukbuild-launch: $UKB_NAME: no network for the guest: ${facts:-the container has none}" >&2
  set -- -nic none
fi
for drive in $UKB_DRIVES; do  # FILE:ro|rw
  mode=snapshot=on; [ "${drive#*:}" = ro ] && mode=readonly=on
  set -- "$@" -drive "file=${drive%:*},format=raw,if=virtio,$mode"
done
[ -f initrd ] && set -- "$@" -initrd initrd
exec qemu-system-x86_64 -machine pc -m "$UKB_MEMORY" -display none -monitor none -serial stdio \
  -no-reboot -accel "$accel" -device isa-debug-exit,iobase=0xf4,iosize=0x04 "$@" $UKB_EXTRA \
  -kernel kernel -append "$UKB_APPEND"
"""


def base_inputs() -> list[tuple[str, str]]:
    """(file on this host, path in the layer) of everything the base layer holds.

    Shared libraries come from ``ldd`` of QEMU; each is taken from its real
    file and placed under the real directory of the name the loader asks for
    (merged /usr: /lib → /usr/lib).
    """
    qemu = shutil.which(QEMU, path="/usr/bin:/bin")
    busybox = shutil.which(BUSYBOX, path="/usr/bin:/bin")
    missing = [name for name, path in ((QEMU, qemu), (BUSYBOX, busybox)) if path is None]
    missing += [path for path in (*FIRMWARE, *MODULES) if not os.path.isfile(path)]
    if missing:
        raise ConfigError(
            f"the launcher image's base layer needs {', '.join(missing)} on this host",
            hint="apt-get install qemu-system-x86 busybox-static (or set container = \"none\" for the services)",
            reason="tool-not-found")
    assert qemu is not None and busybox is not None
    files: dict[str, str] = {}
    out = ""
    for binary in (qemu, *MODULES):
        try:
            out += subprocess.run(["ldd", binary], capture_output=True, text=True, check=True, timeout=30).stdout
        except (OSError, subprocess.SubprocessError) as exc:
            raise ConfigError(f"cannot list the libraries of {binary} with ldd: {exc}",
                              hint="install libc-bin (ldd)", reason="tool-not-found") from exc
    for line in out.splitlines():
        parts = line.split()
        name = parts[2] if len(parts) >= 3 and parts[1] == "=>" else parts[0] if parts and parts[0].startswith("/") else ""
        if name.startswith("/"):
            files[_layer_path(name)] = os.path.realpath(name)
    for path in (qemu, busybox, *FIRMWARE, *MODULES):
        files[_layer_path(path)] = os.path.realpath(path)
    return sorted((src, dest) for dest, src in files.items())


def _layer_path(name: str) -> str:
    """Where the file named ``name`` goes in the layer: its directory's real path (merged /usr)."""
    return os.path.join(os.path.realpath(os.path.dirname(name)), os.path.basename(name)).lstrip("/")


def service_env(values: Mapping[str, str]) -> str:
    """``/ukbuild/service.env``: sh assignments, single-quoted."""
    return "".join(f"{key}={shlex.quote(value)}\n" for key, value in sorted(values.items()))


def launch_facts(*, name: str, address: str, prefix: int, network: str, mac: str, slirp_host: str,
                 slirp_dns: str, ports: Sequence[int], links: Sequence[tuple[str, str, int]], memory: int,
                 append: str, drives: Sequence[tuple[str, bool]], extra: Sequence[str],
                 nic: bool = True) -> dict[str, str]:
    """The static part of a service's launch, as ``service.env`` holds it."""
    for arg in extra:
        if any(c.isspace() or c in "'\"\\$`" for c in arg):
            raise ConfigError(f"service {name}: QEMU argument {arg!r} cannot be passed through the launcher",
                              hint="use arguments without white space or quotes", reason="bad-value")
    return {
        "UKB_NAME": name, "UKB_ADDR": address, "UKB_PREFIX": str(prefix), "UKB_NET": network, "UKB_MAC": mac,
        "UKB_DHCP": str(ipaddress.IPv4Network(network).network_address + 3), "UKB_SLIRP_HOST": slirp_host,
        "UKB_SLIRP_DNS": slirp_dns, "UKB_PORTS": " ".join(map(str, ports)),
        "UKB_LINKS": " ".join(f"{n}:{a}:{p}" for n, a, p in links), "UKB_MEMORY": str(memory),
        "UKB_APPEND": append, "UKB_EXTRA": " ".join(extra),
        "UKB_DRIVES": " ".join(f"{path}:{'ro' if ro else 'rw'}" for path, ro in drives),
        "UKB_NIC": "1" if nic else "0",
    }


def package_versions() -> dict[str, str]:
    """The installed versions of :data:`PACKAGES` (for the base layer's annotations), if dpkg knows them."""
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${Version}\\n", *PACKAGES],
                             capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    return dict(line.split(" ", 1) for line in out.splitlines() if " " in line)


def write_base_layer(rootfs: Path, out: Path, *, epoch: int, packages: Mapping[str, str]) -> None:
    """Pack the staged ``rootfs`` (plus merged-/usr and busybox links) as a gzip layer at ``out``."""
    from ukbuild.oci import tar

    entries = tar.entries_from_tree(rootfs)
    for link, target in (("bin", "usr/bin"), ("sbin", "usr/sbin"), ("lib", "usr/lib"), ("lib64", "usr/lib64")):
        if not (rootfs / link).exists():
            entries.append(tar.TarEntry.symlink(link, target))
    entries += [tar.TarEntry.symlink(f"usr/bin/{applet}", "busybox") for applet in APPLETS
                if not (rootfs / "usr/bin" / applet).exists()]
    entries += [tar.TarEntry.directory("tmp", 0o1777), tar.TarEntry.directory("dev"), tar.TarEntry.directory("proc"),
                tar.TarEntry.directory("sys"), tar.TarEntry.directory("etc")]
    entries.append(tar.TarEntry.file("var/tmp/.keep", b""))
    write_layer(entries, out, epoch=epoch, packages=packages)


def write_layer(entries: list[TarEntry], out: Path, *, epoch: int, packages: Mapping[str, str] | None = None) -> None:
    """Pack ``entries`` as a gzip layer: ``OUT.tar.gz``, and ``OUT.json`` with its diff_id,
    media type and the Debian packages its files came from."""
    import json

    from ukbuild.oci import tar

    layer = tar.make_layer(entries, compression="gzip", mtime=epoch)
    out.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{out}.tar.gz").write_bytes(layer.blob.data)
    meta = {"diff_id": layer.diff_id, "media_type": layer.blob.media_type, "packages": dict(packages or {})}
    Path(f"{out}.json").write_text(json.dumps(meta, sort_keys=True, indent=1) + "\n")


def read_layer(prefix: Path) -> tuple[Layer, dict]:
    """The layer :func:`write_layer` wrote at ``prefix``, and its metadata."""
    import json

    from ukbuild.oci import model, tar

    meta = json.loads(Path(f"{prefix}.json").read_text())
    return tar.Layer(model.Blob(meta["media_type"], Path(f"{prefix}.tar.gz").read_bytes()), meta["diff_id"]), meta
