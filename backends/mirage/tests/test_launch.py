"""Detection as `ukbuild backends` shows it, bare Solo5 C, launch descriptions, ProcessLaunch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from backends.mirage.tests.helpers import BACKENDS, TESTDATA, Project, statuses
from tests.fakes.mirage import FakeMirage, install_fake_mirage
from ukbuild import api
from ukbuild.errors import RunError
from ukbuild.runner import ProcessLaunch, QemuLaunch, run_process


def backends_text(env: dict[str, str]) -> str:
    return subprocess.run([sys.executable, "-m", "ukbuild", "backends"], env=env, capture_output=True,
                          text=True, check=True).stdout


class TestDetection:
    def test_backends_lists_per_target_status(self, fake: FakeMirage) -> None:
        out = backends_text({**os.environ, "UKBUILD_MIRAGE_PREFIX": str(fake.prefix)})
        assert f"mirage: found at {fake.prefix}: mirage 4.11.1, OCaml 5.4.1, Solo5 v0.12.1-7-g469c1a8" in out
        assert "hvt (yes)" in out and "virtio (yes)" in out and "unix (yes)" in out
        assert "unikraft-qemu (no)" in out

    def test_without_solo5_only_unix(self, tmp_path: Path) -> None:
        bare = install_fake_mirage(tmp_path / "bare", solo5=False)
        out = backends_text({**os.environ, "UKBUILD_MIRAGE_PREFIX": str(bare.prefix)})
        assert "mirage: found" in out and "Solo5" not in out.split("\n")[0]
        assert "hvt (no)" in out and "unix (yes)" in out

    def test_not_found_names_the_env_var(self, tmp_path: Path) -> None:
        out = backends_text({**os.environ, "UKBUILD_MIRAGE_PREFIX": str(tmp_path)})
        assert "mirage: not found: mirage, opam, dune, ocamlfind not found in" in out
        assert "set UKBUILD_MIRAGE_PREFIX" in out


SOLO5_C = """[unikernel.test_hello]
toolchain = "mirage"
kind = "solo5"
sources = ["test_hello/test_hello.c"]
manifest = "test_hello/manifest.json"
targets = ["hvt", "spt", "virtio"]
cmdline = "Hello_Solo5"
"""


class TestBareSolo5:
    def test_compile_once_link_per_abi_and_run(self, project: Project) -> None:
        project.copy("test_hello")
        project.write(SOLO5_C)
        result = project.build()
        assert result.ok, result.errors
        assert statuses(result) == dict.fromkeys(
            ["test_hello.manifest", "test_hello.compile[0-test_hello]", "test_hello.compile[manifest]",
             "test_hello.link[spt]", "test_hello.link[virtio]", "test_hello"], "executed")
        options = api.BuildOptions(cache_dir=project.cache, out_dir=project.root / "out")
        ran = api.run(project.load(), "test_hello", (), options, backends=BACKENDS)
        assert ran.status == 0
        assert ran.console.decode().endswith("Command line is: 'Hello_Solo5'\nSUCCESS\nSolo5: solo5_exit(0) called\n")
        failing = api.run(project.load(), "test_hello", ("again",), options, backends=BACKENDS)
        assert failing.status == 3


    def test_solo5_alone_builds_and_runs_bare_c(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """A Solo5 installation without MirageOS (no opam switch) is enough for a bare C unikernel;
        `ukbuild backends` says what it can build, and a MirageOS unikernel gets a clear error."""
        solo5 = install_fake_mirage(tmp_path / "solo5-only")
        for tool in ("mirage", "opam", "dune", "ocamlfind"):
            (solo5.bin_dir / tool).unlink()
        monkeypatch.delenv("UKBUILD_MIRAGE_PREFIX", raising=False)
        monkeypatch.setenv("UKBUILD_SOLO5_PREFIX", str(solo5.prefix))
        monkeypatch.setenv("PATH", "/usr/bin:/bin")
        out = backends_text(dict(os.environ))
        assert "mirage: found at " in out and "Solo5 v0.12.1-7-g469c1a8 only (no MirageOS" in out, out
        project = Project(tmp_path / "proj")
        project.copy("test_hello")
        project.write(SOLO5_C)
        result = project.build()
        assert result.ok, result.errors
        options = api.BuildOptions(cache_dir=project.cache, out_dir=project.root / "out")
        ran = api.run(project.load(), "test_hello", (), options, backends=BACKENDS)
        assert ran.console.decode().endswith("SUCCESS\nSolo5: solo5_exit(0) called\n") and ran.status == 0
        project.copy("hello")
        project.write('[unikernel.hello]\ntoolchain = "mirage"\ndir = "hello"\ntarget = "hvt"\n')
        failed = project.build()
        assert not failed.ok
        assert "program 'mirage' not found" in failed.errors[0].message
        assert "the mirage toolchain found has no 'mirage': `ukbuild backends`" in str(failed.errors[0].hint)


def spec_of(project: Project, name: str) -> object:
    return project.load().unikernels[name]


class TestLaunchDescriptions:
    def test_hvt_attaches_the_manifest_devices(self, project: Project, fake: FakeMirage) -> None:
        project.copy("static_website", "www")
        project.write('[unikernel.www]\ntoolchain = "mirage"\ndir = "www"\ntarget = "hvt"\n'
                      'devices = { service = "net" }\nattach = { service = "tap100" }\nmemory = 64\n'
                      'cmdline = "--ipv4=10.0.0.2/24"\n')
        spec = spec_of(project, "www")
        launch = BACKENDS["mirage"].launch(spec, Path("out/www/dist/www.hvt"), ["--http=8080"])  # type: ignore[arg-type]
        assert isinstance(launch, ProcessLaunch)
        assert launch.argv == (str(fake.bin_dir / "solo5-hvt"), "--mem=64", "--net:service=tap100", "--",
                               "out/www/dist/www.hvt", "--ipv4=10.0.0.2/24", "--http=8080")
        meta = BACKENDS["mirage"].image_metadata(spec)  # type: ignore[arg-type]
        assert (meta.kernel, meta.kernel_format, meta.guest, meta.monitor) == (
            "www/dist/www.hvt", "solo5-hvt", "mirage", "hvt")
        assert dict(meta.devices) == {"service": "NET_BASIC"}
        assert meta.cmdline == "--ipv4=10.0.0.2/24"

    def test_virtio_boots_under_qemu(self, project: Project) -> None:
        project.copy("static_website", "www")
        project.write('[unikernel.www]\ntoolchain = "mirage"\ndir = "www"\ntarget = "virtio"\n'
                      'devices = { service = "net" }\nattach = { service = "tap0" }\n')
        launch = BACKENDS["mirage"].launch(spec_of(project, "www"), Path("k.virtio"), ["a,b"])  # type: ignore[arg-type]
        assert isinstance(launch, QemuLaunch)
        argv = launch.argv()
        assert argv[argv.index("-kernel") + 1 :][:3] == ("k.virtio", "-append", "a,b")
        assert "tap,id=n0,ifname=tap0,script=no,downscript=no" in argv
        assert launch.exit_line and launch.debug_exit

    def test_xen_is_not_runnable(self, project: Project) -> None:
        project.copy("hello")
        project.write('[unikernel.hello]\ntoolchain = "mirage"\ndir = "hello"\ntarget = "xen"\n')
        with pytest.raises(RunError, match="cannot run xen unikernels"):
            BACKENDS["mirage"].launch(spec_of(project, "hello"), Path("k.xen"), [])  # type: ignore[arg-type]


class TestProcessLaunch:
    def test_status_and_output(self) -> None:
        result = run_process(ProcessLaunch(["sh", "-c", "echo hi; exit 3"]))
        assert (result.status, result.console, result.timed_out) == (3, b"hi\n", False)

    def test_refusal_before_the_guest_started(self) -> None:
        launch = ProcessLaunch(["sh", "-c", "echo 'tender: Device x not attached.' >&2; exit 1"], guest_line="^BOOT")
        with pytest.raises(RunError, match="sh failed: tender: Device x not attached.") as excinfo:
            run_process(launch)
        assert excinfo.value.reason == "launch-failed"

    def test_guest_status_after_start(self) -> None:
        result = run_process(ProcessLaunch(["sh", "-c", "echo BOOT; exit 1"], guest_line="^BOOT"))
        assert result.status == 1

    def test_missing_program_and_timeout(self, tmp_path: Path) -> None:
        with pytest.raises(RunError) as missing:
            run_process(ProcessLaunch([str(tmp_path / "nosuch")]))
        assert missing.value.reason == "launcher-not-found"
        with pytest.raises(RunError) as slow:
            run_process(ProcessLaunch(["sleep", "5"], timeout=0.3))
        assert slow.value.reason == "timeout"

    def test_bad_description(self) -> None:
        with pytest.raises(RunError, match="guest_line"):
            ProcessLaunch(["x"], guest_line="(")


