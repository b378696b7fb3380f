"""The Rumprun runtime configuration: the JSON a hw guest reads from its command line.

Rumprun's format is JSON with repeatable keys (``env``, ``net``, ``blk``),
which a standard encoder cannot write, so it is rendered here, in the
launcher's key order (blk, env, net, then cmdline or rc, then hostname).

Escaping, per launch path: Rumprun's parser does not unescape strings, so
values may not contain ``"``, ``\\`` or control characters (checked when the
table is read).  QEMU 7.2 passes ``-append`` through unchanged, so commas stay
single (the ``rumprun`` launcher's doubled ``,,`` would reach the guest
literally); syslinux's APPEND line (raw and ISO images) is verbatim too.  One
compact single-line rendering therefore serves both.  With one program the
arguments travel in ``cmdline``, which the guest splits at white space
without quoting; with several, each program gets an ``rc`` entry whose argv
is a JSON array (doubled commas there crash the guest, single ones do not).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import attrs


def check_text(value: str) -> str | None:
    """Why ``value`` cannot appear in a Rumprun JSON string, or None."""
    if '"' in value or "\\" in value:
        return 'contains " or \\, which the guest would not unescape'
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return "contains a control character (the command line is one line)"
    return None


def _str(value: str) -> str:
    return f'"{value}"'


def _obj(pairs: Iterable[tuple[str, str]]) -> str:
    return "{" + ", ".join(f"{_str(k)}: {v}" for k, v in pairs) + "}"


@attrs.frozen
class Program:
    """One baked program: its argv[0] (``rc``'s ``bin``) and its arguments."""

    name: str
    args: tuple[str, ...] = ()


@attrs.frozen
class Net:
    """A ``net`` entry: interface, inet/inet6, dhcp/static/auto and static addressing."""

    interface: str
    type: str = "inet"
    method: str = "dhcp"
    addr: str = ""
    mask: str = ""
    gw: str = ""

    def render(self) -> str:
        pairs = [("if", self.interface), ("type", self.type), ("method", self.method)]
        pairs += [(k, v) for k, v in (("addr", self.addr), ("mask", self.mask), ("gw", self.gw)) if v]
        return _obj((k, _str(v)) for k, v in pairs)


@attrs.frozen
class Blk:
    """A data disk (a project file) attached as virtio-blk; mounted when ``mountpoint`` is set."""

    image: str
    mountpoint: str | None = None
    readonly: bool = False


@attrs.frozen
class RuntimeConfig:
    """The runtime configuration of a unikernel, rendered by :meth:`render`."""

    programs: tuple[Program, ...]
    env: tuple[tuple[str, str], ...] = ()
    net: tuple[Net, ...] = ()
    blk: tuple[Blk, ...] = ()
    hostname: str | None = None

    def with_args(self, extra: Sequence[str]) -> RuntimeConfig:
        """``ukbuild run NAME -- ARGS``: ARGS appended to the first program's argv."""
        first, *rest = self.programs
        return attrs.evolve(self, programs=(Program(first.name, (*first.args, *extra)), *rest))

    def check_args(self) -> str | None:
        """Why the arguments cannot be passed, or None."""
        for program in self.programs:
            for arg in program.args:
                problem = check_text(arg)
                if problem:
                    return f"argument {arg!r} {problem}"
                if len(self.programs) == 1 and (not arg or any(c.isspace() for c in arg)):
                    return f"argument {arg!r} is empty or contains white space, which Rumprun's cmdline cannot carry"
        return None

    @property
    def exit_program(self) -> str:
        """The argv[0] of the program whose end is the guest's exit status (the last one)."""
        return self.programs[-1].name

    def render(self) -> str:
        """The JSON for the kernel command line (single commas, one line)."""
        items: list[tuple[str, str]] = []
        for index, blk in enumerate(self.blk):
            if blk.mountpoint:
                items.append(("blk", _obj([("source", _str("dev")), ("path", _str(f"/dev/ld{index}a")),
                                           ("fstype", _str("blk")), ("mountpoint", _str(blk.mountpoint))])))
        items += [("env", _str(f"{name}={value}")) for name, value in self.env]
        items += [("net", net.render()) for net in self.net]
        if len(self.programs) == 1:
            program = self.programs[0]
            items.append(("cmdline", _str(" ".join((program.name, *program.args)))))
        else:
            entries = [_obj([("bin", _str(p.name)), ("argv", "[" + ", ".join(map(_str, p.args)) + "]")])
                       for p in self.programs]
            items.append(("rc", "[" + ", ".join(entries) + "]"))
        if self.hostname:
            items.append(("hostname", _str(self.hostname)))
        return _obj(items)
