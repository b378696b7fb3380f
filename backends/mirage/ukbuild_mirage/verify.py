"""Verifying what a build wrote: the file exists and is an executable, and for Solo5
targets ``solo5-elftool`` agrees with the target and the declared devices.

An exit status of 0 is not enough (Solo5 #667 wrote every unikernel to a file
named ``-pie`` and exited 0), so these run as checks before anything is cached.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from pathlib import Path

from ukbuild.errors import BuildError

#: Suffix of the metadata file written next to a verified Solo5 binary.
METADATA = ".solo5.json"
DEVICE_TYPES = {"net": "NET_BASIC", "block": "BLOCK_BASIC"}
ET_EXEC, ET_DYN = 2, 3


def verify_script(kernel: str, abi: str, devices: Mapping[str, str]) -> str:
    """Shell that asks solo5-elftool about ``kernel`` and writes ``kernel.solo5.json``."""
    expected = json.dumps({"abi": abi, "devices": {n: DEVICE_TYPES[k] for n, k in sorted(devices.items())}},
                          sort_keys=True)
    k = shlex.quote(kernel)
    return (f"{{ printf '{{\"expected\": %s,\\n\"abi\": ' {shlex.quote(expected)}; "
            f"solo5-elftool query-abi {k}; printf ',\\n\"manifest\": '; solo5-elftool query-manifest {k}; "
            f"printf '}}\\n'; }} > {shlex.quote(kernel + METADATA)}")


def check_executable(path: Path) -> None:
    """``path`` was written and is an ELF executable."""
    if not path.exists():
        present = sorted(p.name for p in path.parent.iterdir()) if path.parent.is_dir() else []
        raise BuildError(
            f"the build wrote no {path.parent.name}/{path.name}"
            + (f" ({path.parent.name}/ has: {', '.join(present)})" if present else ""),
            hint='the unikernel\'s name must be the one config.ml registers (register "NAME"): '
                 "set name = \"…\" in the [unikernel] table, or fix config.ml",
            reason="missing-output",
        )
    head = path.read_bytes()[:18]
    if head[:4] != b"\x7fELF" or int.from_bytes(head[16:18], "little") not in (ET_EXEC, ET_DYN):
        raise BuildError(f"{path.name} is not an ELF executable", hint="read the build log", reason="bad-output")


def check_solo5(path: Path) -> None:
    """``path`` is ``KERNEL.solo5.json``: elftool's answers must match what was expected."""
    check_executable(path.with_name(path.name.removesuffix(METADATA)))
    try:
        doc = json.loads(path.read_text())
        expected, abi, manifest = doc["expected"], doc["abi"], doc["manifest"]
        found = {d["name"]: d["type"] for d in manifest["devices"]}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BuildError(f"solo5-elftool gave no usable answer ({exc})", hint="read the build log",
                         reason="bad-output") from exc
    if abi.get("type") != "solo5.abi" or abi.get("target") != expected["abi"]:
        raise BuildError(
            f"solo5-elftool query-abi says target {abi.get('target')!r}, expected {expected['abi']!r}",
            hint="the link used the wrong -z solo5-abi (or the wrong bindings); check the target",
            reason="wrong-abi",
        )
    if found != expected["devices"]:
        def show(devices: Mapping[str, str]) -> str:
            return ", ".join(f"{n} ({t})" for n, t in sorted(devices.items())) or "none"

        declare = ", ".join(f'{n} = "{"net" if t == "NET_BASIC" else "block"}"' for n, t in sorted(found.items()))
        raise BuildError(
            f"the Solo5 manifest declares {show(found)}, but the unikernel table declares {show(expected['devices'])}",
            hint=f"set devices = {{ {declare} }} (runners and urunc must attach exactly these)",
            reason="manifest-mismatch",
        )


def manifest_devices(kernel: Path) -> dict[str, str] | None:
    """The devices (name → NET_BASIC/BLOCK_BASIC) of a verified binary's manifest, if recorded."""
    try:
        doc = json.loads(Path(str(kernel) + METADATA).read_text())
        return {d["name"]: d["type"] for d in doc["manifest"]["devices"]}
    except (OSError, ValueError, KeyError, TypeError):
        return None
