"""The unikernel table: validation with file:line, the plan, the JSON config, launch and image metadata."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from ukbuild_rumprun.plugin import RumprunBackend

from tests.core.helpers import ukbuild
from ukbuild.errors import ConfigError, RunError
from ukbuild.model import Origin, OutputInput, PathInput
from ukbuild.multiboot import check_multiboot
from ukbuild.plugins import UnikernelSpec

HELLO = {"package": "hello-prog", "path": "usr/bin/hello"}


def spec(**options: object) -> UnikernelSpec:
    return UnikernelSpec("hello", "rumprun", "rr", {"programs": [HELLO], **options}, Origin("ukbuild.toml", 7), "/p")


@pytest.mark.parametrize(("options", "field", "text"), [
    ({"programs": []}, "programs", "expected a list of 1 to 8 programs"),
    ({"programs": [HELLO] * 9}, "programs", "expected a list of 1 to 8 programs"),
    ({"programs": [{"path": "x"}]}, "programs[0]", "give exactly one of package or action"),
    ({"programs": [{"package": "p", "path": "../x"}]}, "programs[0].path", "without '..'"),
    ({"programs": [HELLO, HELLO]}, "programs", "program names must differ"),
    ({"programs": [{**HELLO, "args": ["a b"]}]}, "programs[0].args", "white space"),
    ({"programs": [{**HELLO, "args": ['a"b']}]}, "programs[0].args", "would not unescape"),
    ({"config": "hw_bogus"}, "config", "unknown bake configuration 'hw_bogus'"),
    ({"config": "vmware"}, "config", "is not a bake configuration name"),
    ({"arch": "arm"}, "arch", "expected one of x86_64, i486"),
    ({"strip": "yes"}, "strip", "expected true or false"),
    ({"env": {"A": 1}}, "env.A", "expected NAME"),
    ({"env": {"A": "x\ny"}}, "env.A", "control character"),
    ({"net": [{"method": "static", "addr": "10.0.2.300", "mask": "24"}]}, "net[0]", "10.0.2.300"),
    ({"net": [{"type": "inet6", "method": "dhcp"}]}, "net[0]", "not supported"),
    ({"blk": [{"image": "/abs.img"}]}, "blk[0].image", "disk image path in the project"),
    ({"memory": 8}, "memory", "from 16 to 65536"),
])
def test_bad_options_name_the_field_and_line(options: dict, field: str, text: str) -> None:
    with pytest.raises(ConfigError) as info:
        RumprunBackend().check_options(spec(**options))
    assert info.value.message.startswith(f"ukbuild.toml:7: unikernel.hello.{field}: ")
    assert text in info.value.message


def test_unknown_fields_and_cli_errors_show_the_line(project: object) -> None:
    toml = project.root / "ukbuild.toml"  # type: ignore[attr-defined]
    toml.write_text(toml.read_text().replace('config = "hw_virtio"', 'config = "hw_virtio"\nbake = 1'))
    result = ukbuild("build", "-C", project.root)  # type: ignore[attr-defined]
    assert result.code == 2
    assert "ukbuild.toml:28: unikernel.hello.bake: unknown field for backend rumprun" in result.err


def test_plan_bakes_then_strips() -> None:
    actions = RumprunBackend().plan(spec(
        programs=[HELLO, {"action": "tool", "path": "bin/tool"}], config="hw_generic", strip=True,
        bake_conf="my.conf", bake_commands=["add -lrumpdev_audio"],
    ))
    bake, strip = actions
    assert bake.name == "hello.bake" and bake.step == "rumprun/bake"
    assert bake.argv == ("rumprun-bake", "-c", "my.conf", "-m", "add -lrumpdev_audio", "hw_generic",
                         "kernel/hello.unstripped.bin", "pkg/hello-prog/usr/bin/hello", "bin/tool")
    assert set(bake.inputs) == {PathInput("my.conf", "my.conf"), OutputInput("hello-prog"), OutputInput("tool")}
    assert dict(bake.env) == {"RUMPRUN_WARNING_STFU": "please"}
    assert bake.checks == (("kernel/hello.unstripped.bin", "rumprun/hw-kernel"),)
    assert strip.name == "hello"
    assert strip.argv == ("x86_64-rumprun-netbsd-strip", "-o", "kernel/hello.bin", "kernel/hello.unstripped.bin")
    assert strip.checks == (("kernel/hello.bin", "rumprun/hw-kernel"),)


def test_runtime_config_json() -> None:
    options = spec(
        programs=[{**HELLO, "args": ["-v", "a,b"]}], env={"A": "1,2", "B": "x"}, hostname="box",
        net=[{"method": "static", "addr": "10.0.2.15", "mask": "24", "gw": "10.0.2.2"}],
        blk=[{"image": "data.iso", "mountpoint": "/data", "readonly": True}, {"image": "scratch.img"}],
    )
    meta = RumprunBackend().image_metadata(options)
    assert meta.cmdline == (
        '{"blk": {"source": "dev", "path": "/dev/ld0a", "fstype": "blk", "mountpoint": "/data"}, '
        '"env": "A=1,2", "env": "B=x", '
        '"net": {"if": "vioif0", "type": "inet", "method": "static", "addr": "10.0.2.15", "mask": "24", '
        '"gw": "10.0.2.2"}, "cmdline": "hello -v a,b", "hostname": "box"}'
    )
    assert (meta.kernel, meta.kernel_format, meta.guest, meta.monitor) == (
        "kernel/hello.bin", "multiboot-elf64-aout", "rumprun", "qemu")
    assert meta.devices == {"bake": "hw_virtio"}
    two = RumprunBackend().image_metadata(spec(programs=[{**HELLO, "args": ["x y"]}, {**HELLO, "name": "second"}]))
    assert two.cmdline == '{"rc": [{"bin": "hello", "argv": ["x y"]}, {"bin": "second", "argv": []}]}'
    solo5 = RumprunBackend().image_metadata(spec(config="solo5_hvt"))
    assert (solo5.kernel_format, solo5.monitor) == ("solo5-hvt", "hvt")


def test_launch() -> None:
    backend = RumprunBackend()
    launch = backend.launch(spec(blk=[{"image": "d.img", "mountpoint": "/d"}], memory=64), Path("/k.bin"), ["9"])
    assert launch.append == ('{"blk": {"source": "dev", "path": "/dev/ld0a", "fstype": "blk", "mountpoint": "/d"}, '
                             '"cmdline": "hello 9"}')
    assert (launch.kernel, launch.debug_exit, launch.memory_mib) == (Path("/k.bin"), False, 64)
    assert launch.extra_args == ("-vga", "none")
    assert [(d.path, d.interface) for d in launch.drives] == [(Path("/p/d.img"), "virtio")]
    pattern = re.compile(launch.exit_line or "")
    assert pattern.search('=== main() of "hello" returned 7 ===').group(1) == "7"  # type: ignore[union-attr]
    assert pattern.search("=== ERROR: _exit(3) called ===").group(1) == "3"  # type: ignore[union-attr]
    assert pattern.search('=== main() of "other" returned 7 ===') is None
    multi = backend.launch(spec(programs=[HELLO, {**HELLO, "name": "last"}]), Path("/k.bin"), [])
    assert re.search(multi.exit_line or "", "=== _exit(0) called ===") is None
    with pytest.raises(RunError, match="white space"):
        backend.launch(spec(), Path("/k.bin"), ["two words"])
    with pytest.raises(RunError, match="boots under Xen"):
        backend.launch(spec(config="xen_pv"), Path("/k.bin"), [])


def test_strip_builds_a_smaller_checked_kernel(use_fake: object, project: object, tmp_path: Path) -> None:
    toml = project.root / "ukbuild.toml"  # type: ignore[attr-defined]
    toml.write_text(toml.read_text().replace('config = "hw_virtio"', 'config = "hw_virtio"\nstrip = true'))
    result = ukbuild("build", "-C", project.root, "--cache-dir", tmp_path / "c", "--json", "hello")  # type: ignore[attr-defined]
    assert result.code == 0, result.out + result.err
    assert result.executed() == ["hello", "hello-prog", "hello.bake", "libnonce"]
    kernel = (project.root / "out" / "kernel" / "hello.bin").read_bytes()  # type: ignore[attr-defined]
    assert len(kernel) < 4_000_000
    assert check_multiboot(kernel).loads_by_aout

