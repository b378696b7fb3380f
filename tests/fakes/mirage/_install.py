"""Lay out the fake MirageOS 4 + Solo5 toolchain as an opam root with one switch (see README.md)."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

TUPLE = "x86_64-solo5-none-static"
MIRAGE_VERSION = "4.11.1"
OCAML_VERSION = "5.4.1"
DUNE_VERSION = "3.17.2"
OPAM_VERSION = "2.3.0"
SOLO5_VERSION = "v0.12.1-7-g469c1a8"
#: ABI → (ABI1 target number, ABI version, text base, what comes before .text).
ABIS = {
    "hvt": (1, 2, 0x100000, "interp"),
    "spt": (2, 2, 0x100000, "interp"),
    "virtio": (3, 1, 0x100000, "interp,multiboot"),
    "muen": (4, 4, 0x200000, "interp"),
    "xen": (6, 1, 0x100000, "multiboot,interp"),
    "stub": (0, 0, 0x100000, "interp"),
}
#: The packages a mirage switch holds (written to switch-state, the switch's identity).
SWITCH_PACKAGES = (f"dune.{DUNE_VERSION}", f"mirage.{MIRAGE_VERSION}", f"ocaml.{OCAML_VERSION}",
                   "ocaml-solo5.1.3.2", "ocamlfind.1.9.8", "opam-monorepo.0.4.3", "solo5.0.12.1")

_HERE = Path(__file__).resolve().parent
_SRC = _HERE / "src"
_HEADERS = ("stddef.h", "stdint.h", "stdint-gcc.h", "stdarg.h", "stdbool.h", "float.h", "stdalign.h",
            "stdnoreturn.h", "iso646.h", "limits.h")
_SECTIONS = {
    "interp": "    .interp : { KEEP(*(.interp)) } :text :interp",
    "multiboot": "    . = ALIGN(0x20);\n    .multiboot : { KEEP(*(.multiboot)) } :text",
}


@dataclass(frozen=True)
class FakeMirage:
    """An installed fake toolchain: an opam root with the switch ``default``.

    ``env()`` gives PATH, OPAMROOT and OPAMSWITCH as ``opam env`` would.
    """

    root: Path

    @property
    def opam_root(self) -> Path:
        return self.root / "opam"

    @property
    def prefix(self) -> Path:
        return self.opam_root / "default"

    @property
    def bin_dir(self) -> Path:
        return self.prefix / "bin"

    @property
    def sources(self) -> Path:
        return self.root / "sources"

    def env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        env = dict(os.environ if base is None else base)
        env["PATH"] = f"{self.bin_dir}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}"
        env.update(OPAMROOT=str(self.opam_root), OPAMSWITCH="default", OPAM_SWITCH_PREFIX=str(self.prefix))
        return env

    def add_package(self, name: str, version: str, *, depends: Iterable[str] = (),
                    files: Mapping[str, str] | None = None, dune: bool = True) -> tuple[str, str, str]:
        """Publish a source package in the fake opam repository (archive under ``sources/``).

        Returns its duniverse entry: (URL, directory name, ``sha256=…``).
        """
        content = {f"{name}.opam": _opam_file(depends), "dune-project": "(lang dune 3.0)\n" if dune else ""}
        content.update(files or {f"src/{name}.ml": f"let name = {name!r}\n".replace("'", '"')})
        archive = self.sources / f"{name}-{version}.tbz"
        archive.parent.mkdir(parents=True, exist_ok=True)
        archive.write_bytes(_tarball(f"{name}-{version}", content))
        sha = hashlib.sha256(archive.read_bytes()).hexdigest()
        url = archive.as_uri()
        opam = self.opam_root / "repo" / "default" / "packages" / name / f"{name}.{version}" / "opam"
        opam.parent.mkdir(parents=True, exist_ok=True)
        opam.write_text(_opam_file(depends) + f'url {{\n  src: "{url}"\n  checksum: "sha256={sha}"\n}}\n'
                        + ("" if dune else 'build: [make]\n'))
        return url, name, f"sha256={sha}"


def _opam_file(depends: Iterable[str]) -> str:
    deps = "".join(f'  "{d}"\n' for d in depends)
    return f'opam-version: "2.0"\ndepends: [\n  "dune"\n{deps}]\n'


def _tarball(top: str, files: Mapping[str, str]) -> bytes:
    """A bzip2 tarball with fixed metadata, so the same content gives the same bytes."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:bz2") as tar:
        for rel in sorted(files):
            data = files[rel].encode()
            info = tarfile.TarInfo(f"{top}/{rel}")
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def install_fake_mirage(root: Path, *, solo5: bool = True) -> FakeMirage:
    """Install at ``root``: ``opam/`` (OPAMROOT, switch ``default``) and ``sources/`` (archives).

    With ``solo5=False`` the switch has no Solo5 (no tenders, elftool, wrappers
    or bindings): only the unix target can be built.
    """
    fake = FakeMirage(Path(root).resolve())
    prefix = fake.prefix
    for sub in ("bin", "lib/ukbuild-fake", "lib/findlib.conf.d", "lib/mirage", ".opam-switch"):
        (prefix / sub).mkdir(parents=True, exist_ok=True)
    (fake.opam_root / "repo" / "default" / "packages").mkdir(parents=True, exist_ok=True)
    (fake.opam_root / "config").write_text(f'opam-version: "2.0"\nswitch: "default"\ninstalled-switches: "default"\n')
    (fake.opam_root / "repo" / "repos-config").write_text('repositories: "default" {"file://fake"}\n')
    subst = {"@PYTHON@": sys.executable, "@LIBDIR@": str(prefix / "lib/ukbuild-fake"), "@TUPLE@": TUPLE}
    shutil.copyfile(_SRC / "tools" / "_fakelib.py", prefix / "lib/ukbuild-fake/_fakelib.py")
    for tool in ("mirage", "opam", "dune", "ocamlfind"):
        _write(prefix / "bin" / tool, _template(tool, subst), executable=True)
    (prefix / "lib/mirage/META").write_text(f'version = "{MIRAGE_VERSION}"\n')
    packages = [p for p in SWITCH_PACKAGES if solo5 or not p.startswith(("solo5", "ocaml-solo5"))]
    (prefix / ".opam-switch/switch-state").write_text(
        'opam-version: "2.0"\ninstalled: [\n' + "".join(f'  "{p}"\n' for p in packages) + "]\n")
    if solo5:
        _install_solo5(prefix, subst)
    return fake


def _install_solo5(prefix: Path, subst: Mapping[str, str]) -> None:
    for tool in ("solo5-elftool", "solo5-tender"):
        _write(prefix / "bin" / tool, _template(tool, subst), executable=True)
    for name in ("solo5-hvt", "solo5-hvt-debug", "solo5-spt"):
        (prefix / "bin" / name).unlink(missing_ok=True)
        os.link(prefix / "bin" / "solo5-tender", prefix / "bin" / name)
    (prefix / "bin" / "solo5-tender").unlink()
    for tool in ("cc", "ld", "objcopy"):
        _write(prefix / "bin" / f"{TUPLE}-{tool}", _template(f"{tool}.in", subst), executable=True)
    shutil.copytree(_SRC / "solo5" / "include", prefix / "include" / "solo5", dirs_exist_ok=True)
    gcc_include = Path(subprocess.run(["gcc", "-print-file-name=include"], capture_output=True, text=True,
                                      check=True).stdout.strip())
    target_include = prefix / "include" / TUPLE
    target_include.mkdir(parents=True, exist_ok=True)
    for header in _HEADERS:
        if (gcc_include / header).exists():
            shutil.copyfile(gcc_include / header, target_include / header)
    lib = prefix / "lib" / TUPLE
    lib.mkdir(parents=True, exist_ok=True)
    lds = (_SRC / "solo5" / "solo5.lds.in").read_text()
    with tempfile.TemporaryDirectory(prefix="fake-solo5-build.") as tmp:
        for abi, (target, version, base, head) in ABIS.items():
            text = lds.replace("@ABI@", abi).replace("@BASE@", hex(base))
            text = text.replace("@HEAD@", "\n".join(_SECTIONS[s] for s in head.split(",")))
            (lib / f"solo5_{abi}.lds").write_text(text)
            defines = [f"-DABI_TARGET={target}", f"-DABI_VERSION={version}"]
            defines += ["-DMULTIBOOT"] if "multiboot" in head else []
            defines += ["-DBANNER"] if abi in ("hvt", "spt") else []
            cc = ["gcc", "-O2", "-ffreestanding", "-fno-pic", "-fno-stack-protector", "-nostdinc",
                  "-fno-asynchronous-unwind-tables", "-mno-red-zone", "-isystem", str(target_include),
                  "-I", str(prefix / "include" / "solo5"), *defines, "-c"]
            out = Path(tmp) / f"solo5_{abi}.o"
            if abi == "virtio":  # freestanding: boots under QEMU through Multiboot
                parts = [Path(tmp) / "boot_virtio.o", Path(tmp) / "bindings_virtio.o"]
                _run([*cc, str(_SRC / "solo5" / "boot_virtio.S"), "-o", str(parts[0])])
                _run([*cc, str(_SRC / "solo5" / "bindings_virtio.c"), "-o", str(parts[1])])
                _run(["ld", "-r", "-o", str(out), *map(str, parts)])
            else:  # Linux system calls: the fake tender runs them as host processes
                _run([*cc, str(_SRC / "solo5" / "bindings.c"), "-o", str(out)])
            shutil.copyfile(out, lib / f"solo5_{abi}.o")
    (prefix / "lib/findlib.conf.d/solo5.conf").write_text(
        f'path(solo5) = "{prefix}/lib/ocaml-solo5/lib"\nocamlopt(solo5) = "{prefix}/lib/ocaml-solo5/bin/ocamlopt"\n')


def _run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode:
        raise RuntimeError(f"fake mirage install: {' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr}")


def _template(name: str, subst: Mapping[str, str]) -> str:
    text = (_SRC / "tools" / name).read_text()
    for key, value in subst.items():
        text = text.replace(key, value)
    return text


def _write(path: Path, text: str, *, executable: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.chmod(0o755 if executable else 0o644)
    tmp.replace(path)
