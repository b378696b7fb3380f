"""Small Linux guests for network tests: Debian's kernel and a busybox initramfs built here.

The fake unikernels cannot network, so the plumbing of ``ukbuild run APP`` is
tested with these: the kernel of ``linux-image-amd64`` (``/boot/vmlinuz-*``)
and an initramfs holding ``busybox-static``, the virtio-net modules of the
same kernel and an ``/init`` that configures ``eth0`` from the kernel's
``ip=`` parameter (which ukbuild's app network writes) and then acts as
``ROLE`` says: ``server`` runs busybox httpd on port 80; ``client`` pings
``$PEER`` (unless ``PING=no``) and fetches ``http://$PEER/`` (with ``nc``: the static busybox's ``wget`` crashes) and prints ``RESULT ok`` or ``RESULT fail``.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import stat
from pathlib import Path

INIT = r"""#!/bin/sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
for m in $(cat /modules.order); do insmod /lib/modules/$m || echo "insmod $m failed"; done
spec=$(sed -n 's/.*ip=\([^ ]*\).*/\1/p' /proc/cmdline)
addr=${spec%%:*}; rest=${spec#*::}; gw=${rest%%:*}; rest=${rest#*:}; mask=${rest%%:*}
ifconfig lo 127.0.0.1 up
ifconfig eth0 "$addr" netmask "$mask" up
echo "NET eth0 $addr/$mask gw $gw"
if [ "$ROLE" = server ]; then
  mkdir -p /www && echo "hello from $(hostname) at $addr" > /www/index.html
  httpd -p 80 -h /www
  echo "READY $addr"
  while true; do sleep 60; done
fi
ok=fail
# Bounded by tries, not time: under TCG on a loaded machine the server may take minutes to boot.
for i in $(seq 60); do
  [ "$PING" = no ] && break
  if ping -c 1 -W 2 "$PEER" >/dev/null 2>&1; then echo "PING ok $PEER"; break; fi
  sleep 1
done
for i in $(seq 60); do
  body=$(printf "GET / HTTP/1.0\r\n\r\n" | nc -w 5 "$PEER" 80 2>/dev/null | tail -n 1)
  case "$body" in hello*) ok=ok; echo "FETCHED $body"; break ;; esac
  sleep 2
done
echo "RESULT $ok"
poweroff -f
"""


def kernel() -> Path | None:
    """Debian's installed kernel image, readable by us, or None."""
    for path in sorted(glob.glob("/boot/vmlinuz-*"), reverse=True):
        if os.access(path, os.R_OK):
            return Path(path)
    return None


def _modules(version: str, names: tuple[str, ...]) -> list[str]:
    """``names`` and their dependencies from modules.dep, in load order (relative paths)."""
    base = Path("/lib/modules") / version
    deps: dict[str, list[str]] = {}
    for line in (base / "modules.dep").read_text().splitlines():
        mod, _, rest = line.partition(":")
        deps[mod] = rest.split()
    builtin = set((base / "modules.builtin").read_text().split()) if (base / "modules.builtin").exists() else set()
    by_name = {re.sub(r"\.ko(\..*)?$", "", os.path.basename(m)).replace("-", "_"): m for m in deps}
    order: list[str] = []

    def add(mod: str) -> None:
        if mod in order or mod in builtin:
            return
        for dep in reversed(deps.get(mod, [])):
            add(dep)
        order.append(mod)

    for name in names:
        mod = by_name.get(name)
        if mod is not None:
            add(mod)
    return order


def _newc(entries: list[tuple[str, int, bytes]]) -> bytes:
    out = bytearray()
    for ino, (name, mode, data) in enumerate([*entries, ("TRAILER!!!", 0, b"")], start=1):
        raw = name.encode() + b"\0"
        fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(raw), 0]
        out += b"070701" + b"".join(b"%08X" % f for f in fields) + raw
        out += b"\0" * (-len(out) % 4) + data
        out += b"\0" * (-len(out) % 4)
    return bytes(out + b"\0" * (-len(out) % 512))


def initramfs(dest: Path, version: str) -> Path:
    """Write the busybox initramfs for kernel ``version`` to ``dest``."""
    busybox = shutil.which("busybox")
    assert busybox is not None
    mods = _modules(version, ("virtio_pci", "virtio_net"))
    entries: list[tuple[str, int, bytes]] = [(d, stat.S_IFDIR | 0o755, b"")
                                             for d in ("bin", "proc", "sys", "dev", "lib", "lib/modules", "tmp")]
    entries.append(("bin/busybox", stat.S_IFREG | 0o755, Path(busybox).read_bytes()))
    entries.append(("bin/sh", stat.S_IFLNK | 0o777, b"busybox"))
    entries.append(("init", stat.S_IFREG | 0o755, INIT.encode()))
    entries.append(("modules.order", stat.S_IFREG | 0o644, ("\n".join(os.path.basename(m) for m in mods) + "\n").encode()))
    for mod in mods:
        entries.append((f"lib/modules/{os.path.basename(mod)}", stat.S_IFREG | 0o644,
                        (Path("/lib/modules") / version / mod).read_bytes()))
    dest.write_bytes(_newc(entries))
    return dest
