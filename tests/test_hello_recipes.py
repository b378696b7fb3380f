"""The C hello recipes of each backend (recipes/hello/{multiboot,rumprun,solo5}), built as users
build them: each builds, a second build is all cache hits, and each runs where this machine can —
QEMU (TCG) for Multiboot, Rumprun hw and Solo5 virtio, the fake Solo5 tenders for hvt/spt — with
its console line asserted.  Rumprun and Solo5 use the fakes in tests/fakes/, and the same recipe,
unchanged, with a real toolchain when one is found (skipped with the reason otherwise)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.fakes.mirage import FakeMirage, install_fake_mirage
from tests.fakes.rumprun._install import FakeRumprun
from tests.fakes.rumprun.fixture import fake_rumprun  # noqa: F401
from ukbuild import api
from ukbuild.plugins import Backend
from ukbuild.runner import QemuLaunch
from ukbuild.runner import run as boot
from ukbuild_mirage.plugin import MirageBackend
from ukbuild_rumprun.plugin import RumprunBackend

RECIPES = Path(__file__).resolve().parents[1] / "recipes" / "hello"
QEMU = "qemu-system-x86_64"
#: The environment the session started with, before tests point it at a fake.
_ORIGINAL_ENV = dict(os.environ)


class Recipe:
    """A copy of one recipe directory, built and run through the API with its own cache."""

    def __init__(self, name: str, tmp: Path) -> None:
        self.root = tmp / name
        shutil.copytree(RECIPES / name, self.root)
        self.cache = tmp / "cache"

    def options(self, out: str = "out") -> api.BuildOptions:
        return api.BuildOptions(cache_dir=self.cache, out_dir=self.root / out, jobs=2)

    def build(self, out: str = "out") -> api.BuildResult:
        return api.Build(api.load_project(self.root), (), self.options(out)).run()

    def built_twice(self) -> api.BuildResult:
        first = self.build()
        assert first.ok, first.errors
        assert {o.status for o in first.outcomes.values()} == {"executed"}
        again = self.build(out="out2")
        assert again.ok, again.errors
        assert {o.status for o in again.outcomes.values()} == {"cached"}
        return first

    def run(self, target: str, *args: str) -> api.RunResult:
        return api.run(api.load_project(self.root), target, args, self.options())


def text(console: bytes) -> str:
    return console.decode("utf-8", "replace").replace("\r\n", "\n")


@pytest.mark.realtool("gcc", "ld", "syslinux", QEMU)
def test_multiboot(tmp_path: Path) -> None:
    recipe = Recipe("multiboot", tmp_path)
    result = recipe.built_twice()
    assert {"hello", "hello-disk"} <= set(result.outcomes)
    kernel = recipe.run("hello")
    assert kernel.status == 0
    assert "Hello, world! (multiboot C recipe)\nbooted by: qemu\n" in text(kernel.console)
    assert text(kernel.console).rstrip("\n").endswith(" from the multiboot recipe")
    disk = recipe.run("hello-disk")
    assert disk.status == 0
    assert "booted by: SYSLINUX" in text(disk.console)
    assert "command line: kernel.elf from the multiboot recipe\n" in text(disk.console)


def _real_prefix(backend: Backend, fake_marker: str, tool: str) -> str | None:
    """The prefix of a real (not fake) toolchain of ``backend`` in the session's original environment."""
    found = api.detect_backends({backend.NAME: backend}, _ORIGINAL_ENV)[0]
    if found.toolchain is None:
        return None
    path = next((Path(str(t.path)) for t in found.toolchain.tools if t.name == tool), None)
    if path is None or not path.is_file() or fake_marker in path.read_bytes()[:2000].decode(errors="replace"):
        return None
    return str(found.toolchain.prefix or path.parent.parent)


@pytest.fixture(params=["fake", "real"])
def rumprun(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """$UKBUILD_RUMPRUN_PREFIX: the fake toolchain, then a real one when found."""
    if request.param == "fake":
        fake: FakeRumprun = request.getfixturevalue("fake_rumprun")
        prefix = str(fake.prefix)
    else:
        found = _real_prefix(RumprunBackend(), "Fake rumprun-bake", "rumprun-bake")
        if found is None:
            pytest.skip("no real Rumprun toolchain: set UKBUILD_RUMPRUN_PREFIX to one, or put its bin/ on PATH "
                        "(it cannot be installed on the CI machine: upstream needs gcc 5-7)")
        prefix = found
    monkeypatch.setenv("UKBUILD_RUMPRUN_PREFIX", prefix)
    return prefix


@pytest.mark.realtool("gcc", "ld", QEMU)
def test_rumprun(rumprun: str, tmp_path: Path) -> None:
    recipe = Recipe("rumprun", tmp_path)
    result = recipe.built_twice()
    assert set(result.outcomes) == {"hello-c", "hello"}
    ran = recipe.run("hello")
    console = text(ran.console)
    assert ran.status == 0
    assert "=== calling \"hello\" main() ===" in console
    assert "Hello, world! (rumprun C recipe)\nargv[1] = from\nargv[2] = the\nargv[3] = rumprun\n" in console
    assert "=== main() of \"hello\" returned 0 ===" in console


@pytest.fixture(scope="module")
def fake_solo5(tmp_path_factory: pytest.TempPathFactory) -> FakeMirage:
    return install_fake_mirage(tmp_path_factory.mktemp("fake-mirage"))


@pytest.fixture(params=["fake", "real"])
def solo5(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The Solo5 toolchain's bin/ (through the mirage backend): the fake, then a real one when found."""
    if request.param == "fake":
        prefix = str(request.getfixturevalue("fake_solo5").prefix)
    else:
        found = _real_prefix(MirageBackend(), "Fake mirage", "mirage")
        if found is None:
            pytest.skip("no real MirageOS/Solo5 toolchain (mirage, opam, dune, ocamlfind, solo5-elftool, "
                        "x86_64-solo5-none-static-cc) on PATH or $UKBUILD_MIRAGE_PREFIX")
        prefix = found
    monkeypatch.setenv("UKBUILD_MIRAGE_PREFIX", prefix)
    monkeypatch.delenv("UKBUILD_SOLO5_PREFIX", raising=False)
    return Path(prefix) / "bin"


@pytest.mark.realtool("gcc", "ld")
def test_solo5_hvt_and_spt(solo5: Path, tmp_path: Path) -> None:
    """Compiled once, linked per ABI; hvt through `ukbuild run` (solo5-hvt), spt with solo5-spt."""
    recipe = Recipe("solo5", tmp_path)
    result = recipe.built_twice()
    assert set(result.outcomes) == {"hello.manifest", "hello.compile[0-hello]", "hello.compile[manifest]",
                                    "hello", "hello.link[spt]", "hello.link[virtio]"}
    ran = recipe.run("hello")
    assert ran.status == 0
    assert text(ran.console).endswith(
        "Hello, world! (Solo5 C recipe)\ncommand line: from the Solo5 recipe\nSolo5: solo5_exit(0) called\n")
    spt = subprocess.run([str(solo5 / "solo5-spt"), str(result.out_dir / "solo5/hello.spt"), "via", "spt"],
                         capture_output=True, text=True, timeout=60, check=False)
    assert spt.returncode == 0, spt.stderr
    assert "command line: via spt\nSolo5: solo5_exit(0) called\n" in spt.stdout


@pytest.mark.realtool("gcc", "ld", QEMU)
def test_solo5_virtio(solo5: Path, tmp_path: Path) -> None:
    """The virtio link of the same objects boots under QEMU -kernel (TCG)."""
    recipe = Recipe("solo5", tmp_path)
    result = recipe.build()
    assert result.ok, result.errors
    launch = QemuLaunch(kernel=result.out_dir / "solo5/hello.virtio", append="from QEMU",
                        extra_args=["-cpu", "Westmere"], exit_line=r"^Solo5: solo5_exit\((\d+)\) called")
    ran = boot(launch)
    assert ran.status == 0
    assert "Hello, world! (Solo5 C recipe)\ncommand line: from QEMU\n" in text(ran.console)
