"""The MirageOS recipes (recipes/mirage/hello, recipes/mirage/static-website) built as users
build them: with the fake toolchain (its opam repository holds the packages they lock), and
unchanged with a real MirageOS toolchain when one is found (skipped with the reason otherwise).

Each builds, a second build is all cache hits, and each runs where this machine can: hvt
under the (fake) tender, virtio from its raw disk under QEMU (TCG)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from backends.mirage.tests.helpers import BACKENDS, REPO, read_image, solo5_lines, statuses
from tests.fakes.mirage import FakeMirage
from ukbuild import api
from ukbuild.errors import RunError
from ukbuild_mirage.plugin import MirageBackend

RECIPES = REPO / "recipes" / "mirage"
URUNC = "com.urunc.unikernel."
#: The environment the session started with, before fixtures point it at the fake.
_ORIGINAL_ENV = dict(os.environ)


class Recipe:
    """A copy of one recipe directory, built and run through the API."""

    def __init__(self, name: str, tmp: Path) -> None:
        self.root = tmp / name
        shutil.copytree(RECIPES / name, self.root)
        self.cache = tmp / "cache"

    def options(self, out: str = "out") -> api.BuildOptions:
        return api.BuildOptions(cache_dir=self.cache, out_dir=self.root / out, jobs=2)

    def build(self, out: str = "out") -> api.BuildResult:
        project = api.load_project(self.root, backends=BACKENDS)
        return api.Build(project, (), self.options(out), backends=BACKENDS).run()

    def run(self, target: str, *args: str) -> api.RunResult:
        project = api.load_project(self.root, backends=BACKENDS)
        return api.run(project, target, args, self.options(), backends=BACKENDS)


def built_twice(recipe: Recipe) -> api.BuildResult:
    first = recipe.build()
    assert first.ok, first.errors
    assert set(statuses(first).values()) == {"executed"}
    again = recipe.build(out="out2")
    assert again.ok, again.errors
    assert set(statuses(again).values()) == {"cached"}
    return first


@pytest.mark.realtool("syslinux")  # the raw disk's boot loader files are inputs of the plan
class TestHello:
    def test_builds_then_all_cache_hits(self, env: FakeMirage, tmp_path: Path) -> None:
        recipe = Recipe("hello", tmp_path)
        result = built_twice(recipe)
        names = set(statuses(result))
        for uk in ("hello-hvt", "hello-virtio"):
            assert {f"{uk}.configure", f"{uk}.lock", f"{uk}.pull", f"{uk}.build", uk} <= names
        assert {"hello-disk", "hello-oci"} <= names
        assert (result.out_dir / "hello-hvt/dist/hello.hvt").is_file()
        manifest, _config, _layer = read_image(result.out_dir / "oci/hello-oci")
        assert (manifest["annotations"][URUNC + "unikernelType"], manifest["annotations"][URUNC + "hypervisor"]) == (
            "mirage", "hvt")

    def test_committing_the_generated_locks(self, env: FakeMirage, tmp_path: Path) -> None:
        """The README's workflow: build once, commit the generated lock files; then the lock step is
        gone and each duniverse directory is its own pull, keyed alike for the hvt and virtio builds
        (one cache entry each)."""
        recipe = Recipe("hello", tmp_path)
        project = api.load_project(recipe.root, backends=BACKENDS)
        first = api.Build(project, ["hello-hvt.lock", "hello-virtio.lock"], recipe.options(),
                          backends=BACKENDS).run()
        assert first.ok, first.errors
        for uk in ("hello-hvt", "hello-virtio"):
            lock = recipe.root / "hello" / "mirage" / f"{uk}.opam.locked"
            lock.parent.mkdir(exist_ok=True)
            shutil.copyfile(first.out_dir / uk / "mirage" / f"{uk}.opam.locked", lock)
        locked = recipe.build(out="out2")
        assert locked.ok, locked.errors
        names = statuses(locked)
        assert not any(n.endswith(".lock") for n in names)
        pulls = {n: s for n, s in names.items() if ".pull[" in n}
        assert {n.split(".", 1)[1] for n in pulls} == {"pull[duration]", "pull[lwt]", "pull[mirage-solo5]"}
        keys = {n: str(o.key) for n, o in locked.outcomes.items()}
        for directory in ("duration", "lwt", "mirage-solo5"):
            assert keys[f"hello-hvt.pull[{directory}]"] == keys[f"hello-virtio.pull[{directory}]"]

    def test_hvt_runs_under_the_tender(self, env: FakeMirage, tmp_path: Path) -> None:
        ran = Recipe("hello", tmp_path).run("hello-hvt")
        console = ran.console.decode()
        assert ran.status == 0
        assert "[INFO] [application] hello\nSolo5: solo5_exit(0) called\n" in console

    @pytest.mark.realtool("qemu-system-x86_64")
    def test_virtio_boots_from_its_raw_disk(self, env: FakeMirage, tmp_path: Path) -> None:
        ran = Recipe("hello", tmp_path).run("hello-disk")
        assert ran.status == 0
        assert solo5_lines(ran.console)[-2:] == ["[INFO] [application] hello", "Solo5: solo5_exit(0) called"]


class TestStaticWebsite:
    def test_builds_then_all_cache_hits(self, env: FakeMirage, tmp_path: Path) -> None:
        recipe = Recipe("static-website", tmp_path)
        result = built_twice(recipe)
        for uk, ext in (("www-hvt", "hvt"), ("www-virtio", "virtio")):
            meta = json.loads((result.out_dir / f"{uk}/dist/www.{ext}.solo5.json").read_text())
            assert meta["manifest"]["devices"] == [{"name": "service", "type": "NET_BASIC"}], meta
        manifest, config, _layer = read_image(result.out_dir / "oci/www-oci")
        assert {URUNC + "hypervisor": "hvt", URUNC + "solo5NetDev": "service"}.items() <= manifest[
            "annotations"].items()
        assert not config["config"].get("Cmd")  # urunc passes --ipv4/--ipv4-gateway itself
        disk = (result.out_dir / "image/www-disk.img").read_bytes()
        assert disk[510:512] == b"\x55\xaa"
        assert b"--ipv4=10.0.0.2/24 --ipv4-gateway=10.0.0.1" in disk  # syslinux.cfg: verbatim

    def test_hvt_needs_its_tap(self, env: FakeMirage, tmp_path: Path) -> None:
        """The tender is started with --net:service=tap100 and refuses a missing tap, as solo5-hvt does
        (a host with tap100 runs it: see the recipe's README)."""
        if Path("/sys/class/net/tap100/tun_flags").exists():
            pytest.skip("tap100 exists here: the unikernel would start serving and not exit")
        with pytest.raises(RunError, match="Could not attach interface: tap100: No such file or directory"):
            Recipe("static-website", tmp_path).run("www-hvt")


def real_mirage() -> str | None:
    """The prefix of a real (not fake) MirageOS toolchain in the session's original environment."""
    found = api.detect_backends({"mirage": MirageBackend()}, _ORIGINAL_ENV)[0]
    if found.toolchain is None:
        return None
    tools = {t.name: t.path for t in found.toolchain.tools}
    mirage = Path(str(tools.get("mirage", "")))
    if not mirage.is_file() or "Fake mirage" in mirage.read_text(errors="replace")[:400]:
        return None
    return str(found.toolchain.prefix or mirage.parent.parent)


@pytest.mark.parametrize("name", ["hello", "static-website"])
def test_with_a_real_toolchain(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same recipe, unchanged, with a real MirageOS 4.9+ switch (network needed: lock and pull)."""
    prefix = real_mirage()
    if prefix is None:
        pytest.skip("no real MirageOS toolchain (mirage >= 4.5, opam, dune, ocamlfind, Solo5) on PATH or "
                    "$UKBUILD_MIRAGE_PREFIX: the fake ran the same recipe")
    monkeypatch.setenv("UKBUILD_MIRAGE_PREFIX", prefix)
    recipe = Recipe(name, tmp_path)
    built_twice(recipe)
    if name == "hello":
        ran = recipe.run("hello-hvt")
        assert ran.status == 0
        assert "[application] hello" in ran.console.decode()
