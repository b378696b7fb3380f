"""urunc keys, the guest/monitor table and /urunc.json."""

from __future__ import annotations

import base64
import io
import json
import tarfile

import pytest

from ukbuild.errors import EmitError
from ukbuild.oci.tar import decompress_layer
from ukbuild.oci.urunc import GUEST_MONITORS, PREFIX, UruncSpec, urunc_image, urunc_json


def test_keys_for_unikraft_with_initrd() -> None:
    spec = UruncSpec("unikraft", "qemu", initrd="/.boot/rootfs", unikernel_version="0.17.0")
    assert spec.keys(["app"]) == {
        PREFIX + "unikernelType": "unikraft",
        PREFIX + "hypervisor": "qemu",
        PREFIX + "binary": "/.boot/kernel",
        PREFIX + "initrd": "/.boot/rootfs",
        PREFIX + "unikernelVersion": "0.17.0",
    }


def test_rumprun_block_defaults_to_data_and_legacy_cmdline() -> None:
    spec = UruncSpec(
        "rumprun", "hvt", block="/.boot/data.ext2", bake="solo5_hvt", legacy_cmdline=True
    )
    keys = spec.keys(["nginx", "-c", "/data/nginx.conf"])
    assert keys[PREFIX + "blkMntPoint"] == "/data"
    assert keys[PREFIX + "cmdline"] == "nginx -c /data/nginx.conf"
    assert PREFIX + "cmdline" not in UruncSpec("unikraft", "qemu").keys(["x"])


def test_every_table_pair_is_accepted() -> None:
    for guest, monitors in GUEST_MONITORS.items():
        for monitor in monitors:
            UruncSpec(guest, monitor).validate()


def test_rumprun_on_qemu_names_the_fix() -> None:
    with pytest.raises(EmitError) as err:
        UruncSpec("rumprun", "qemu").validate()
    assert err.value.reason == "urunc-unsupported"
    assert "solo5_hvt" in (err.value.hint or "") and "hvt" in (err.value.hint or "")


def test_rumprun_hw_bake_needs_a_solo5_bake() -> None:
    with pytest.raises(EmitError) as err:
        UruncSpec("rumprun", "spt", bake="hw_virtio").validate()
    assert "hw_virtio" in err.value.message and "solo5_spt" in (err.value.hint or "")


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        (UruncSpec("nanos", "qemu"), "does not know the unikernel type"),
        (UruncSpec("mewz", "firecracker"), "cannot run a mewz guest"),
        (UruncSpec("unikraft", "qemu", binary="kernel"), "not a clean absolute path"),
        (UruncSpec("unikraft", "qemu", binary="/a/../kernel"), "not a clean absolute path"),
        (UruncSpec("unikraft", "qemu", binary="/a b"), "not a clean absolute path"),
        (UruncSpec("unikraft", "qemu", binary="//kernel"), "not a clean absolute path"),
        (UruncSpec("mirage", "qemu", solo5_net_dev="service"), "applies to Solo5 monitors"),
        (UruncSpec("mirage", "hvt", solo5_net_dev="net-0"), "1-67 letters or digits"),
        (UruncSpec("mirage", "hvt", solo5_blk_dev="a" * 68), "1-67 letters or digits"),
        (UruncSpec("unikraft", "qemu", blk_mnt_point="/data"), "no block image"),
    ],
)
def test_invalid_specs(spec: UruncSpec, match: str) -> None:
    with pytest.raises(EmitError, match=match):
        spec.validate()


def test_urunc_json_values_are_padded_base64() -> None:
    keys = UruncSpec("mirage", "spt", solo5_net_dev="service", solo5_blk_dev="storage").keys()
    decoded = json.loads(urunc_json(keys))
    assert set(decoded) == set(keys)
    for key, value in decoded.items():
        assert base64.b64decode(value, validate=True).decode() == keys[key]
        assert len(value) % 4 == 0


def test_keys_land_in_labels_annotations_and_layer() -> None:
    spec = UruncSpec("unikraft", "qemu", block="/.boot/disk.img")
    image = urunc_image(
        spec,
        b"\x7fELF kernel",
        cmd=["hello", "world"],
        block=b"disk",
        labels={PREFIX + "hypervisor": "ignored", "dev.ukbuild.x": "1"},
    )
    keys = spec.keys()
    manifest = json.loads(image.blob.data)
    config = json.loads(image.config.data)
    assert manifest["annotations"] == keys
    assert config["config"]["Labels"] == {**keys, "dev.ukbuild.x": "1"}
    assert config["config"]["Cmd"] == ["hello", "world"] and "Entrypoint" not in config["config"]
    assert (config["os"], config["architecture"]) == ("linux", "amd64")
    with tarfile.open(fileobj=io.BytesIO(decompress_layer(image.layers[0]))) as tar:
        assert tar.getnames() == [".boot", ".boot/disk.img", ".boot/kernel", "urunc.json"]
        assert tar.getmember(".boot/kernel").mode == 0o755
        layer_keys = json.loads(tar.extractfile("urunc.json").read())  # type: ignore[union-attr]
    assert {k: base64.b64decode(v).decode() for k, v in layer_keys.items()} == keys


def test_content_and_path_must_come_together() -> None:
    with pytest.raises(EmitError, match="initrd needs both"):
        urunc_image(UruncSpec("unikraft", "qemu"), b"k", initrd=b"i")
    with pytest.raises(EmitError, match="block image needs both"):
        urunc_image(UruncSpec("unikraft", "qemu", block="/.boot/b"), b"k")
