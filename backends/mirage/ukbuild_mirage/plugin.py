"""The MirageOS backend: MirageOS 4 unikernels and bare Solo5 C unikernels.

    [toolchain.mirage]
    backend = "mirage"          # an opam switch with mirage, opam-monorepo, dune (+ Solo5)
    # prefix = "…"              # the switch prefix (else $UKBUILD_MIRAGE_PREFIX, else PATH)
    # solo5_prefix = "…"        # Solo5's prefix (else $UKBUILD_SOLO5_PREFIX, else the switch)

    [unikernel.hello]           # kind = "mirage" (the default)
    toolchain = "mirage"
    dir = "hello"               # the directory holding config.ml
    target = "hvt"              # unix hvt spt virtio muen xen qubes unikraft-qemu unikraft-firecracker
    configure_args = []         # configure-time keys, e.g. ["--net=direct"]
    devices = { service = "net" }   # the Solo5 manifest's devices (checked after the build)
    attach = { service = "tap100" } # what `ukbuild run` attaches them to
    cmdline = "--ipv4=10.0.0.2/24"  # boot arguments
    memory = 64                 # MiB, for the tender or QEMU

    [unikernel.test_hello]      # bare Solo5 C: compile once, link per ABI
    toolchain = "mirage"
    kind = "solo5"
    sources = ["test_hello.c"]
    manifest = "manifest.json"
    targets = ["hvt", "spt", "virtio"]  # the first is what run and images use

See plan.py for the actions and verify.py for what is checked.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

from ukbuild.errors import ConfigError, RunError
from ukbuild.model import Action
from ukbuild.plugins import Backend, Check, DetectContext, Detection, ImageMetadata, UnikernelSpec, hookimpl
from ukbuild.runner import Drive, ProcessLaunch, QemuLaunch

from . import detect, plan
from .targets import SOLO5_ABIS, TARGETS
from .verify import DEVICE_TYPES, check_executable, check_solo5, manifest_devices

COMMON = frozenset({"kind", "devices", "attach", "cmdline", "memory", "arch"})
MIRAGE_ONLY = frozenset({"dir", "config", "target", "name", "configure_args", "lock", "opam_repositories"})
SOLO5_ONLY = frozenset({"sources", "manifest", "targets", "cflags", "include"})
#: The line the Solo5 bindings print first: the guest started (tender errors come before it).
SOLO5_STARTED = r"^Solo5: Bindings version"
SOLO5_EXIT = r"^Solo5: solo5_exit\((\d+)\) called"


class MirageBackend(Backend):
    NAME = "mirage"
    KEY_VERSION = 1
    REQUIRES_API = (1, 0)
    ENV_VAR = detect.MIRAGE_ENV
    DESCRIPTION = "MirageOS 4 (mirage configure, opam monorepo lock/pull, dune build) and bare Solo5 C"
    TOOLCHAIN_OPTIONS = frozenset({"prefix", "solo5_prefix", "arch"})
    UNIKERNEL_OPTIONS = COMMON | MIRAGE_ONLY | SOLO5_ONLY

    def detect(self, options: Mapping[str, object], context: DetectContext) -> Detection:
        return detect.detect(options, context)

    def check_options(self, spec: UnikernelSpec) -> None:
        super().check_options(spec)
        opts = spec.options
        where = f"{spec.origin}: unikernel.{spec.name}"

        def bad(key: str, message: str, hint: str) -> ConfigError:
            return ConfigError(f"{where}.{key}: {message}", hint=hint, reason="bad-value")

        kind = opts.get("kind", "mirage")
        if kind not in ("mirage", "solo5"):
            raise bad("kind", "expected \"mirage\" or \"solo5\"", 'kind = "solo5" for a bare Solo5 C unikernel')
        other = SOLO5_ONLY if kind == "mirage" else MIRAGE_ONLY
        for key in sorted(other & set(opts)):
            raise ConfigError(f"{where}.{key}: not an option of kind = \"{kind}\"",
                              hint=f"allowed: {', '.join(sorted(COMMON | (MIRAGE_ONLY | SOLO5_ONLY) - other))}",
                              reason="unknown-field")
        _strings_of(opts, where, "configure_args", "opam_repositories", "cflags", "include")
        for key in ("dir", "config", "name", "lock", "manifest", "cmdline"):
            if key in opts and not isinstance(opts[key], str):
                raise bad(key, "expected a string", f'{key} = "…"')
        if "memory" in opts and (not isinstance(opts["memory"], int) or isinstance(opts["memory"], bool)
                                 or opts["memory"] <= 0):
            raise bad("memory", "expected a positive number of MiB", "memory = 64")
        if opts.get("arch", "x86_64") not in ("x86_64", "aarch64"):
            raise bad("arch", "expected \"x86_64\" or \"aarch64\"", 'arch = "x86_64"')
        devices = opts.get("devices", {})
        if not isinstance(devices, dict) or not all(
                isinstance(v, str) and v in DEVICE_TYPES and re.fullmatch(r"[A-Za-z0-9]{1,67}", str(k))
                for k, v in devices.items()):
            raise bad("devices", "expected a table of Solo5 device name (alphanumeric) = \"net\" or \"block\"",
                      'devices = { service = "net", storage = "block" }')
        attach = opts.get("attach", {})
        if not isinstance(attach, dict) or not all(isinstance(v, str) for v in attach.values()):
            raise bad("attach", "expected a table of device name = tap interface or block file",
                      'attach = { service = "tap100" }')
        for name in sorted(set(attach) - set(devices)):
            raise bad(f"attach.{name}", "not a declared device", f'declare it: devices = {{ {name} = "net" }}')
        if kind == "mirage":
            if opts.get("target") not in TARGETS:
                raise bad("target", f"expected one of {', '.join(TARGETS)}", 'target = "hvt"')
            plan.registered_name(spec)
        else:
            sources = opts.get("sources")
            if not isinstance(sources, list) or not sources or not all(isinstance(s, str) for s in sources):
                raise bad("sources", "expected a non-empty list of C files", 'sources = ["main.c"]')
            targets = opts.get("targets")
            if (not isinstance(targets, list) or not targets or len(set(map(str, targets))) != len(targets)
                    or not all(t in SOLO5_ABIS for t in targets)):
                raise bad("targets", f"expected a non-empty list of distinct Solo5 ABIs ({', '.join(SOLO5_ABIS)})",
                          'targets = ["hvt", "spt"]')

    def plan(self, unikernel: UnikernelSpec) -> Sequence[Action]:
        return plan.plan(unikernel)

    def checks(self) -> Mapping[str, Check]:
        return {"mirage/executable": check_executable, "mirage/solo5": check_solo5}

    def launch(self, unikernel: UnikernelSpec, kernel: Path, args: Sequence[str]) -> QemuLaunch:
        """hvt/spt under their Solo5 tender, virtio under QEMU, unix directly."""
        opts = unikernel.options
        boot_args = [*shlex.split(str(opts.get("cmdline", ""))), *args]
        abi = plan.solo5_abi(unikernel)
        if opts.get("kind") != "solo5" and TARGETS[str(opts["target"])].family == "unix":
            return ProcessLaunch((str(kernel), *boot_args))  # type: ignore[return-value]
        if abi in ("hvt", "spt"):
            tender = _find_tender(f"solo5-{abi}")
            argv = [tender, *([f"--mem={opts['memory']}"] if "memory" in opts else [])]
            argv += [f"--{kind}:{name}={host}" for name, kind, host in _attachments(unikernel, kernel)]
            return ProcessLaunch((*argv, "--", str(kernel), *boot_args), guest_line=SOLO5_STARTED)  # type: ignore[return-value]
        if abi == "virtio":
            # Solo5's virtio bindings end solo5_exit and solo5_abort by writing 41 to isa-debug-exit at
            # its default port 0x501 (QEMU exits 83): the status comes from the exit line, printed just
            # before; an abort (no such line) ends the run at once with status 41 instead of a timeout.
            drives, extra = [], ["-cpu", "Westmere", "-device", "isa-debug-exit,iobase=0x501,iosize=0x02"]
            for index, (name, kind, host) in enumerate(_attachments(unikernel, kernel)):
                if kind == "block":
                    drives.append(Drive(host, "virtio"))
                else:
                    extra += ["-netdev", f"tap,id=n{index},ifname={host},script=no,downscript=no",
                              "-device", f"virtio-net,netdev=n{index}"]
            return QemuLaunch(kernel=kernel, append=" ".join(boot_args), drives=drives,
                              memory_mib=int(opts.get("memory", 128)), extra_args=extra,  # type: ignore[call-overload]
                              exit_line=SOLO5_EXIT, debug_exit=True)
        target = abi or str(opts.get("target"))
        raise RunError(f"{unikernel.name}: ukbuild cannot run {target} unikernels",
                       hint="build an image for it, or use target hvt, spt, virtio or unix", reason="not-runnable")

    def image_metadata(self, unikernel: UnikernelSpec) -> ImageMetadata:
        opts = unikernel.options
        abi = plan.solo5_abi(unikernel)
        mirage = opts.get("kind", "mirage") == "mirage"
        target = TARGETS[str(opts["target"])] if mirage else None
        if abi == "virtio":
            # The virtio binary is an ELF64 with a Multiboot header and the a.out kludge: raw disks and
            # ISOs boot it through mboot.c32 -aout, as solo5-virtio-mkimage does.
            kernel_format = "multiboot-elf64-aout"
        elif abi is not None:
            kernel_format = f"solo5-{abi}"
        else:
            assert target is not None  # a target without an ABI is a MirageOS one
            kernel_format = f"mirage-{target.name}"
        monitor = target.monitor if target else None
        return ImageMetadata(
            kernel=plan.kernel_path(unikernel),
            kernel_format=kernel_format,
            cmdline=str(opts.get("cmdline", "")),
            guest="mirage" if mirage and monitor else None,
            monitor=monitor,
            devices={name: DEVICE_TYPES[kind] for name, kind in plan.devices(unikernel).items()},
        )


def _strings_of(opts: Mapping[str, object], where: str, *keys: str) -> None:
    for key in keys:
        value = opts.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where}.{key}: expected a list of strings", hint=f'{key} = ["…"]',
                              reason="bad-value")


def _find_tender(program: str) -> str:
    """The tender in $UKBUILD_SOLO5_PREFIX/bin, $UKBUILD_MIRAGE_PREFIX/bin, or on PATH."""
    dirs = [str(Path(os.environ[v]) / "bin") for v in (detect.SOLO5_ENV, detect.MIRAGE_ENV) if os.environ.get(v)]
    found = shutil.which(program, path=os.pathsep.join([*dirs, os.environ.get("PATH", "")]))
    if found is None:
        raise RunError(f"{program} not found (looked in {', '.join(dirs) or 'nothing'} and PATH)",
                       hint=f"install Solo5 (opam install solo5) or set {detect.SOLO5_ENV} to its prefix",
                       reason="tender-not-found")
    return found


def _attachments(unikernel: UnikernelSpec, kernel: Path) -> list[tuple[str, str, str]]:
    """(device, net|block, host resource) for each device of the binary's manifest."""
    attach = {str(k): str(v) for k, v in dict(unikernel.options.get("attach", {})).items()}  # type: ignore[call-overload]
    recorded = manifest_devices(kernel)
    kinds = {n: ("net" if t == "NET_BASIC" else "block") for n, t in recorded.items()} if recorded is not None \
        else plan.devices(unikernel)
    out = []
    for name, kind in sorted(kinds.items()):
        if name not in attach:
            raise RunError(f"{unikernel.name}: the Solo5 manifest declares {kind} device '{name}', "
                           "and every declared device must be attached",
                           hint=f'set attach = {{ {name} = "{"tap100" if kind == "net" else "disk.img"}" }} '
                                f"in [unikernel.{unikernel.name}]", reason="device-not-attached")
        out.append((name, kind, attach[name]))
    return out


@hookimpl
def ukbuild_backends() -> list[type[Backend]]:
    return [MirageBackend]
