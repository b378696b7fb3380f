"""A ``[unikernel.NAME]`` table for Rumprun, validated into typed values.

    [unikernel.hello]
    toolchain = "rr"
    programs = [{ package = "hello", path = "usr/bin/hello", args = ["7"] }]   # 1 to 8
    config = "hw_virtio"              # bake configuration
    arch = "x86_64"                   # or "i486" (an i486-rumprun-netbsdelf toolchain)
    strip = false                     # TUPLE-strip the baked kernel
    bake_conf = "rumprun-bake.conf"   # extra configurations (-c), a project file
    bake_commands = ["add -lrumpdev_audio"]   # -m commands for the chosen config
    env = { GREETING = "hi" }         # runtime configuration (the Rumprun JSON) …
    hostname = "hello"
    net = [{ type = "inet", method = "static", addr = "10.0.2.15", mask = "24", gw = "10.0.2.2" }]
    blk = [{ image = "data.iso", mountpoint = "/data", readonly = true }]
    memory = 128                      # MiB, for `ukbuild run`

Programs come from a package's install tree (``package`` + ``path`` inside
it) or from an action's outputs (``action`` + ``path``).
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
from collections.abc import Callable, Mapping

import attrs

from ukbuild.errors import ConfigError
from ukbuild.plugins import UnikernelSpec

from .runtime import Blk, Net, Program, RuntimeConfig, check_text

PLATFORMS = ("hw", "xen", "solo5")
BUILTIN_CONFIGS = ("hw_generic", "hw_virtio", "hw_virtio_scsi", "xen_pv", "xen_pci", "solo5_hvt", "solo5_spt")
ARCHES: Mapping[str, str] = {"x86_64": "x86_64-rumprun-netbsd", "i486": "i486-rumprun-netbsdelf"}
MAX_PROGRAMS = 8

_CONFIG_RE = re.compile(r"(hw|xen|solo5)_[A-Za-z0-9_]+\Z")
_ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_HOSTNAME_RE = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,62})\Z")
_PROGRAM_KEYS = frozenset({"package", "action", "path", "name", "args"})
_NET_KEYS = frozenset({"if", "type", "method", "addr", "mask", "gw"})
_BLK_KEYS = frozenset({"image", "mountpoint", "readonly"})


@attrs.frozen
class Staged:
    """A program to bake: the action producing it and its path in the bake's scratch dir."""

    action: str
    path: str


@attrs.frozen
class RumprunOptions:
    """A validated unikernel table."""

    staged: tuple[Staged, ...]
    config: str
    arch: str
    strip: bool
    bake_conf: str | None
    bake_commands: tuple[str, ...]
    runtime: RuntimeConfig
    memory: int

    @property
    def platform(self) -> str:
        return self.config.split("_", 1)[0]

    @property
    def tuple(self) -> str:
        return ARCHES[self.arch]


def parse(spec: UnikernelSpec) -> RumprunOptions:
    """Validate ``spec.options``; a ConfigError names ``file:line: unikernel.NAME.FIELD``."""
    opts = spec.options
    where = f"{spec.origin}: unikernel.{spec.name}"

    def bad(field: str, message: str, hint: str) -> ConfigError:
        return ConfigError(f"{where}.{field}: {message}", hint=hint, reason="bad-value")

    def string(field: str, default: str | None, hint: str) -> str | None:
        value = opts.get(field, default)
        if value is not None and not isinstance(value, str):
            raise bad(field, f"expected a string, got {value!r}", hint)
        return value

    bake_conf = string("bake_conf", None, 'bake_conf = "rumprun-bake.conf"')
    config = string("config", "hw_virtio", 'config = "hw_virtio"') or ""
    if not _CONFIG_RE.match(config):
        raise bad("config", f"{config!r} is not a bake configuration name",
                  "one of " + ", ".join(BUILTIN_CONFIGS) + " (or hw_*/xen_* defined in bake_conf)")
    if config not in BUILTIN_CONFIGS and bake_conf is None:
        raise bad("config", f"unknown bake configuration {config!r}",
                  "one of " + ", ".join(BUILTIN_CONFIGS) + "; define others in a file named by bake_conf")
    arch = string("arch", "x86_64", 'arch = "x86_64"') or ""
    if arch not in ARCHES:
        raise bad("arch", f"expected one of {', '.join(ARCHES)}, got {arch!r}", 'arch = "x86_64"')
    strip = opts.get("strip", False)
    if not isinstance(strip, bool):
        raise bad("strip", f"expected true or false, got {strip!r}", "strip = true")
    commands = _strings(opts.get("bake_commands", []), bad, "bake_commands", 'bake_commands = ["add -lrumpdev_audio"]')
    memory = opts.get("memory", 128)
    if not isinstance(memory, int) or isinstance(memory, bool) or not 16 <= memory <= 65536:
        raise bad("memory", f"expected a number of MiB from 16 to 65536, got {memory!r}", "memory = 128")
    staged, programs = _programs(opts.get("programs"), bad)
    env = opts.get("env", {})
    if not isinstance(env, dict):
        raise bad("env", "expected a table of NAME = value strings", 'env = { GREETING = "hi" }')
    for key, value in env.items():
        if not _ENV_NAME_RE.match(key) or not isinstance(value, str):
            raise bad(f"env.{key}", "expected NAME = \"value\" with a C identifier as NAME", 'env = { GREETING = "hi" }')
        _text(bad, f"env.{key}", value)
    hostname = string("hostname", None, 'hostname = "hello"')
    if hostname is not None and not _HOSTNAME_RE.match(hostname):
        raise bad("hostname", f"{hostname!r} is not a host name", 'hostname = "hello" (letters, digits, "-", ".")')
    runtime = RuntimeConfig(
        programs=programs, env=tuple(env.items()), net=_nets(opts.get("net", []), bad),
        blk=_blks(opts.get("blk", []), bad), hostname=hostname,
    )
    return RumprunOptions(staged, config, arch, strip, bake_conf, commands, runtime, memory)


Bad = Callable[[str, str, str], ConfigError]


def _text(bad: Bad, field: str, value: str) -> str:
    problem = check_text(value)
    if problem:
        raise bad(field, f"{value!r} {problem}", "Rumprun's JSON parser does not unescape strings")
    return value


def _strings(value: object, bad: Bad, field: str, hint: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise bad(field, "expected a list of strings", hint)
    return tuple(_text(bad, field, v) for v in value)


def _table(value: object, bad: Bad, field: str, keys: frozenset[str], hint: str) -> dict[str, object]:
    if not isinstance(value, dict):
        raise bad(field, "expected a table", hint)
    unknown = sorted(set(value) - keys)
    if unknown:
        raise bad(f"{field}.{unknown[0]}", "unknown field", "allowed: " + ", ".join(sorted(keys)))
    return value


def _programs(value: object, bad: Bad) -> tuple[tuple[Staged, ...], tuple[Program, ...]]:
    hint = 'programs = [{ package = "hello", path = "usr/bin/hello" }]'
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_PROGRAMS:
        raise bad("programs", f"expected a list of 1 to {MAX_PROGRAMS} programs (rumprun-bake's limit)", hint)
    staged: list[Staged] = []
    programs: list[Program] = []
    for index, item in enumerate(value):
        field = f"programs[{index}]"
        table = _table(item, bad, field, _PROGRAM_KEYS, hint)
        sources = [k for k in ("package", "action") if k in table]
        if len(sources) != 1 or not isinstance(table[sources[0]], str):
            raise bad(field, "give exactly one of package or action (a name)", hint)
        path = table.get("path")
        if not isinstance(path, str) or not path or path.startswith("/") or ".." in path.split("/"):
            raise bad(f"{field}.path", f"expected a relative path without '..', got {path!r}", hint)
        path = posixpath.normpath(path)
        source = str(table[sources[0]])
        staged.append(Staged(source, f"pkg/{source}/{path}" if sources[0] == "package" else path))
        name = table.get("name", posixpath.basename(path))
        if not isinstance(name, str) or not name or any(c.isspace() for c in name):
            raise bad(f"{field}.name", f"expected a program name without spaces, got {name!r}", 'name = "hello"')
        args = _strings(table.get("args", []), bad, f"{field}.args", 'args = ["-v", "x"]')
        programs.append(Program(_text(bad, f"{field}.name", name), args))
    names = [p.name for p in programs]
    if len(programs) > 1 and len(set(names)) != len(names):
        raise bad("programs", f"program names must differ in a multi-program image (got {', '.join(names)})",
                  "give each program a distinct name = \"…\"")
    problem = RuntimeConfig(programs=tuple(programs)).check_args()
    if problem:
        raise bad("programs[0].args", problem, "with one program, arguments travel in cmdline, split at spaces")
    return tuple(staged), tuple(programs)


def _nets(value: object, bad: Bad) -> tuple[Net, ...]:
    hint = 'net = [{ type = "inet", method = "dhcp" }]'
    if not isinstance(value, list):
        raise bad("net", "expected a list of interface tables", hint)
    nets = []
    for index, item in enumerate(value):
        field = f"net[{index}]"
        table = _table(item, bad, field, _NET_KEYS, hint)
        if not all(isinstance(v, str) for v in table.values()):
            raise bad(field, "every value must be a string", hint)
        text = {key: str(v) for key, v in table.items()}
        net = Net(text.get("if", f"vioif{index}"), text.get("type", "inet"), text.get("method", "dhcp"),
                  text.get("addr", ""), text.get("mask", ""), text.get("gw", ""))
        if (net.type, net.method) not in (("inet", "dhcp"), ("inet", "static"), ("inet6", "auto")):
            raise bad(field, f"type {net.type!r} with method {net.method!r} is not supported",
                      "inet with dhcp or static, or inet6 with auto")
        if net.method == "static":
            _static(bad, field, net)
        elif net.addr or net.mask or net.gw:
            raise bad(field, f"addr, mask and gw only apply to method = \"static\" (got {net.method!r})", hint)
        _text(bad, f"{field}.if", net.interface)
        nets.append(net)
    return tuple(nets)


def _static(bad: Bad, field: str, net: Net) -> None:
    try:
        ipaddress.IPv4Address(net.addr)
        if net.gw:
            ipaddress.IPv4Address(net.gw)
    except ValueError as exc:
        raise bad(field, str(exc), 'addr = "10.0.2.15", gw = "10.0.2.2"') from exc
    if not net.mask.isdigit() or not 0 <= int(net.mask) <= 32:
        raise bad(f"{field}.mask", f"expected a prefix length from 0 to 32, got {net.mask!r}", 'mask = "24"')


def _blks(value: object, bad: Bad) -> tuple[Blk, ...]:
    hint = 'blk = [{ image = "data.iso", mountpoint = "/data" }]'
    if not isinstance(value, list):
        raise bad("blk", "expected a list of block device tables", hint)
    blks = []
    for index, item in enumerate(value):
        field = f"blk[{index}]"
        table = _table(item, bad, field, _BLK_KEYS, hint)
        image, mountpoint, readonly = table.get("image"), table.get("mountpoint"), table.get("readonly", False)
        if not isinstance(image, str) or not image or image.startswith("/"):
            raise bad(f"{field}.image", f"expected a disk image path in the project, got {image!r}", hint)
        if mountpoint is not None and (not isinstance(mountpoint, str) or not mountpoint.startswith("/")):
            raise bad(f"{field}.mountpoint", f"expected an absolute guest path, got {mountpoint!r}", hint)
        if not isinstance(readonly, bool):
            raise bad(f"{field}.readonly", f"expected true or false, got {readonly!r}", "readonly = true")
        blks.append(Blk(image, _text(bad, f"{field}.mountpoint", mountpoint) if mountpoint else None, readonly))
    return tuple(blks)
