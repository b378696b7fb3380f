"""Layouts and archives, checked in Python and with skopeo and umoci."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ukbuild.errors import EmitError
from ukbuild.oci.kraftkit import KERNEL_ANNOTATION, kraftkit_manifest
from ukbuild.oci.layout import write_docker_archive, write_oci_archive, write_oci_layout
from ukbuild.oci.model import (
    BUILD_RECORD_TYPE,
    SBOM_SPDX_TYPE,
    Blob,
    Index,
    Manifest,
    artifact_manifest,
    canonical_json,
    image_index,
    standard_annotations,
)
from ukbuild.oci.urunc import PREFIX, UruncSpec, urunc_image

KERNEL = b"\x7fELF" + bytes(range(256)) * 64
SPEC = UruncSpec("unikraft", "qemu", unikernel_version="0.17.0")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, check=False, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{' '.join(args)}\n{result.stdout}\n{result.stderr}"
    return result


def _images() -> tuple[dict[str, Manifest | Index], list[Manifest], Manifest]:
    common: dict[str, Any] = {
        "cmd": ["hello", "world"],
        "created": 0,
        "annotations": standard_annotations(created=0),
    }
    amd64 = urunc_image(SPEC, KERNEL, **common)
    arm64 = urunc_image(SPEC, KERNEL + b"arm", platform="linux/arm64", **common)
    kraft = kraftkit_manifest(
        KERNEL, kconfig=["CONFIG_LIBVFSCORE=y"], unikraft_version="0.17.0", cmd=["hello"]
    )
    tags: dict[str, Manifest | Index] = {
        "latest": image_index([amd64, arm64, kraft]),
        "amd64": amd64,
        "plain": urunc_image(SPEC, KERNEL, compression="none", **common),
        "zstd": urunc_image(SPEC, KERNEL, compression="zstd", **common),
        "kraft": kraft,
    }
    referrers = [
        artifact_manifest(
            amd64, BUILD_RECORD_TYPE, [Blob(BUILD_RECORD_TYPE, canonical_json({"recipe": "hello"}))]
        ),
        artifact_manifest(
            amd64,
            SBOM_SPDX_TYPE,
            [Blob(SBOM_SPDX_TYPE, canonical_json({"spdxVersion": "SPDX-2.3"}))],
        ),
    ]
    return tags, referrers, amd64


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Manifest]:
    tags, referrers, amd64 = _images()
    return write_oci_layout(tmp_path / "layout", tags, referrers=referrers), amd64


def test_layout_passes_the_python_checks(
    layout: tuple[Path, Manifest], check_layout: Callable[[Path], Any]
) -> None:
    root, amd64 = layout
    report = check_layout(root)
    entries = report.index["manifests"]
    assert [e.get("annotations", {}).get("org.opencontainers.image.ref.name") for e in entries] == [
        "amd64", "kraft", "latest", "plain", "zstd", None, None,
    ]  # fmt: skip
    assert {e.get("artifactType") for e in entries[5:]} == {BUILD_RECORD_TYPE, SBOM_SPDX_TYPE}
    # the referrers do not change the image: the tag still points at the same digest
    assert report.tagged("amd64")["digest"] == amd64.digest
    kraft = report.manifests[report.tagged("kraft")["digest"]]
    assert kraft["layers"][0]["mediaType"] == "application/vnd.oci.image.layer.v1.tar"
    assert kraft["layers"][0]["annotations"] == {KERNEL_ANNOTATION: "/unikraft/bin/kernel"}
    assert kraft["config"]["platform"] == {
        "os": "qemu", "architecture": "x86_64", "os.version": "0.17.0", "os.features": ["CONFIG_LIBVFSCORE=y"],
    }  # fmt: skip
    assert kraft["annotations"]["org.unikraft.kernel.version"] == "0.17.0"
    with tarfile.open(fileobj=io.BytesIO(report.layers[kraft["layers"][0]["digest"]])) as tar:
        (member,) = tar.getmembers()  # no parent directories, as kraft pkg writes it
        assert (member.name, member.mtime) == ("unikraft/bin/kernel", 0)
        assert tar.extractfile(member).read() == KERNEL  # type: ignore[union-attr]
    latest = json.loads(
        (root / "blobs/sha256" / report.tagged("latest")["digest"][7:]).read_bytes()
    )
    assert [m["platform"]["os"] + "/" + m["platform"]["architecture"] for m in latest["manifests"]] == [
        "linux/amd64", "linux/arm64", "qemu/x86_64",
    ]  # fmt: skip


def test_python_checks_catch_a_corrupt_blob(
    layout: tuple[Path, Manifest], check_layout: Callable[[Path], Any]
) -> None:
    root, amd64 = layout
    path = root / "blobs/sha256" / amd64.layers[0].digest[7:]
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(AssertionError):
        check_layout(root)


@pytest.mark.realtool("skopeo")
def test_skopeo_inspects_and_copies_with_digests(
    layout: tuple[Path, Manifest], tmp_path: Path
) -> None:
    root, _ = layout
    inspected = json.loads(_run("skopeo", "inspect", f"oci:{root}:latest").stdout)
    assert (inspected["Os"], inspected["Architecture"]) == ("linux", "amd64")
    assert inspected["Labels"][PREFIX + "unikernelType"] == "unikraft"
    raw = json.loads(_run("skopeo", "inspect", "--raw", f"oci:{root}:amd64").stdout)
    assert raw["annotations"][PREFIX + "hypervisor"] == "qemu"
    kraft = json.loads(
        _run(
            "skopeo",
            "inspect",
            "--override-os",
            "qemu",
            "--override-arch",
            "x86_64",
            f"oci:{root}:latest",
        ).stdout
    )
    assert (kraft["Os"], kraft["Architecture"]) == ("qemu", "x86_64")
    for tag in ("amd64", "plain", "zstd", "kraft"):
        out = tmp_path / f"dir-{tag}"
        _run("skopeo", "copy", "--preserve-digests", f"oci:{root}:{tag}", f"dir:{out}")
        manifest = (out / "manifest.json").read_bytes()
        assert manifest == (root / "blobs/sha256" / _digest_of(root, tag)[7:]).read_bytes()


def _digest_of(root: Path, tag: str) -> str:
    index = json.loads((root / "index.json").read_bytes())
    (entry,) = [
        m
        for m in index["manifests"]
        if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag
    ]
    return str(entry["digest"])


@pytest.mark.realtool("skopeo")
def test_skopeo_catches_a_corrupt_layer(layout: tuple[Path, Manifest], tmp_path: Path) -> None:
    root, amd64 = layout
    path = root / "blobs/sha256" / amd64.layers[0].digest[7:]
    data = path.read_bytes()
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    result = subprocess.run(
        ["skopeo", "copy", "--preserve-digests", f"oci:{root}:amd64", f"dir:{tmp_path / 'out'}"],
        check=False, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode != 0 and "did not match" in result.stderr


def _umoci_unpack(image: str, bundle: Path) -> subprocess.CompletedProcess[str]:
    args = [
        "umoci",
        "unpack",
        *([] if os.geteuid() == 0 else ["--rootless"]),
        "--image",
        image,
        str(bundle),
    ]
    return subprocess.run(args, check=False, capture_output=True, text=True, timeout=120)


@pytest.mark.realtool("umoci")
@pytest.mark.parametrize("tag", ["amd64", "plain"])
def test_umoci_unpacks_gzip_and_plain_layers(
    layout: tuple[Path, Manifest], tmp_path: Path, tag: str
) -> None:
    root, _ = layout
    bundle = tmp_path / "bundle"
    result = _umoci_unpack(f"{root}:{tag}", bundle)
    assert result.returncode == 0, result.stderr
    runtime = json.loads((bundle / "config.json").read_text())
    assert (bundle / "rootfs/.boot/kernel").read_bytes() == KERNEL
    assert (bundle / "rootfs/.boot/kernel").stat().st_mode & 0o777 == 0o755
    assert runtime["process"]["args"] == ["hello", "world"]
    assert runtime["annotations"][PREFIX + "binary"] == "/.boot/kernel"
    assert runtime["annotations"]["org.opencontainers.image.created"] == "1970-01-01T00:00:00Z"
    assert (
        json.loads((bundle / "rootfs/urunc.json").read_bytes())[PREFIX + "hypervisor"] == "cWVtdQ=="
    )


@pytest.mark.realtool("umoci")
def test_umoci_still_rejects_zstd(layout: tuple[Path, Manifest], tmp_path: Path) -> None:
    """Why gzip is the default: umoci 0.4.7 cannot unpack zstd layers."""
    result = _umoci_unpack(f"{layout[0]}:zstd", tmp_path / "bundle")
    assert result.returncode != 0 and "tar+zstd" in result.stderr


@pytest.mark.realtool("skopeo")
def test_oci_archive_matches_the_layout(layout: tuple[Path, Manifest], tmp_path: Path) -> None:
    tags, referrers, amd64 = _images()
    archive = write_oci_archive(tmp_path / "image.oci.tar", tags, referrers=referrers)
    with tarfile.open(archive) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]
    root = layout[0]
    assert files == {
        p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()
    }
    inspected = json.loads(
        _run("skopeo", "inspect", "--raw", f"oci-archive:{archive}:amd64").stdout
    )
    assert canonical_json(inspected) == amd64.blob.data


@pytest.mark.realtool("skopeo")
def test_docker_archive_loads_with_skopeo(tmp_path: Path) -> None:
    tags, _, amd64 = _images()
    zstd = tags["zstd"]
    assert isinstance(zstd, Manifest)
    archive = write_docker_archive(
        tmp_path / "d.tar", {"ukbuild/hello:1.0": amd64, "ukbuild/hello:zstd": zstd}
    )
    with tarfile.open(archive) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
    assert [entry["RepoTags"] for entry in manifest] == [
        ["ukbuild/hello:1.0"],
        ["ukbuild/hello:zstd"],
    ]
    for repo_tag in ("ukbuild/hello:1.0", "ukbuild/hello:zstd"):
        inspected = json.loads(
            _run("skopeo", "inspect", f"docker-archive:{archive}:{repo_tag}").stdout
        )
        assert inspected["Labels"][PREFIX + "unikernelType"] == "unikraft"
        out = tmp_path / repo_tag.replace("/", "_").replace(":", "_")
        _run("skopeo", "copy", f"docker-archive:{archive}:{repo_tag}", f"oci:{out}:x")
        pulled = json.loads((out / "index.json").read_bytes())["manifests"][0]
        config_desc = json.loads((out / "blobs/sha256" / pulled["digest"][7:]).read_bytes())[
            "config"
        ]
        # skopeo re-serialises the config on conversion, but its content is ours
        assert json.loads(
            (out / "blobs/sha256" / config_desc["digest"][7:]).read_bytes()
        ) == json.loads(amd64.config.data)
    # the archive holds our config bytes, so `docker load` gives the image ID = our config digest
    assert manifest[0]["Config"] == amd64.config.digest[7:] + ".json"
    with tarfile.open(archive) as tar:
        assert tar.extractfile(manifest[0]["Config"]).read() == amd64.config.data  # type: ignore[union-attr]


def test_docker_archive_refuses_bad_names_and_artifacts(tmp_path: Path) -> None:
    _, referrers, amd64 = _images()
    with pytest.raises(EmitError, match="not a Docker repository:tag"):
        write_docker_archive(tmp_path / "d.tar", {"Hello:1": amd64})
    with pytest.raises(EmitError, match="not an image"):
        write_docker_archive(tmp_path / "d.tar", {"hello:1": referrers[0]})
    assert list(tmp_path.iterdir()) == []


def test_failed_write_leaves_nothing_and_keeps_the_old_layout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tags, referrers, _ = _images()
    target = tmp_path / "out"
    write_oci_layout(target, {"amd64": tags["amd64"]})
    before = {p: p.read_bytes() for p in target.rglob("*") if p.is_file()}
    calls = 0
    real = Path.write_bytes

    def fail_on_the_fourth_file(self: Path, data: bytes) -> int:
        nonlocal calls
        calls += 1
        if calls >= 4:
            raise OSError(28, "No space left on device")
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", fail_on_the_fourth_file)
    with pytest.raises(EmitError) as err:
        write_oci_layout(target, tags, referrers=referrers)
    assert "No space left" in err.value.message and err.value.reason == "output-failed"
    with pytest.raises(EmitError, match="No space left"):
        write_oci_archive(tmp_path / "a.tar", tags)
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no temporary siblings, no archive
    assert {p: p.read_bytes() for p in target.rglob("*") if p.is_file()} == before


def test_refuses_to_replace_a_foreign_directory(tmp_path: Path) -> None:
    tags, _, _ = _images()
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "main.c").write_text("int main;")
    with pytest.raises(EmitError) as err:
        write_oci_layout(tmp_path / "src", tags)
    assert err.value.reason == "output-exists"
    assert [p.name for p in (tmp_path / "src").iterdir()] == ["main.c"]
    with pytest.raises(EmitError, match="is a directory"):
        write_oci_archive(tmp_path / "src", tags)
    with pytest.raises(EmitError, match="does not refer to an image in this layout"):
        _, referrers, _ = _images()
        write_oci_layout(tmp_path / "other", {"plain": tags["plain"]}, referrers=referrers)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


_BUILD_SCRIPT = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from ukbuild.oci.layout import write_docker_archive, write_oci_archive, write_oci_layout
    from ukbuild.oci.model import image_index, standard_annotations
    from ukbuild.oci.tar import entries_from_tree, make_layer, source_date_epoch
    from ukbuild.oci.model import ImageConfig, Platform, image_manifest
    from ukbuild.oci.kraftkit import kraftkit_manifest

    os.umask(int(sys.argv[2], 8))
    out = Path(sys.argv[1])
    stage = Path("stage")  # relative: depends on the cwd the test picked
    (stage / "bin").mkdir(parents=True)
    (stage / "bin" / "kernel").write_bytes(b"KERNEL" * 1000)
    (stage / "bin" / "kernel").chmod(0o777 & ~int(sys.argv[2], 8))
    (stage / "etc").mkdir()
    (stage / "etc" / "conf").write_text("x=1")
    epoch = source_date_epoch()
    images = {}
    for compression in ("gzip", "zstd", "none"):
        layer = make_layer(entries_from_tree(stage, prefix=".boot"), compression=compression, mtime=epoch or 0)
        images[compression] = image_manifest(
            [layer], platform=Platform.parse("linux/amd64"), config=ImageConfig(cmd=["k"]),
            created=epoch, annotations=standard_annotations(created=epoch),
        )
    kraft = kraftkit_manifest(b"KERNEL" * 1000, mtime=epoch or 0, created=epoch)
    tags = {"gzip": image_index([images["gzip"], kraft]), "zstd": images["zstd"], "none": images["none"]}
    write_oci_layout(out / "layout", tags)
    write_oci_archive(out / "oci.tar", tags, mtime=epoch or 0)
    write_docker_archive(out / "docker.tar", {"u/h:1": images["gzip"]}, mtime=epoch or 0)
    """
)


def test_two_builds_are_bit_identical(tmp_path: Path) -> None:
    def build(name: str, tz: str, umask: str) -> dict[str, bytes]:
        cwd = tmp_path / f"cwd-{name}"
        cwd.mkdir()
        out = tmp_path / f"out-{name}"
        env = {**os.environ, "TZ": tz, "SOURCE_DATE_EPOCH": "1700000000", "LC_ALL": "C"}
        subprocess.run(
            [sys.executable, "-c", _BUILD_SCRIPT, str(out), umask], cwd=cwd, env=env, check=True
        )
        return {
            p.relative_to(out).as_posix(): p.read_bytes()
            for p in sorted(out.rglob("*"))
            if p.is_file()
        }

    first = build("a", "UTC", "022")
    second = build("b", "Asia/Kathmandu", "077")
    assert first.keys() == second.keys() and len(first) > 10
    assert first == second


@pytest.mark.realtool("podman")
def test_podman_loads_the_docker_archive_and_pulls_the_layout(
    layout: tuple[Path, Manifest], tmp_path: Path
) -> None:
    root, amd64 = layout
    archive = write_docker_archive(tmp_path / "d.tar", {"ukbuild/hello:1": amd64})
    # private storage with the vfs driver: nothing is mounted; podman wants a runroot under 50 characters
    with tempfile.TemporaryDirectory(prefix="ukpm-") as runroot:
        podman = ["podman", "--root", str(tmp_path / "storage"), "--runroot", runroot,
                  "--storage-driver", "vfs", "--events-backend", "file", "--cgroup-manager", "cgroupfs"]  # fmt: skip
        _run(*podman, "load", "-i", str(archive))
        _run(*podman, "pull", f"oci:{root}:amd64")
        for name in ("localhost/ukbuild/hello:1", amd64.config.digest[7:]):
            inspected = json.loads(_run(*podman, "image", "inspect", name).stdout)[0]
            assert inspected["Id"] == amd64.config.digest[7:]
            assert inspected["Labels"][PREFIX + "unikernelType"] == "unikraft"
            assert inspected["Config"]["Cmd"] == ["hello", "world"]
