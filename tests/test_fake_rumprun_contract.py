"""The fake Rumprun toolchain against the recorded behaviour of the real one.

Cases come from shared/reference/toolchain-contract.md §1 (checklist §3):
argv, exit status, stdout/stderr lines (``{PREFIX}`` is the install prefix)
and the kind of file written.  The QEMU tests boot what the fake bakes.
"""

from __future__ import annotations

import os
import re
import select
import signal
import struct
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.fakes.rumprun import FakeRumprun
from tests.fakes.rumprun.fixture import fake_rumprun  # noqa: F401  (fixture)

HELLO_C = r"""
#include <stdio.h>
#include <stdlib.h>
int main(int argc, char **argv)
{
	printf("hello from rumprun argc=%d\n", argc);
	for (int i = 0; i < argc; i++)
		printf("argv[%d]=%s\n", i, argv[i]);
	const char *g = getenv("GREETING");
	printf("GREETING=%s\n", g ? g : "(unset)");
	return argc > 1 ? atoi(argv[1]) : 0;
}
"""
SOURCES = {
    "hello.c": HELLO_C,
    "second.c": 'int puts(const char *);\nint main(void) { puts("second"); return 0; }\n',
    "bad.c": "int main(void) { undefined_fn(); return 0; }\n",
    "nomain.c": "int helper(void) { return 1; }\n",
    "syntax.c": "int main(void) { return 0 }\n",
    "hostobj.c": "int hostfn(void) { return 2; }\n",
}
LD_EXECSTACK = [
    r"/usr/bin/ld: warning: /tmp/cc\w{6}\.o: missing \.note\.GNU-stack section implies executable stack",
    r"/usr/bin/ld: NOTE: This behaviour is deprecated and will be removed in a future version of the linker",
]
NO_MAIN = [
    r"/usr/bin/ld: {PREFIX}/rumprun-x86_64/lib/pseudolinkstubs\.o: in function `_want_main':",
    r".*pseudolinkstubs\.c:6: undefined reference to `main'",
    r"collect2: error: ld returned 1 exit status",
]
HW_VIRTIO = (
    "-lrumpvfs -lrumpkern_bmktc -lrumpkern_mman -lrumpdev -lrumpfs_tmpfs -lrumpnet_config -lrumpnet "
    "-lrumpdev_bpf -lrumpdev_vnd -lrumpdev_rnd -lrumprunfs_base -lrumpnet_netinet -lrumpnet_net "
    "-lrumpnet_netinet6 -lrumpnet_local -lrumpfs_ffs -lrumpfs_cd9660 -lrumpfs_ext2fs -lrumpdev_disk "
    "-lrumpkern_sysproxy -lrumpdev_virtio_if_vioif -lrumpdev_virtio_ld -lrumpdev_virtio_viornd "
    "-lrumpdev_pci_virtio -lrumpdev_pci"
)
HW_GENERIC = HW_VIRTIO + (
    " -lrumpdev_virtio_vioscsi -lrumpdev_scsipi -lrumpdev_audio -lrumpdev_audio_ac97 -lrumpdev_pci_auich "
    "-lrumpdev_pci_eap -lrumpdev_pci_hdaudio -lrumpdev_hdaudio_hdafg -lrumpdev_pci_if_wm -lrumpdev_miiphy "
    "-lrumpdev_pci_usbhc -lrumpdev_usb -lrumpdev_umass"
)
BAKE_USAGE = """rumprun-bake version: 20160209

usage:\trumprun-bake [-c conffile ...] list
\trumprun-bake [-c conffile ...] [-m cmd ...] describe config
\trumprun-bake [-c conffile ...] [-m cmd ...] config out in [in ...]

"list" outputs available configs.

"describe" outputs details for the given config.

Final usage creates a unikernel image:
\tconfig\t: rumprun board configuration to use.
\toutput\t: output file name for the unikernel image.
\tinput\t: executable(s) to bake.
"""
BAKE_LIST = """xen_pv          : Xen with paravirtualized I/O drivers
xen_pci         : Xen with paravirtualized and PCI I/O drivers
hw_virtio       : virtio targets (e.g. QEMU/KVM)
hw_virtio_scsi  : virtio targets with SCSI (e.g. QEMU/KVM)
hw_generic      : generic targets, includes (almost) all drivers
"""
BAKE_OK_STDERR = [
    r"/usr/bin/ld: warning: {PREFIX}/rumprun-x86_64/lib/rumprun-hw/rumprun\.o: requires executable stack "
    r"\(because the \.note\.GNU-stack section is executable\)",
    r"/usr/bin/ld: warning: {OUT} has a LOAD segment with RWX permissions",
]
NOT_RUMPRUN_BIN = '>> ERROR: Could not extract "tuple" from {}. Not rumprun bin?\n'


# --- ELF inspection (what `file`/`readelf -h -S` would say) -----------------


@dataclass(frozen=True)
class Elf:
    """The parts of an ELF64 file the contract talks about."""

    type: int
    machine: int
    entry: int
    sections: dict[str, tuple[int, int, int]]  # name -> (type, flags, size)
    data: bytes = field(repr=False)

    @classmethod
    def read(cls, path: Path) -> Elf:
        data = path.read_bytes()
        assert data[:5] == b"\x7fELF\x02", f"{path} is not ELF64"
        e_type, e_machine, _, e_entry = struct.unpack_from("<HHIQ", data, 16)
        shoff = struct.unpack_from("<Q", data, 0x28)[0]
        shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
        headers = [struct.unpack_from("<IIQQQQ", data, shoff + i * shentsize) for i in range(shnum)]
        strtab_off = headers[shstrndx][4]
        sections = {}
        for name_off, sh_type, flags, _, _, size in headers:
            name = data[strtab_off + name_off : data.index(b"\0", strtab_off + name_off)].decode()
            sections[name] = (sh_type, flags, size)
        return cls(e_type, e_machine, e_entry, sections, data)

    @property
    def has_recipe(self) -> bool:
        return ".note.rumprun.bakerecipe" in self.sections

    def multiboot_header(self) -> tuple[int, tuple[int, ...]] | None:
        """(file offset, the 8 words) of the first Multiboot v1 header in 8 KiB."""
        for off in range(0, min(len(self.data), 8192) - 32, 4):
            magic, flags, checksum = struct.unpack_from("<III", self.data, off)
            if magic == 0x1BADB002 and (magic + flags + checksum) & 0xFFFFFFFF == 0:
                return off, struct.unpack_from("<8I", self.data, off)
        return None


ET_REL, ET_EXEC, EM_X86_64, SHT_NOTE = 1, 2, 62, 7


def recipe_strings(path: Path) -> list[str]:
    out = subprocess.run(["readelf", "-p", ".note.rumprun.bakerecipe", str(path)],
                         capture_output=True, text=True, check=True).stdout
    strings = re.findall(r"^\s+\[\s*[0-9a-f]+\]\s+(.*)$", out, re.M)
    # The header words print too when printable (descsz depends on the prefix's length).
    return strings[strings.index("rumpkernel.org"):]


# --- running the tools --------------------------------------------------------


@pytest.fixture(scope="module")
def work(fake_rumprun: FakeRumprun, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with the test sources and a fermented ``hello``."""
    work = tmp_path_factory.mktemp("rumprun-work")
    for name, text in SOURCES.items():
        (work / name).write_text(text)
    (work / "data" / "sub").mkdir(parents=True)
    (work / "data" / "a.txt").write_text("file a\n")
    (work / "data" / "sub" / "b.bin").write_bytes(bytes(range(200)))
    run(fake_rumprun, work, ["x86_64-rumprun-netbsd-gcc", "-O2", "-o", "hello", "hello.c"], check=True)
    run(fake_rumprun, work, ["x86_64-rumprun-netbsd-gcc", "-O2", "-c", "hello.c", "-o", "hello.o"], check=True)
    subprocess.run(["gcc", "-c", "hostobj.c", "-o", "hostobj.o"], cwd=work, check=True)
    return work


def run(fake: FakeRumprun, cwd: Path, argv: list[str], *, quiet: bool = True,
        check: bool = False) -> subprocess.CompletedProcess[str]:
    """Run a fake tool by its name through PATH, as users do."""
    return subprocess.run(argv, cwd=cwd, env=fake.env(quiet=quiet), capture_output=True,
                          text=True, timeout=120, check=check)


def expand(pattern: str, fake: FakeRumprun, **extra: str) -> str:
    """Substitute {PREFIX} (regex-escaped) and extra names into a recorded line."""
    values = {"PREFIX": re.escape(str(fake.prefix)), **{k: re.escape(v) for k, v in extra.items()}}
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), m.group(0)), pattern)


def assert_lines(text: str, patterns: list[str], fake: FakeRumprun, **extra: str) -> None:
    """Every pattern matches a whole line, in order (other lines may come between)."""
    lines = text.splitlines()
    pos = 0
    for pattern in patterns:
        rx = re.compile(expand(pattern, fake, **extra))
        while pos < len(lines) and not rx.fullmatch(lines[pos]):
            pos += 1
        assert pos < len(lines), f"no line matching {rx.pattern!r} in order in:\n{text}"
        pos += 1


# --- §1.2 the compiler wrappers ------------------------------------------------

COMPILER_CASES = [
    # (id, argv, rc, stdout lines (regex), stderr lines (regex))
    ("dumpmachine", ["x86_64-rumprun-netbsd-gcc", "-dumpmachine"], 0, ["x86_64-rumprun-netbsd"], []),
    ("dumpversion", ["x86_64-rumprun-netbsd-gcc", "-dumpversion"], 0, ["12"], []),
    ("version", ["x86_64-rumprun-netbsd-gcc", "--version"], 0, [r"gcc \(.*\) \d+\.\d+\.\d+", r"Copyright .*"], []),
    ("version-g++", ["x86_64-rumprun-netbsd-g++", "--version"], 0, [r"g\+\+ \(.*\) \d+\.\d+\.\d+"], []),
    ("print-sysroot", ["x86_64-rumprun-netbsd-gcc", "-print-sysroot"], 0, ["{PREFIX}/rumprun-x86_64"], []),
    ("print-multiarch", ["x86_64-rumprun-netbsd-gcc", "-print-multiarch"], 1,
     ["x86_64-rumprun-netbsd-gcc: unrecognized option '-print-multiarch'"], []),
    ("v-alone", ["x86_64-rumprun-netbsd-gcc", "-v"], 1, [],
     ["Using built-in specs.", "Reading specs from {PREFIX}/rumprun-x86_64/lib/specs-compile_or_ferment",
      "rename spec .*", "rename spec .*", "rename spec .*", "rename spec .*", "Target: x86_64-linux-gnu",
      r"gcc version .*", r".*collect2 .* -r -u main .*", *NO_MAIN]),
    ("compile", ["x86_64-rumprun-netbsd-gcc", "-O2", "-c", "hello.c", "-o", "c.o"], 0, [], []),
    ("ferment", ["x86_64-rumprun-netbsd-gcc", "-O2", "-o", "f", "hello.c"], 0, [],
     [*LD_EXECSTACK, r"/usr/bin/ld: warning: f: requires executable stack \(because the \.note\.GNU-stack "
                     r"section is executable\)"]),
    ("ferment-a.out", ["x86_64-rumprun-netbsd-gcc", "second.c"], 0, [],
     [*LD_EXECSTACK, r"/usr/bin/ld: warning: a\.out: requires executable stack .*"]),
    ("undefined", ["x86_64-rumprun-netbsd-gcc", "-o", "bad", "bad.c"], 1, [],
     [r".*implicit declaration of function .undefined_fn.*", *LD_EXECSTACK, r".*bad: requires executable stack.*",
      "/usr/bin/ld: bad: in function `main':", r"\(\.text\+0x[0-9a-f]+\): undefined reference to `undefined_fn'",
      "collect2: error: ld returned 1 exit status"]),
    ("no-main", ["x86_64-rumprun-netbsd-gcc", "-o", "nomain", "nomain.c"], 1, [],
     [*LD_EXECSTACK, r".*nomain: requires executable stack.*", *NO_MAIN]),
    ("syntax-error", ["x86_64-rumprun-netbsd-gcc", "-c", "syntax.c"], 1, [], [r"syntax\.c:1:.*error: .*"]),
]


@pytest.mark.parametrize(("argv", "rc", "stdout", "stderr"), [c[1:] for c in COMPILER_CASES],
                         ids=[c[0] for c in COMPILER_CASES])
def test_compiler_wrapper(fake_rumprun: FakeRumprun, work: Path, argv: list[str], rc: int,
                          stdout: list[str], stderr: list[str]) -> None:
    """The gcc/g++ wrappers exit, print and fail as recorded."""
    proc = run(fake_rumprun, work, argv)
    assert proc.returncode == rc, proc.stderr
    assert_lines(proc.stdout, stdout, fake_rumprun)
    assert_lines(proc.stderr, stderr, fake_rumprun)
    if not stdout:
        assert proc.stdout == ""


def test_version_is_the_host_gcc(fake_rumprun: FakeRumprun, work: Path) -> None:
    """--version is the backing (host) gcc's, as with the real wrappers."""
    host = subprocess.run(["/usr/bin/gcc", "--version"], capture_output=True, text=True, check=True).stdout
    assert run(fake_rumprun, work, ["x86_64-rumprun-netbsd-gcc", "--version"]).stdout == host
    assert fake_rumprun.gcc_version == host.splitlines()[0]


def test_compile_output_is_plain_object(work: Path) -> None:
    """-c writes an ET_REL object with no bake recipe."""
    elf = Elf.read(work / "hello.o")
    assert (elf.type, elf.machine, elf.has_recipe) == (ET_REL, EM_X86_64, False)
    assert ".note.GNU-stack" in elf.sections


def test_ferment_output_is_bakeable_relocatable(fake_rumprun: FakeRumprun, work: Path) -> None:
    """A link writes a 0755 ET_REL with the recorded .note.rumprun.bakerecipe."""
    hello = work / "hello"
    elf = Elf.read(hello)
    assert (elf.type, elf.entry) == (ET_REL, 0)
    assert hello.stat().st_mode & 0o777 == 0o755
    sh_type, flags, size = elf.sections[".note.rumprun.bakerecipe"]
    assert sh_type == SHT_NOTE and flags & 2  # SHF_ALLOC
    assert list(elf.sections)[1] == ".note.rumprun.bakerecipe"
    prefix = fake_rumprun.prefix
    assert recipe_strings(hello) == [
        "rumpkernel.org",
        "rumprun_tuple: x86_64-rumprun-netbsd",
        f"rumprun_tooldir: {prefix}",
        f"rumprun_backingcc: {prefix}/libexec/rumprun-x86_64-hw/x86_64--netbsd-gcc",
        "rumprun_cflags: -mno-red-zone -fcommon -Wno-error",
    ]
    off = elf.data.index(b"rumpkernel.org\0") - 12
    namesz, descsz, note_type = struct.unpack_from("<III", elf.data, off)
    assert (namesz, note_type) == (15, 0x101)
    assert size == (12 + 16 + descsz + 3) & ~3


def test_failed_links_delete_their_output(fake_rumprun: FakeRumprun, work: Path) -> None:
    """Undefined symbols or no main: rc 1 and no output file left behind."""
    for src, out in (("bad.c", "bad2"), ("nomain.c", "nomain2")):
        (work / out).write_text("stale")
        assert run(fake_rumprun, work, ["x86_64-rumprun-netbsd-gcc", "-o", out, src]).returncode == 1
        assert not (work / out).exists()


def test_predefined_macros(fake_rumprun: FakeRumprun, work: Path) -> None:
    """gcc defines __NetBSD__/__RUMPRUN__ and no __linux*; the standalone cpp is host cpp."""
    cmd = ["x86_64-rumprun-netbsd-gcc", "-dM", "-E", "-"]
    out = subprocess.run(cmd, cwd=work, env=fake_rumprun.env(), input="", capture_output=True,
                         text=True, check=True).stdout
    macros = dict(re.findall(r"^#define (\S+) ?(.*)$", out, re.M))
    for name in ("__NetBSD__", "__RUMPRUN__", "__unix__", "__unix", "__ELF__", "__x86_64", "_LP64"):
        assert macros.get(name) == "1", name
    for name in ("linux", "__linux", "__linux__", "__gnu_linux__"):
        assert name not in macros
    cpp = subprocess.run(["x86_64-rumprun-netbsd-cpp", "-dM", "-"], cwd=work, env=fake_rumprun.env(),
                         input="", capture_output=True, text=True, check=True).stdout
    assert "#define __linux 1" in cpp and "__NetBSD__" not in cpp


# --- §1.3 binutils -------------------------------------------------------------


def test_binutils_are_host_binutils(fake_rumprun: FakeRumprun, work: Path) -> None:
    """ar/ranlib/nm/strip behave as GNU binutils; strip keeps the recipe, which still bakes."""
    ar = run(fake_rumprun, work, ["x86_64-rumprun-netbsd-ar", "--version"])
    assert ar.returncode == 0 and ar.stdout.startswith("GNU ar (GNU Binutils")
    noargs = run(fake_rumprun, work, ["x86_64-rumprun-netbsd-ar"])
    assert noargs.returncode == 1
    assert noargs.stderr.startswith("Usage: /usr/bin/ar [emulation options] [-]{dmpqrstx}")
    for argv, out in ((["ar", "rcs", "libhello.a", "hello.o"], ""), (["ar", "t", "libhello.a"], "hello.o\n"),
                      (["ranlib", "libhello.a"], "")):
        proc = run(fake_rumprun, work, [f"x86_64-rumprun-netbsd-{argv[0]}", *argv[1:]])
        assert (proc.returncode, proc.stdout, proc.stderr) == (0, out, "")
    nm = run(fake_rumprun, work, ["x86_64-rumprun-netbsd-nm", "hello"]).stdout
    assert re.search(r"^[0-9a-f]+ T main$", nm, re.M)
    assert {"atoi", "getenv", "printf"} <= set(re.findall(r"^\s+U (\w+)$", nm, re.M))
    assert re.search(r"^[0-9a-f]+ r \.LC0$", nm, re.M)
    (work / "hello-stripped").write_bytes((work / "hello").read_bytes())
    assert run(fake_rumprun, work, ["x86_64-rumprun-netbsd-strip", "hello-stripped"]).returncode == 0
    assert Elf.read(work / "hello-stripped").has_recipe
    baked = run(fake_rumprun, work, ["rumprun-bake", "hw_virtio", "stripped.bin", "hello-stripped"])
    assert baked.returncode == 0, baked.stderr


# --- §1.4 cookfs -----------------------------------------------------------------

COOKFS_CASES = [
    ("no-args", [], 1, ["usage: {PREFIX}/bin/x86_64-rumprun-netbsd-cookfs \\[-s count\\] outfile directory \\.\\.\\."],
     []),
    ("one-arg", ["out.o"], 1, ["usage: .*-cookfs \\[-s count\\] outfile directory \\.\\.\\."], []),
    ("bad-s", ["-s", "x", "datax.fs.o", "data"], 1, [">> ERROR: argument to -s must be a non-negative decimal"], []),
    ("s-too-big", ["-s", "5", "data5.fs.o", "data"], 1,
     [">> ERROR: cannot", "remove", "5", "components", "from", '"data"'], []),
    ("no-dir", ["nodir.o", "nosuchdir"], 1, [],
     ["find: ‘nosuchdir’: No such file or directory", "find: ‘nosuchdir’: No such file or directory",
      r"/usr/bin/ld: cannot find /tmp/rumprun-cookfs\.\w{6}/d\*\.o: No such file or directory",
      "collect2: error: ld returned 1 exit status"]),
    ("ok", ["data.fs.o", "data"], 0, [],
     [r"/usr/bin/ld: warning: /tmp/rumprun-cookfs\.\w{6}/d\d+\.o: missing \.note\.GNU-stack section implies "
      r"executable stack", LD_EXECSTACK[1]]),
    ("ok-s1", ["-s", "1", "data1.fs.o", "data"], 0, [], [r".*missing \.note\.GNU-stack.*"]),
]


@pytest.mark.parametrize(("args", "rc", "stdout", "stderr"), [c[1:] for c in COOKFS_CASES],
                         ids=[c[0] for c in COOKFS_CASES])
def test_cookfs(fake_rumprun: FakeRumprun, work: Path, args: list[str], rc: int,
                stdout: list[str], stderr: list[str]) -> None:
    """cookfs usage, -s errors and output as recorded; it is run through PATH."""
    proc = run(fake_rumprun, work, ["x86_64-rumprun-netbsd-cookfs", *args])
    assert proc.returncode == rc, proc.stderr
    assert_lines(proc.stdout, stdout, fake_rumprun)
    assert_lines(proc.stderr, stderr, fake_rumprun)
    if rc:
        assert not (work / "nodir.o").exists()
        return
    out = work / args[-2]
    elf = Elf.read(out)
    assert elf.type == ET_REL and ".init_array" in elf.sections and ".note.gnu.build-id" in elf.sections
    nm = run(fake_rumprun, work, ["x86_64-rumprun-netbsd-nm", str(out)]).stdout
    sizes = {int(v, 16) for v in re.findall(r"^([0-9a-f]+) A _rumpfs_f\d+_size$", nm, re.M)}
    assert sizes == {7, 200}
    assert re.search(r" d _rumpfs_f\d+_start$", nm, re.M) or re.search(r" [dD] _rumpfs_f\d+_start$", nm, re.M)
    assert re.search(r" t rumpfs_externatilize$", nm, re.M) and re.search(r" U rumprun_platefs$", nm, re.M)


# --- §1.5 rumprun-bake ----------------------------------------------------------

BAKE_CASES = [
    ("no-args", [], 1, BAKE_USAGE, ""),
    ("dash-h", ["-h"], 1, BAKE_USAGE, "Illegal option -h\n"),
    ("bad-option", ["-x"], 1, BAKE_USAGE, "Illegal option -x\n"),
    ("no-inputs", ["hw_virtio", "out.bin"], 1, BAKE_USAGE, ""),
    ("list", ["list"], 0, BAKE_LIST, ""),
    ("describe", ["describe", "hw_virtio"], 0, HW_VIRTIO + "\n", ""),
    ("describe-generic", ["describe", "hw_generic"], 0, HW_GENERIC + "\n", ""),
    ("describe-m", ["-m", "add -lrumpdev_audio", "-m", "remove -lrumpdev_pci_virtio", "describe", "hw_virtio"], 0,
     HW_VIRTIO.replace(" -lrumpdev_pci_virtio", "") + " -lrumpdev_audio\n", ""),
    ("describe-normalised", ["describe", "hw-virtio"], 0, HW_VIRTIO + "\n", ""),
    ("describe-unknown", ["describe", "hw_nonexist"], 1, '>> ERROR: config "hw_nonexist" not found ()\n', ""),
    ("describe-none", ["describe"], 1, '>> ERROR: "describe" needs exactly one config.\n', ""),
    ("unsupported", ["hw_bogus", "x.bin", "hello"], 1, 'rumprun-bake: error: unsupported config "hw_bogus"\n', ""),
    ("missing-input", ["hw_generic", "x.bin", "nosuchfile"], 1, NOT_RUMPRUN_BIN.format("nosuchfile"), ""),
    ("host-elf", ["hw_generic", "x.bin", "/bin/true"], 1, NOT_RUMPRUN_BIN.format("/bin/true"), ""),
    ("host-object", ["hw_generic", "x.bin", "hostobj.o"], 1, NOT_RUMPRUN_BIN.format("hostobj.o"), ""),
    ("compile-only", ["hw_generic", "x.bin", "hello.o"], 1, NOT_RUMPRUN_BIN.format("hello.o"), ""),
    ("nine-inputs", ["hw_generic", "x.bin", *["hello"] * 9], 1, ">> max 8 binaries supported currently\n", ""),
    ("no-conf", ["-c", "nosuch.conf", "list"], 1,
     "rumprun-bake: error: Configuration file nosuch.conf not found\n", ""),
]


@pytest.mark.parametrize(("args", "rc", "stdout", "stderr"), [c[1:] for c in BAKE_CASES],
                         ids=[c[0] for c in BAKE_CASES])
def test_bake_messages(fake_rumprun: FakeRumprun, work: Path, args: list[str], rc: int,
                       stdout: str, stderr: str) -> None:
    """rumprun-bake's usage, list, describe and errors, byte for byte; failures write nothing."""
    proc = run(fake_rumprun, work, ["rumprun-bake", *args])
    assert (proc.returncode, proc.stdout, proc.stderr) == (rc, stdout, stderr)
    assert not (work / "x.bin").exists()


def test_bake_banner(fake_rumprun: FakeRumprun, work: Path) -> None:
    """Without RUMPRUN_WARNING_STFU=please every run starts with the banner on stderr."""
    proc = run(fake_rumprun, work, ["rumprun-bake", "list"], quiet=False)
    assert proc.stderr == "\n!!!\n!!! NOTE: rumprun-bake is experimental. syntax may change in the future\n!!!\n\n"
    assert proc.stdout == BAKE_LIST


def test_bake_link_errors(fake_rumprun: FakeRumprun, work: Path) -> None:
    """Misspelt -m libraries and unwritable outputs fail in the link; unknown -m commands do not."""
    proc = run(fake_rumprun, work, ["rumprun-bake", "-m", "add -lrumpfs_cd9660fs", "hw_virtio", "x.bin", "hello"])
    assert proc.returncode == 1
    assert_lines(proc.stderr, ["/usr/bin/ld: cannot find -lrumpfs_cd9660fs: No such file or directory",
                               "collect2: error: ld returned 1 exit status"], fake_rumprun)
    proc = run(fake_rumprun, work, ["rumprun-bake", "hw_generic", "nodir/x.bin", "hello"])
    assert (proc.returncode, proc.stdout) == (1, "")
    assert_lines(proc.stderr, ["/usr/bin/ld: cannot open output file nodir/x.bin: No such file or directory",
                               "collect2: error: ld returned 1 exit status"], fake_rumprun)
    proc = run(fake_rumprun, work, ["rumprun-bake", "-m", "frobnicate", "hw_virtio", "frob.bin", "hello"])
    assert proc.returncode == 0
    assert_lines(proc.stderr, [r"{PREFIX}/bin/rumprun-bake: 3: /tmp/rumprun-bake\.\w{6}/cmdconfig: "
                               r"frobnicate: not found"], fake_rumprun)
    assert (work / "frob.bin").exists()


def test_bake_dry_run(fake_rumprun: FakeRumprun, work: Path) -> None:
    """-n prints the objcopy and gcc command lines and writes nothing."""
    proc = run(fake_rumprun, work, ["rumprun-bake", "-n", "hw_virtio", "dry.bin", "hello"])
    assert proc.returncode == 0 and not (work / "dry.bin").exists()
    p = re.escape(str(fake_rumprun.prefix))
    tmp = r"/tmp/rumprun-bake\.\w{6}"
    assert re.fullmatch(
        rf"{p}/bin/x86_64-rumprun-netbsd-objcopy --redefine-sym main=rumprun_main1 hello {tmp}/tmp1\.obj\n"
        rf"{p}/libexec/rumprun-x86_64-hw/x86_64--netbsd-gcc -mno-red-zone -fcommon -Wno-error -no-pie "
        rf"--sysroot {p}/rumprun-x86_64 -specs={p}/rumprun-x86_64/lib/rumprun-hw/specs-bake -o dry\.bin "
        rf"{tmp}/tmp1\.obj -Wl,--whole-archive {re.escape(HW_VIRTIO)}\n", proc.stdout)


@pytest.mark.parametrize(("config", "inputs"), [("hw_virtio", ["hello"]), ("hw_generic", ["hello", "a.out"])])
def test_baked_image_shape(fake_rumprun: FakeRumprun, work: Path, config: str, inputs: list[str]) -> None:
    """A bake writes a static ELF64 ET_EXEC, entry 0x104000, Multiboot a.out kludge at 0x1000, no notes."""
    if not (work / "a.out").exists():
        run(fake_rumprun, work, ["x86_64-rumprun-netbsd-gcc", "second.c"], check=True)
    out = work / f"{config}.bin"
    proc = run(fake_rumprun, work, ["rumprun-bake", config, out.name, *inputs])
    assert (proc.returncode, proc.stdout) == (0, ""), proc.stderr
    assert_lines(proc.stderr, BAKE_OK_STDERR, fake_rumprun, OUT=out.name)
    assert out.stat().st_mode & 0o777 == 0o755
    assert 17_000_000 <= out.stat().st_size <= 22_500_000
    elf = Elf.read(out)
    assert (elf.type, elf.machine, elf.entry) == (ET_EXEC, EM_X86_64, 0x104000)
    assert not any(t == SHT_NOTE for t, _, _ in elf.sections.values())
    assert list(elf.sections)[1] == ".bootstrap" and elf.sections[".bootstrap"][2] == 0x1020
    header = elf.multiboot_header()
    assert header is not None
    off, (magic, flags, checksum, header_addr, load_addr, load_end, bss_end, entry) = header
    assert (off, flags, checksum) == (0x1000, 0x00010003, 0xE4514FFB)
    assert header_addr == load_addr == 0x100000 and entry == 0x104000 and load_end <= bss_end
    nm = run(fake_rumprun, work, ["x86_64-rumprun-netbsd-nm", out.name]).stdout
    mains = {name: addr for addr, name in re.findall(r"^([0-9a-f]+) [TtWw] (rumprun_main\d)$", nm, re.M)}
    assert sorted(mains) == [f"rumprun_main{i}" for i in range(1, 9)]
    empty = {mains[f"rumprun_main{i}"] for i in range(len(inputs) + 1, 9)}
    assert len(empty) == 1 and not empty & {mains[f"rumprun_main{i}"] for i in range(1, len(inputs) + 1)}


def test_strip_shrinks_image(fake_rumprun: FakeRumprun, work: Path) -> None:
    """Stripping a baked image keeps a bootable Multiboot ELF and makes it much smaller."""
    run(fake_rumprun, work, ["rumprun-bake", "hw_virtio", "s-in.bin", "hello"], check=True)
    run(fake_rumprun, work, ["x86_64-rumprun-netbsd-strip", "-o", "s.bin", "s-in.bin"], check=True)
    assert (work / "s.bin").stat().st_size < (work / "s-in.bin").stat().st_size // 10
    assert Elf.read(work / "s.bin").multiboot_header() is not None


# --- §1.6 CMake toolchain file --------------------------------------------------


def test_cmake_toolchain_file(fake_rumprun: FakeRumprun) -> None:
    """Eight set() lines with absolute paths into PREFIX and nothing else."""
    p = fake_rumprun.prefix
    assert fake_rumprun.cmake_toolchain_file.read_text().splitlines() == [
        "set(CMAKE_SYSTEM_NAME Generic)",
        f"set(CMAKE_C_COMPILER {p}/bin/x86_64-rumprun-netbsd-gcc)",
        f"set(CMAKE_CXX_COMPILER {p}/bin/x86_64-rumprun-netbsd-g++)",
        f"set(CMAKE_FIND_ROOT_PATH {p}/rumprun-x86_64)",
        "set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)",
        "set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)",
        "set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)",
        "set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)",
    ]


# --- §1.8 the rumprun launcher --------------------------------------------------

DUMP_SIMPLE = 'qemu-system-x86_64 -net none -m 64 -kernel {app} -append  {{,, \n\t"cmdline": "{app}",, \n}},, \n'
DUMP_FULL = (
    "qemu-system-x86_64 -net nic,model=virtio,macaddr=52:54:00:[0-9a-f]{{2}}:[0-9a-f]{{2}}:[0-9a-f]{{2}} -net user "
    "-drive if=virtio,file=data.img,format=raw -m 128 -nographic -vga none -kernel {app} -append  {{,, \n"
    '\t"blk" :  {{,, \n\t\t"source":\t"dev",, \n\t\t"path":\t"/dev/ld0a",, \n\t\t"fstype":\t"blk",, \n'
    '\t\t"mountpoint":\t"/data",, \n\t}},, \n'
    '\t"env": "GREETING=hi",, \n\t"env": "PATHX=/a,,b",, \n'
    '\t"net" :  {{,, \n\t\t"if":\t\t"vioif0",, \n\t\t"type":\t"inet",, \n\t\t"method":\t"static",, \n'
    '\t\t"addr":\t"10.0.2.15",, \n\t\t"mask":\t"24",, \n\t\t"gw":\t\t"10.0.2.2",, \n\t}},, \n'
    '\t"cmdline": "{app} arg1 arg two -- --x=1,,2",, \n}},, \n'
)


def test_launcher_dump(fake_rumprun: FakeRumprun, work: Path) -> None:
    """-D prints the QEMU command with the recorded JSON (every comma doubled)."""
    (work / "data.img").write_bytes(b"\0" * 4096)
    app = "hello.bin"
    run(fake_rumprun, work, ["rumprun-bake", "hw_virtio", app, "hello"], check=True)
    proc = run(fake_rumprun, work, ["rumprun", "-D", "qemu", "-i", app])
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, DUMP_SIMPLE.format(app=app), "")
    proc = run(fake_rumprun, work, [
        "rumprun", "-D", "qemu", "-i", "-M", "128", "-b", "data.img,/data", "-e", "GREETING=hi", "-e", "PATHX=/a,b",
        "-I", "qnet0,vioif,-net user", "-W", "qnet0,inet,static,10.0.2.15/24,10.0.2.2",
        "-g", "-nographic -vga none", app, "arg1", "arg two", "--", "--x=1,2"])
    assert proc.returncode == 0 and proc.stderr == ""
    assert re.fullmatch(DUMP_FULL.format(app=re.escape(app)), proc.stdout), proc.stdout
    kvm = run(fake_rumprun, work, ["rumprun", "-D", "kvm", "-i", "-D", "1234", "-p", app])
    assert kvm.stdout.startswith(f"qemu-system-x86_64 -net none -enable-kvm -cpu host -gdb tcp::1234 -S -m 64 "
                                 f"-kernel {app} -append ")
    background = run(fake_rumprun, work, ["rumprun", "-D", "qemu", app])
    assert re.fullmatch(r"qemu:\d+\n", background.stdout)
    second_if = run(fake_rumprun, work, ["rumprun", "-D", "qemu", "-i", "-I", "a,vioif,-net user", "-W",
                                         "a,inet,dhcp", "-I", "b,vioif,-net user", "-W", "b,inet6,auto", app])
    assert '"if":\t\t"vioif2",, ' in second_if.stdout and '"method":\t"auto",, ' in second_if.stdout


LAUNCHER_ERRORS = [
    # (id, args, rc, stdout regex, stderr regex)
    ("no-args", [], 1, r"usage: rumprun \[script args\] PLATFORM .*", r""),
    ("dash-h", ["-h", "qemu"], 1, r"usage: rumprun .*", r""),
    ("bad-platform", ["bogus", "x.bin"], 1, r"usage: rumprun .*", r'Invalid platform "bogus"\n'),
    ("no-file", ["qemu", "-i", "nosuch.bin"], 1, r"", r"rumprun: error: file not found: nosuch\.bin\n"),
    ("no-blk", ["qemu", "-i", "-b", "nosuch.img,/data", "hello.bin"], 1, r"",
     r"rumprun: error: File nosuch\.img does not exist\n"),
    ("dash-d", ["qemu", "-d", "hello.bin"], 1, r"", r"rumprun: error: -d not supported on qemu/kvm\n"),
    ("no-app", ["qemu", "-i"], 2, r"", r"{PREFIX}/bin/rumprun: 658: 1: parameter not set\n"),
    ("W-without-I", ["-D", "qemu", "-W", "qnet0,inet,dhcp", "hello.bin"], 0, r"qemu:\d+\n",
     r"{PREFIX}/bin/rumprun: 1: eval: qnet02ifname: parameter not set\n"
     r"{PREFIX}/bin/rumprun: 1: eval: qnet02cloner: parameter not set\n"),
]


@pytest.mark.parametrize(("args", "rc", "stdout", "stderr"), [c[1:] for c in LAUNCHER_ERRORS],
                         ids=[c[0] for c in LAUNCHER_ERRORS])
def test_launcher_errors(fake_rumprun: FakeRumprun, work: Path, args: list[str], rc: int,
                         stdout: str, stderr: str) -> None:
    """The launcher's usage (48 lines on stdout) and error exits as recorded."""
    if not (work / "hello.bin").exists():
        run(fake_rumprun, work, ["rumprun-bake", "hw_virtio", "hello.bin", "hello"], check=True)
    proc = run(fake_rumprun, work, ["rumprun", *args])
    assert proc.returncode == rc
    assert re.fullmatch(expand(stderr, fake_rumprun), proc.stderr), proc.stderr
    assert re.match(expand(stdout, fake_rumprun), proc.stdout) and (stdout or proc.stdout == "")
    if stdout.startswith("usage"):
        assert len(proc.stdout.splitlines()) == 48


# --- §1.9 booting what the fake bakes (QEMU, TCG) --------------------------------

QEMU = ["qemu-system-x86_64", "-machine", "pc", "-accel", "tcg", "-display", "none", "-monitor", "none",
        "-serial", "stdio", "-nic", "none", "-no-reboot", "-vga", "none", "-m", "64"]
BOOT_TIMEOUT = 30.0


def boot(kernel: Path, append: str | None, until: str = "halted") -> list[str]:
    """Boot ``kernel`` with -kernel/-append, read serial lines until ``until``, then kill QEMU."""
    argv = [*QEMU, "-kernel", str(kernel), *(["-append", append] if append is not None else [])]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    assert proc.stdout is not None
    buf = b""
    deadline = time.monotonic() + BOOT_TIMEOUT
    try:
        while until.encode() + b"\r\n" not in buf and time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stdout], [], [], 0.5)
            if ready:
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    break
                buf += chunk
        # Real Rumprun never powers off: QEMU must still be running after "halted".
        assert proc.poll() is None, f"QEMU exited by itself ({proc.returncode}):\n{buf.decode(errors='replace')}"
    finally:
        proc.kill()
        proc.wait(timeout=10)
        proc.stdout.close()
    text = buf.decode(errors="replace")
    assert f"{until}\r\n" in text, f"no {until!r} within {BOOT_TIMEOUT}s:\n{text}"
    return text.split("\r\n")


HALT = ["rump kernel halting...", "syncing disks... done", "unmounting file systems...",
        "unmounted tmpfs on /tmp type tmpfs", "unmounted rumpfs on / type rumpfs", "unmounting done", "halted"]


@pytest.fixture(scope="module")
def nonce_image(fake_rumprun: FakeRumprun, work: Path) -> tuple[Path, str]:
    """A C program printing a nonce from its source and its argv, fermented and baked for hw_virtio."""
    nonce = os.urandom(8).hex()
    src = work / "nonce.c"
    src.write_text(HELLO_C.replace('printf("hello from rumprun', f'puts("nonce={nonce}");\n\tprintf("hello from rumprun'))
    run(fake_rumprun, work, ["x86_64-rumprun-netbsd-gcc", "-O2", "-o", "nonce", "nonce.c"], check=True)
    run(fake_rumprun, work, ["rumprun-bake", "hw_virtio", "nonce.bin", "nonce"], check=True)
    return work / "nonce.bin", nonce


@pytest.mark.realtool("qemu-system-x86_64")
def test_boot_end_to_end(nonce_image: tuple[Path, str]) -> None:
    """The baked kernel boots under QEMU -kernel, runs main with the JSON argv/env and halts."""
    kernel, nonce = nonce_image
    lines = boot(kernel, '{"env": "GREETING=single,comma", "cmdline": "nonce.bin 7 x,y"}')
    expected = [
        "rump kernel bare metal bootstrap", "NetBSD 7.99.34 (RUMP-ROAST)", "total memory = 30528 KB",
        "mounted tmpfs on /tmp", "", '=== calling "nonce.bin" main() ===', "", f"nonce={nonce}",
        "hello from rumprun argc=3", "argv[0]=nonce.bin", "argv[1]=7", "argv[2]=x,y", "GREETING=single,comma",
        "", '=== main() of "nonce.bin" returned 7 ===', "", "=== ERROR: _exit(7) called ===", *HALT,
    ]
    it = iter(lines)
    for want in expected:
        assert any(line == want for line in it), f"missing {want!r} (in order) in:\n" + "\n".join(lines)
    start = lines.index('=== calling "nonce.bin" main() ===')
    assert lines[start:start + 14] == expected[5:19]


BOOT_CASES = [
    # (id, -append, lines that must appear in order)
    ("launcher-json", ' {,, \n\t"env": "GREETING=hi,,there",, \n\t"cmdline": "hello.bin 0 a,,b",, \n},, \n',
     ["argv[2]=a,,b", "GREETING=hi,,there", '=== main() of "hello.bin" returned 0 ===', "",
      "=== _exit(0) called ===", *HALT]),
    ("no-json", "hello.bin 3 plain",
     ["rumprun: could not find start of json.  no config?", "", '=== calling "rumprun" main() ===', "",
      "hello from rumprun argc=1", "argv[0]=rumprun", '=== main() of "rumprun" returned 0 ===', *HALT]),
    ("no-append", None, ["rumprun: could not find start of json.  no config?", "argv[0]=rumprun", *HALT]),
    ("unknown-key", '{"cmdline": "hello.bin", "bogus": 1}',
     ['rumprun: no match for key "bogus"', "=== bootstrap failed", *HALT]),
    ("blk-without-disk", '{"blk": {"source": "dev", "path": "/dev/ld0a", "fstype": "blk", "mountpoint": "/data"}, '
     '"cmdline": "hello.bin"}',
     ['rumprun: failed to mount fs type "blk" from "/dev/ld0a" to "/data"', "=== bootstrap failed", *HALT]),
]


@pytest.mark.realtool("qemu-system-x86_64")
@pytest.mark.parametrize(("append", "expected"), [c[1:] for c in BOOT_CASES], ids=[c[0] for c in BOOT_CASES])
def test_boot_config_handling(fake_rumprun: FakeRumprun, work: Path, append: str | None,
                              expected: list[str]) -> None:
    """The guest's JSON handling: doubled commas kept, no JSON, unknown keys, failed mounts."""
    kernel = work / "boot-hello.bin"
    if not kernel.exists():
        run(fake_rumprun, work, ["rumprun-bake", "hw_virtio", kernel.name, "hello"], check=True)
    lines = boot(kernel, append)
    it = iter(lines)
    for want in expected:
        assert any(line == want for line in it), f"missing {want!r} (in order) in:\n" + "\n".join(lines)
    if "bootstrap failed" in " ".join(expected):
        assert not any("main() ===" in line for line in lines)


@pytest.mark.realtool("qemu-system-x86_64")
def test_boot_two_programs(fake_rumprun: FakeRumprun, work: Path) -> None:
    """A multibake runs every program in order; with "rc" each gets its own argv."""
    kernel = work / "two.bin"
    run(fake_rumprun, work, ["rumprun-bake", "hw_generic", kernel.name, "hello", "hello"], check=True)
    lines = boot(kernel, '{"cmdline": "hello.bin 5"}')
    assert "total memory = 30184 KB" in lines
    assert lines.count('=== calling "hello.bin" main() ===') == 2
    assert lines.count("=== ERROR: _exit(5) called ===") == 2
    lines = boot(kernel, '{"rc": [{"bin": "first", "argv": ["9"]}, {"bin": "second", "argv": []}]}')
    it = iter(lines)
    for want in ['=== calling "first" main() ===', "argv[1]=9", "=== ERROR: _exit(9) called ===",
                 '=== calling "second" main() ===', "=== _exit(0) called ===", "out of argv entries", *HALT]:
        assert any(line == want for line in it), f"missing {want!r} in:\n" + "\n".join(lines)


@pytest.mark.realtool("qemu-system-x86_64")
def test_boot_through_launcher(fake_rumprun: FakeRumprun, work: Path) -> None:
    """`rumprun qemu -i` boots the image; its doubled commas reach the guest as recorded."""
    kernel = work / "launch.bin"
    run(fake_rumprun, work, ["rumprun-bake", "hw_virtio", kernel.name, "hello"], check=True)
    argv = ["rumprun", "qemu", "-i", "-M", "64", "-e", "GREETING=hi,there", "-g", "-nographic -vga none -no-reboot",
            kernel.name, "4", "x,y"]
    proc = subprocess.Popen(argv, cwd=work, env=fake_rumprun.env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    assert proc.stdout is not None
    buf = b""
    deadline = time.monotonic() + BOOT_TIMEOUT
    try:
        while b"halted\r\n" not in buf and time.monotonic() < deadline:
            if select.select([proc.stdout], [], [], 0.5)[0]:
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    break
                buf += chunk
    finally:
        # The launcher's own session: the sh script (whose trap removes its tmp dir) and its QEMU.
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        proc.stdout.close()
    lines = buf.decode(errors="replace").split("\r\n")
    for want in ["argv[2]=x,,y", "GREETING=hi,,there", '=== main() of "launch.bin" returned 4 ===',
                 "=== ERROR: _exit(4) called ===", "halted"]:
        assert want in lines, "\n".join(lines)


# --- §1.7 cross builds with --host ------------------------------------------------

LIBGREET = Path(__file__).parent / "fakes" / "rumprun" / "testdata" / "libgreet"


@pytest.mark.parametrize("cache", [[], ["ac_cv_func_fork=no", "ac_cv_sizeof_long=8"]], ids=["probed", "cached"])
def test_configure_host_build(fake_rumprun: FakeRumprun, tmp_path: Path, cache: list[str]) -> None:
    """A configure --host=x86_64-rumprun-netbsd finds the tools by tuple and sees a cross compiler."""
    proc = subprocess.run([str(LIBGREET / "configure"), "--host=x86_64-rumprun-netbsd",
                           f"--prefix={tmp_path / 'inst'}", *cache],
                          cwd=tmp_path, env=fake_rumprun.env(), capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    fork = "(cached) no" if cache else "yes"  # libc links fork, so the probe says yes, as recorded
    size = "(cached) 8" if cache else "8"
    assert_lines(proc.stdout, [
        "checking host system type... x86_64-rumprun-netbsd",
        "checking for x86_64-rumprun-netbsd-gcc... x86_64-rumprun-netbsd-gcc",
        "checking whether the C compiler works... yes",
        "checking for C compiler default output file name... a.out",
        "checking for suffix of executables... ",
        "checking whether we are cross compiling... yes",
        re.escape(f"checking size of long... {size}"),
        re.escape(f"checking for fork... {fork}"),
    ], fake_rumprun)
    make = subprocess.run(["make", "install"], cwd=tmp_path, env=fake_rumprun.env(),
                          capture_output=True, text=True, check=False)
    assert make.returncode == 0, make.stdout + make.stderr
    program = tmp_path / "inst" / "bin" / "greet"
    assert Elf.read(program).has_recipe
    assert "greet.o\n" == run(fake_rumprun, tmp_path, ["x86_64-rumprun-netbsd-ar", "t", "inst/lib/libgreet.a"]).stdout
    run(fake_rumprun, tmp_path, ["rumprun-bake", "hw_virtio", "greet.bin", str(program)], check=True)


@pytest.mark.realtool("qemu-system-x86_64")
def test_configure_built_program_boots(fake_rumprun: FakeRumprun, tmp_path: Path) -> None:
    """The program built against the cross-built library runs in the baked kernel."""
    env = fake_rumprun.env()
    subprocess.run([str(LIBGREET / "configure"), "--host=x86_64-rumprun-netbsd", "ac_cv_func_fork=no"],
                   cwd=tmp_path, env=env, capture_output=True, check=True)
    subprocess.run(["make"], cwd=tmp_path, env=env, capture_output=True, check=True)
    run(fake_rumprun, tmp_path, ["rumprun-bake", "hw_virtio", "greet.bin", "greet"], check=True)
    lines = boot(tmp_path / "greet.bin", '{"cmdline": "greet rumprun"}')
    assert "greetings, rumprun (sizeof(long)=8, fork=no)" in lines


@pytest.mark.realtool("qemu-system-x86_64")
def test_cxx_program_boots(fake_rumprun: FakeRumprun, tmp_path: Path) -> None:
    """g++ ferments (with -lc++ -lunwind, -lstdc++ replaced) and the baked C++ program runs."""
    (tmp_path / "hellocxx.cc").write_text(
        '#include <stdio.h>\nstruct A { A() { puts("ctor ran"); } };\nstatic A a;\n'
        'int main() { int *p = new int(3); printf("hello c++ %d\\n", *p); delete p; return 0; }\n')
    run(fake_rumprun, tmp_path, ["x86_64-rumprun-netbsd-g++", "-o", "hellocxx", "hellocxx.cc"], check=True)
    assert Elf.read(tmp_path / "hellocxx").has_recipe
    run(fake_rumprun, tmp_path, ["rumprun-bake", "hw_virtio", "hellocxx.bin", "hellocxx"], check=True)
    lines = boot(tmp_path / "hellocxx.bin", '{"cmdline": "hellocxx"}')
    it = iter(lines)
    for want in ["ctor ran", '=== calling "hellocxx" main() ===', "hello c++ 3",
                 '=== main() of "hellocxx" returned 0 ===', "halted"]:
        assert any(line == want for line in it), "\n".join(lines)
