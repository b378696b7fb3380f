"""The app's network plan and each guest's network configuration.

Every service has a fixed address on the app's private network (default
``10.77.0.0/24``); the gateway is ``.1``.  The same plan serves every way
the app runs:

- ``ukbuild run APP``: the VMs share one Ethernet segment through a
  user-space switch (:class:`Hub`) over QEMU ``dgram`` netdevs on Unix
  sockets — no root, no tap, no host address.  When ports are published, a
  gateway joins the segment at ``.1``: a QEMU without a machine whose
  user-mode network (``restrict=on``, so nothing leaves) forwards each
  published port from 127.0.0.1 to its service (``hostfwd``).
- In a container (the launcher image), the guest keeps its app address;
  QEMU's user-mode network is set to the app network, publishes the
  service's ports on the container's interfaces and forwards connections to
  a linked service's address to that service's name (resolved by the
  container's DNS, e.g. a Kubernetes Service or a compose network alias).

Guest configuration by guest kind: Rumprun gets ``net`` (and ``blk``,
``env``) entries in its JSON command line; MirageOS gets ``--ipv4=`` and
``--ipv4-gateway=`` arguments; a Linux guest gets the kernel's ``ip=``
parameter (``ip=ADDR::GW:MASK:HOST:eth0:off``); a Multiboot kernel gets
nothing.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import socket
import threading
from collections.abc import Iterable, Sequence

import attrs

from ukbuild.errors import RunError

from .model import App, Service

GUEST_KINDS = ("rumprun", "mirage", "linux", "multiboot")


@attrs.frozen
class Slirp:
    """The user-mode netdev of a service with published ports: its own host and DNS addresses."""

    host: str
    dns: str


@attrs.frozen
class Endpoint:
    """A service on the app network."""

    service: str
    address: str
    prefix: int
    gateway: str
    mac: str
    slirp: Slirp | None

    @property
    def netmask(self) -> str:
        return str(ipaddress.IPv4Network(f"0.0.0.0/{self.prefix}").netmask)


def mac_address(app: str, service: str) -> str:
    """A stable, locally administered MAC for the service (52:54:00 is QEMU's prefix)."""
    digest = hashlib.sha256(f"{app}/{service}".encode()).digest()
    return "52:54:00:" + ":".join(f"{b:02x}" for b in digest[:3])


def plan(app: App) -> dict[str, Endpoint]:
    """Every service's endpoint on the app network."""
    return {name: Endpoint(name, app.services[name].address, app.network.prefixlen, app.gateway,
                           mac_address(app.name, name), gateway_slirp(app))
            for name in app.order()}


def gateway_slirp(app: App) -> Slirp:
    """The user-mode network's own addresses: the gateway (.1) and a DNS address (.2)."""
    return Slirp(app.gateway, str(app.network.network_address + 2))


# --- guest configuration -------------------------------------------------------------------


def _pairs(text: str) -> list[tuple[str, object]]:
    try:
        value = json.loads(text, object_pairs_hook=lambda pairs: ("__obj__", pairs))
    except ValueError as exc:
        raise RunError(f"the Rumprun configuration is not JSON: {exc}", detail=text,
                       reason="bad-guest-config") from exc
    if not (isinstance(value, tuple) and value[0] == "__obj__"):
        raise RunError("the Rumprun configuration is not a JSON object", detail=text, reason="bad-guest-config")
    return list(value[1])


def _render(value: object) -> str:
    if isinstance(value, tuple) and value and value[0] == "__obj__":
        return "{" + ", ".join(f"{json.dumps(k)}: {_render(v)}" for k, v in value[1]) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_render(v) for v in value) + "]"
    return json.dumps(value)


def _obj(pairs: Iterable[tuple[str, str]]) -> tuple[str, list[tuple[str, object]]]:
    return ("__obj__", list(pairs))


def rumprun_config(base: str, endpoint: Endpoint | None, *, blk: Sequence[tuple[int, str]] = (),
                   env: Sequence[tuple[str, str]] = (), replace_blk: bool = False) -> str:
    """The unikernel's Rumprun JSON with the app's ``net``, ``blk`` and ``env`` entries.

    The recipe's own ``net`` entries are replaced (the app decides the
    network), and its ``blk`` entries too with ``replace_blk`` (when the
    service mounts volumes); its ``env`` entries stay.  ``blk`` is
    (device index, mount point) of each app volume.
    """
    pairs = _pairs(base) if base.strip() else []
    dropped = ("net", "blk") if replace_blk else ("net",)
    kept = [(k, v) for k, v in pairs if k not in dropped]
    tail = [(k, v) for k, v in kept if k not in ("blk", "env")]
    # The launcher's order: blk, env, net, then cmdline or rc.
    head = [(k, v) for k, v in kept if k == "blk"]
    head += [("blk", _obj([("source", "dev"), ("path", f"/dev/ld{i}a"), ("fstype", "blk"), ("mountpoint", m)]))
             for i, m in blk]
    head += [(k, v) for k, v in kept if k == "env"]
    head += [("env", f"{k}={v}") for k, v in env]
    nets = []
    if endpoint is not None:
        nets.append(("net", _obj([("if", "vioif0"), ("type", "inet"), ("method", "static"),
                                  ("addr", endpoint.address), ("mask", str(endpoint.prefix)),
                                  ("gw", endpoint.gateway)])))
    return _render(("__obj__", head + nets + tail))


def mirage_args(endpoint: Endpoint) -> list[str]:
    return [f"--ipv4={endpoint.address}/{endpoint.prefix}", f"--ipv4-gateway={endpoint.gateway}"]


def linux_ip(endpoint: Endpoint) -> str:
    """The kernel's ``ip=`` parameter (nfsroot.txt), which init scripts can read too."""
    return f"ip={endpoint.address}::{endpoint.gateway}:{endpoint.netmask}:{endpoint.service}:eth0:off"


def guest_cmdline(guest: str, base: str, endpoint: Endpoint | None, *, blk: Sequence[tuple[int, str]] = (),
                  env: Sequence[tuple[str, str]] = (), replace_blk: bool = False) -> str:
    """The kernel command line of a service for its guest kind."""
    if guest == "rumprun":
        return rumprun_config(base, endpoint, blk=blk, env=env, replace_blk=replace_blk)
    extra: list[str] = []
    if endpoint is not None:
        extra = mirage_args(endpoint) if guest == "mirage" else [linux_ip(endpoint)] if guest == "linux" else []
    if guest == "linux":
        extra += [f"{k}={v}" for k, v in env]
    return " ".join(x for x in (base, *extra) if x)


# --- QEMU arguments for `ukbuild run APP` ------------------------------------------------


def qemu_net_args(app: App, service: Service, endpoint: Endpoint, sock_dir: str) -> list[str]:
    """``-netdev``/``-device`` options joining the VM to the hub."""
    dgram = (f"dgram,id=app,local.type=unix,local.path={_path(sock_dir, service.name)},"
             f"remote.type=unix,remote.path={_path(sock_dir, 'hub')}")
    return ["-netdev", dgram, "-device", f"virtio-net-pci,mac={endpoint.mac},romfile=,netdev=app"]


def gateway_argv(app: App, sock_dir: str, qemu: str = "qemu-system-x86_64") -> list[str] | None:
    """The app's gateway: a QEMU with no machine whose user-mode network (``restrict=on``) sits on the
    segment at ``.1`` and forwards every published port from 127.0.0.1; None when nothing is published.

    It is a separate port of the switch, so it sees only broadcasts and frames for its own MAC
    (a user-mode netdev inside a guest's QEMU would see that guest's traffic with its peers and
    answer it with resets).
    """
    forwards = [f"hostfwd=tcp:127.0.0.1:{p.host}-{s.address}:{p.guest}"
                for s in app.services.values() for p in s.ports]
    if not forwards:
        return None
    slirp = gateway_slirp(app)
    dgram = (f"dgram,id=app,local.type=unix,local.path={_path(sock_dir, 'gateway')},"
             f"remote.type=unix,remote.path={_path(sock_dir, 'hub')}")
    user = (f"user,id=pub,restrict=on,ipv6=off,net={app.network},host={slirp.host},dns={slirp.dns},"
            f"dhcpstart={app.network.network_address + 3}," + ",".join(forwards))
    return [qemu, "-machine", "none", "-nodefaults", "-display", "none", "-monitor", "none", "-serial", "none",
            "-netdev", dgram, "-netdev", user,
            "-netdev", "hubport,id=hub-app,hubid=0,netdev=app", "-netdev", "hubport,id=hub-pub,hubid=0,netdev=pub"]


def _path(directory: str, name: str) -> str:
    path = os.path.join(directory, f"{name}.sock")
    if "," in path:
        raise RunError(f"socket directory {directory} contains a comma, which QEMU options cannot hold",
                       hint="set TMPDIR to a path without commas", reason="bad-path")
    return path


class Hub:
    """A learning Ethernet switch between the VMs' ``dgram`` netdevs (Unix datagram sockets)."""

    def __init__(self, directory: str) -> None:
        self.path = os.path.join(directory, "hub.sock")
        if len(self.path.encode()) > 100:
            raise RunError(f"socket path {self.path} is too long for a Unix socket",
                           hint="set TMPDIR to a shorter directory", reason="bad-path")
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(self.path)
        self._sock.settimeout(0.2)
        self._peers: set[str] = set()
        self._macs: dict[bytes, str] = {}
        self._stop = threading.Event()
        self.frames = 0
        self._thread = threading.Thread(target=self._loop, name="ukbuild-app-hub", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                frame, sender = self._sock.recvfrom(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not sender or len(frame) < 14:
                continue
            self.frames += 1
            self._peers.add(sender)
            self._macs[frame[6:12]] = sender
            target = self._macs.get(frame[0:6]) if not frame[0] & 1 else None
            for peer in [target] if target else list(self._peers):
                if peer != sender:
                    try:
                        self._sock.sendto(frame, peer)
                    except OSError:  # a VM that stopped: forget it
                        self._peers.discard(peer)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._sock.close()
        try:
            os.unlink(self.path)
        except OSError:
            pass
