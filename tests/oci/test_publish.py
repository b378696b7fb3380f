"""Reading layouts back (every blob verified) and ``push_image``: build an ``[image.NAME]``,
push it with its referrers to Debian's docker-registry, pull it back with skopeo."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest

from ukbuild.api import BuildOptions
from ukbuild.errors import ConfigError, EmitError
from ukbuild.oci.layout import read_oci_layout, read_referrers, write_oci_layout
from ukbuild.oci.model import (
    BUILD_RECORD_TYPE,
    SBOM_SPDX_TYPE,
    Blob,
    artifact_manifest,
    canonical_json,
)
from ukbuild.oci.registry import Credentials
from ukbuild.oci.urunc import UruncSpec, urunc_image
from ukbuild.publish import credentials_from_env, parse_reference, push_image, push_layout

REPO = Path(__file__).resolve().parents[2]
KERNEL = b"\x7fELF" + bytes(range(256)) * 64
BUILD_TOOLS = ("gcc", "ld")


def _layout(tmp_path: Path) -> tuple[Path, Any, Any]:
    image = urunc_image(UruncSpec("unikraft", "qemu"), KERNEL, cmd=["hello"], created=0)
    record = artifact_manifest(image, BUILD_RECORD_TYPE, [Blob(BUILD_RECORD_TYPE, canonical_json({"a": 1}))])
    root = write_oci_layout(tmp_path / "layout", {"v1": image}, referrers=[record])
    return root, image, record


def test_read_back_keeps_every_digest(tmp_path: Path) -> None:
    root, image, record = _layout(tmp_path)
    read = read_oci_layout(root, "v1")
    assert read == image
    assert read_referrers(root, read) == (record,)


@pytest.mark.parametrize("damage", ["flip", "truncate", "remove"])
def test_damaged_blob_is_refused(tmp_path: Path, damage: str) -> None:
    root, image, _record = _layout(tmp_path)
    blob = root / "blobs" / "sha256" / image.layers[0].digest[7:]
    data = blob.read_bytes()
    if damage == "flip":
        blob.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    elif damage == "truncate":
        blob.write_bytes(data[:-5])
    else:
        blob.unlink()
    with pytest.raises(EmitError) as err:
        read_oci_layout(root, "v1")
    assert err.value.reason == "bad-layout" and image.layers[0].digest in err.value.message
    assert "rebuild" in (err.value.hint or "")


def test_unknown_tag_and_not_a_layout(tmp_path: Path) -> None:
    root, _image, _record = _layout(tmp_path)
    with pytest.raises(EmitError, match="no image tagged 'v2'") as err:
        read_oci_layout(root, "v2")
    assert err.value.hint == "tags here: v1"
    with pytest.raises(EmitError, match="not a readable OCI image layout"):
        read_oci_layout(tmp_path, "v1")


@pytest.mark.parametrize(("text", "words"), [
    ("hello:v1", r"is not host\[:port\]/repository"),
    ("ukbuild/hello", "not a registry host"),
    ("127.0.0.1:5000/hello@sha256:abc", "digests and user@"),
    ("user:pw@example.com/hello", "digests and user@"),
])  # fmt: skip
def test_bad_references(text: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        parse_reference(text)


def test_references_and_credentials() -> None:
    ref = parse_reference("127.0.0.1:5000/team/hello:v1")
    assert (ref.host, ref.repository, ref.tag, str(ref)) == ("127.0.0.1:5000", "team/hello", "v1", str(ref))
    assert parse_reference("localhost/hello").tag is None
    assert credentials_from_env({}) is None
    creds = credentials_from_env({"UKBUILD_REGISTRY_USER": "u", "UKBUILD_REGISTRY_PASSWORD": "p"})
    assert creds == Credentials("u", "p") and "p" not in repr(creds).replace("password", "")
    with pytest.raises(ConfigError, match="UKBUILD_REGISTRY_PASSWORD is not set"):
        credentials_from_env({"UKBUILD_REGISTRY_USER": "u"})


def _example(tmp_path: Path) -> Path:
    dest = tmp_path / "multiboot"
    shutil.copytree(REPO / "examples" / "multiboot", dest, ignore=shutil.ignore_patterns("out"))
    return dest


def _skopeo(*args: str) -> str:
    result = subprocess.run(["skopeo", *args], capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.realtool(*BUILD_TOOLS, "docker-registry", "skopeo")
def test_push_image_plain_then_nothing_to_upload(registry: Any, tmp_path: Path) -> None:
    project = _example(tmp_path)
    options = BuildOptions(cache_dir=tmp_path / "cache")
    report = push_image(project, "hello-oci", f"{registry.host}/ukbuild/hello:v1", options=options, insecure=True)
    layout = project / "out" / "oci" / "hello-oci"
    target = read_oci_layout(layout, "latest")
    referrers = read_referrers(layout, target)
    assert report.digest == target.digest and report.reference == f"{registry.host}/ukbuild/hello:v1"
    assert sorted(r.artifact_type for r in referrers) == sorted([BUILD_RECORD_TYPE, SBOM_SPDX_TYPE])
    assert set(report.manifests) == {target.digest, *(m.digest for m in target.manifests),
                                     *(r.digest for r in referrers)}  # fmt: skip
    # docker-registry 2.8 has no referrers API: the sha256-<hex> tag lists both artifacts
    (fallback,) = report.referrers_fallback_tags
    url = f"docker://{registry.host}/ukbuild/hello"
    listed = json.loads(_skopeo("inspect", "--tls-verify=false", "--raw", f"{url}:{fallback}"))
    assert {m["digest"] for m in listed["manifests"]} == {r.digest for r in referrers}
    pulled = tmp_path / "pulled"
    _skopeo("copy", "--all", "--preserve-digests", "--src-tls-verify=false", f"{url}:v1", f"oci:{pulled}:v1")
    assert read_oci_layout(pulled, "v1") == target
    again = push_image(project, "hello-oci", f"{registry.host}/ukbuild/hello:v1", options=options, insecure=True)
    assert again.uploaded == () and again.digest == target.digest


@pytest.mark.realtool(*BUILD_TOOLS, "docker-registry", "skopeo", "htpasswd", "openssl")
def test_push_image_over_tls_with_basic_auth(auth_registry: Any, tmp_path: Path) -> None:
    project = _example(tmp_path)
    options = BuildOptions(cache_dir=tmp_path / "cache")
    creds = Credentials(auth_registry.username, auth_registry.password)
    reference = f"{auth_registry.host}/ukbuild/secret"
    report = push_image(project, "hello-oci", reference, options=options, credentials=creds,
                        ca_file=auth_registry.ca_file)  # fmt: skip
    assert report.reference == reference + ":latest" and report.uploaded
    pulled = tmp_path / "pulled"
    _skopeo("copy", "--preserve-digests", "--src-tls-verify=false", "--src-creds",
            f"{auth_registry.username}:{auth_registry.password}", f"docker://{reference}:latest", f"dir:{pulled}")  # fmt: skip
    target = read_oci_layout(project / "out" / "oci" / "hello-oci", "latest")
    amd64 = target.manifests[0]  # skopeo picks linux/amd64 from the index
    assert (pulled / "manifest.json").read_bytes() == amd64.blob.data
    for blob in (amd64.config, *amd64.layers):
        assert (pulled / blob.digest[7:]).read_bytes() == blob.data
    assert push_image(project, "hello-oci", reference, options=options, credentials=creds,
                      ca_file=auth_registry.ca_file).uploaded == ()  # fmt: skip


@pytest.mark.realtool("docker-registry", "htpasswd", "openssl")
def test_refusing_registries_are_clear_errors(auth_registry: Any, tmp_path: Path) -> None:
    root, _image, _record = _layout(tmp_path)
    with pytest.raises(EmitError) as err:
        push_layout(root, "v1", f"{auth_registry.host}/ukbuild/x", credentials=Credentials("builder", "wrong"),
                    ca_file=auth_registry.ca_file)  # fmt: skip
    assert err.value.reason == "registry-auth" and "refused the credentials" in err.value.message
    with pytest.raises(EmitError) as err:
        push_layout(root, "v1", f"{auth_registry.host}/ukbuild/x")
    assert err.value.reason == "registry-tls" and "ca_file" in (err.value.hint or "")
    with socket.socket() as sock:  # bound, never listening: the connection is refused
        sock.bind(("127.0.0.1", 0))
        with pytest.raises(EmitError) as err:
            push_layout(root, "v1", f"127.0.0.1:{sock.getsockname()[1]}/ukbuild/x", insecure=True)
    assert err.value.reason == "registry-unreachable" and "cannot reach registry" in err.value.message


@pytest.mark.realtool(*BUILD_TOOLS)
def test_push_image_refuses_what_it_cannot_push(tmp_path: Path) -> None:
    project = _example(tmp_path)
    with pytest.raises(ConfigError, match="no image named 'nope'") as err:
        push_image(project, "nope", "127.0.0.1:1/x", insecure=True)
    assert "hello-oci" in (err.value.hint or "")
    with pytest.raises(ConfigError, match=r"ukbuild\.toml:\d+: image\.hello-disk: format 'raw' cannot be pushed"):
        push_image(project, "hello-disk", "127.0.0.1:1/x", insecure=True)
    assert not (project / "out").exists()  # nothing was built


@pytest.mark.realtool(*BUILD_TOOLS, "docker-registry", "skopeo")
def test_push_command(registry: Any, tmp_path: Path) -> None:
    """`ukbuild push` builds and pushes; a second push uploads nothing."""
    from tests.core.helpers import ukbuild  # noqa: PLC0415

    project = _example(tmp_path)
    args = ("push", "-C", project, "--cache-dir", tmp_path / "cache", "hello-oci", f"{registry.host}/cli/hello:v2", "--insecure")
    first = ukbuild(*args)
    assert first.code == 0, first.err
    assert first.out.startswith(f"pushed {registry.host}/cli/hello:v2@sha256:")
    second = ukbuild(*args)
    assert " 0 blobs uploaded" in second.out
    refused = ukbuild("push", "-C", project, "--cache-dir", tmp_path / "cache", "hello-oci", "not a reference")
    assert refused.code == 2 and "error:" in refused.err
