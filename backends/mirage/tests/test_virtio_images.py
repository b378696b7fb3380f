"""Issue 4's image acceptance: virtio builds boot under QEMU (TCG) — from a raw disk through
SYSLINUX mboot.c32 and directly with -kernel — and OCI images carry the Solo5 manifest's device
names in their urunc annotations.  The fake Solo5 virtio bindings are freestanding Multiboot code
(tests/fakes/mirage/src/solo5/boot_virtio.S, bindings_virtio.c), so what boots is the unikernel's
own machine code."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from backends.mirage.tests.helpers import BACKENDS, Project, read_image, solo5_lines, statuses
from tests.fakes.mirage import FakeMirage
from ukbuild import api
from ukbuild.errors import ConfigError

QEMU = "qemu-system-x86_64"
URUNC = "com.urunc.unikernel."

HELLO_VIRTIO = """[unikernel.hello]
toolchain = "mirage"
dir = "hello"
target = "virtio"

[image.hello-disk]
unikernel = "hello"
format = "raw"
"""

SOLO5_VIRTIO = """[unikernel.test_hello]
toolchain = "mirage"
kind = "solo5"
sources = ["test_hello/test_hello.c"]
manifest = "test_hello/manifest.json"
targets = ["virtio", "hvt"]
cmdline = "Hello_Solo5"

[image.hello-disk]
unikernel = "test_hello"
format = "raw"

[image.args-disk]
unikernel = "test_hello"
format = "raw"
cmdline = "3 a,b --ipv4=10.0.0.2/24 x=\\"y z\\""
"""


def options(project: Project) -> api.BuildOptions:
    return api.BuildOptions(cache_dir=project.cache, out_dir=project.root / "out", jobs=2)


@pytest.mark.realtool(QEMU, "syslinux")
class TestRawDisk:
    def test_mirage_hello_boots_from_the_disk(self, project: Project) -> None:
        project.copy("hello")
        project.write(HELLO_VIRTIO)
        result = api.run(project.load(), "hello-disk", (), options(project), backends=BACKENDS)
        lines = solo5_lines(result.console)
        assert result.status == 0
        assert lines[0] == "Solo5: Bindings version v0.12.1-7-g469c1a8"
        assert lines[1].startswith("Solo5: Memory map: ") and lines[1].endswith(" MB addressable:")
        assert lines[-2:] == ["[INFO] [application] hello", "Solo5: solo5_exit(0) called"]
        assert result.seconds < 20

    def test_solo5_c_gets_the_command_line_verbatim(self, project: Project) -> None:
        project.copy("test_hello")
        project.write(SOLO5_VIRTIO)
        first = api.run(project.load(), "hello-disk", (), options(project), backends=BACKENDS)
        assert first.status == 0
        assert solo5_lines(first.console)[-4:] == [
            "Hello, World", "Command line is: 'Hello_Solo5'", "SUCCESS", "Solo5: solo5_exit(0) called"]
        args = api.run(project.load(), "args-disk", (), options(project), backends=BACKENDS)
        assert args.status == 3
        assert "Command line is: '3 a,b --ipv4=10.0.0.2/24 x=\"y z\"'" in solo5_lines(args.console)
        disk = (project.root / "out/image/args-disk.img").read_bytes()
        assert b'3 a,b --ipv4=10.0.0.2/24 x="y z"' in disk  # in syslinux.cfg, commas not doubled


@pytest.mark.realtool(QEMU)
class TestKernel:
    def test_run_the_virtio_unikernel(self, project: Project) -> None:
        """api.run: QEMU -kernel, the status from `Solo5: solo5_exit(N) called`."""
        project.copy("test_hello")
        project.write(SOLO5_VIRTIO)
        ok = api.run(project.load(), "test_hello", (), options(project), backends=BACKENDS)
        assert ok.status == 0
        assert solo5_lines(ok.console)[-3:] == ["Command line is: 'Hello_Solo5'", "SUCCESS",
                                                "Solo5: solo5_exit(0) called"]
        more = api.run(project.load(), "test_hello", ("a,b", "c"), options(project), backends=BACKENDS)
        assert more.status == 3
        assert "Command line is: 'Hello_Solo5 a,b c'" in solo5_lines(more.console)

    def test_an_abort_ends_the_run_at_once(self, project: Project) -> None:
        """A virtio disk the manifest does not declare: Solo5 aborts, pokes isa-debug-exit at 0x501
        (QEMU exits 83, status 41) instead of halting until the runner's timeout."""
        project.copy("test_hello")
        project.write(SOLO5_VIRTIO)
        disk = project.root / "disk.img"
        disk.write_bytes(bytes(1 << 20))
        ran = api.run(project.load(), "test_hello", (), options(project), drives=[str(disk)], backends=BACKENDS)
        assert ran.status == 41
        assert ran.console.decode().endswith("not in manifest\nPCI enumeration failed. Aborting.\n"
                                             "Solo5: solo5_abort() called\n")
        assert ran.seconds < 20

    def test_ukbuild_run_cli(self, project: Project, fake: FakeMirage) -> None:
        """`ukbuild run hello` of a MirageOS virtio build, through the CLI."""
        project.copy("hello")
        project.write(HELLO_VIRTIO)
        env = {**os.environ, "UKBUILD_MIRAGE_PREFIX": str(fake.prefix), "OPAMROOT": str(fake.opam_root),
               "UKBUILD_CACHE_DIR": str(project.cache)}
        proc = subprocess.run([sys.executable, "-m", "ukbuild", "run", "-C", str(project.root), "hello"],
                              env=env, capture_output=True, text=True, timeout=120, check=False)
        assert proc.returncode == 0, proc.stderr
        assert "[INFO] [application] hello" in proc.stdout
        assert "Solo5: solo5_exit(0) called" in proc.stdout


def www_oci(target: str, cmdline: str = "") -> str:
    return (f'[unikernel.www]\ntoolchain = "mirage"\ndir = "www"\ntarget = "{target}"\n'
            f'devices = {{ service = "net" }}\ncmdline = "{cmdline}"\n\n'
            '[image.www-oci]\nunikernel = "www"\nformat = "oci"\nurunc = true\n')


class TestUruncAnnotations:
    @pytest.mark.parametrize("target", ["hvt", "spt"])
    def test_manifest_device_names_in_the_image(self, project: Project, fake: FakeMirage, target: str) -> None:
        project.copy("static_website", "www")
        project.write(www_oci(target, "ipv4=10.0.0.2/24"))
        result = project.build("www-oci")
        assert result.ok, result.errors
        manifest, config, layer = read_image(result.out_dir / "oci" / "www-oci")
        expected = {URUNC + "unikernelType": "mirage", URUNC + "hypervisor": target,
                    URUNC + "binary": "/.boot/kernel", URUNC + "solo5NetDev": "service"}
        assert expected.items() <= manifest["annotations"].items()
        assert expected.items() <= config["config"]["Labels"].items()
        assert config["config"]["Cmd"] == ["ipv4=10.0.0.2/24"]
        assert {k: base64.b64decode(v).decode() for k, v in json.loads(layer["urunc.json"]).items()} == {
            k: v for k, v in manifest["annotations"].items() if k.startswith(URUNC)}
        # The name urunc passes is the one in the unikernel's own manifest note.
        kernel = project.root / "kernel"
        kernel.write_bytes(layer[".boot/kernel"])
        query = subprocess.run([str(fake.bin_dir / "solo5-elftool"), "query-manifest", str(kernel)],
                               capture_output=True, text=True, check=True)
        assert [d["name"] for d in json.loads(query.stdout)["devices"]] == ["service"]
        assert set(statuses(project.build("www-oci", out="out2")).values()) == {"cached"}

    def test_virtio_images_run_under_qemu(self, project: Project) -> None:
        """urunc runs virtio builds with QEMU; its solo5NetDev/solo5BlkDev keys are for the Solo5
        tenders, so a virtio build with devices is refused at the image table, naming the rule."""
        project.copy("hello")
        project.write(HELLO_VIRTIO + '\n[image.hello-oci]\nunikernel = "hello"\nformat = "oci"\nurunc = true\n')
        result = project.build("hello-oci")
        assert result.ok, result.errors
        manifest, _config, _layer = read_image(result.out_dir / "oci" / "hello-oci")
        assert (manifest["annotations"][URUNC + "hypervisor"], manifest["annotations"][URUNC + "unikernelType"]) == (
            "qemu", "mirage")
        assert URUNC + "solo5NetDev" not in manifest["annotations"]
        project.copy("static_website", "www")
        project.write(www_oci("virtio"))
        with pytest.raises(ConfigError, match="solo5NetDev applies to Solo5 monitors"):
            project.load()

    def test_mirage_style_command_line(self, project: Project) -> None:
        project.copy("static_website", "www")
        project.write(www_oci("hvt", "--ipv4=10.0.0.2/24 --port=8080"))
        result = project.build("www-oci")
        assert result.ok, result.errors
        _manifest, config, _layer = read_image(result.out_dir / "oci" / "www-oci")
        assert config["config"]["Cmd"] == ["--ipv4=10.0.0.2/24 --port=8080"]
