"""Manifests, configs, indexes and artifacts, checked against the OCI schemas."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import jsonschema
import pytest

from ukbuild.errors import EmitError
from ukbuild.oci.model import (
    BUILD_RECORD_TYPE,
    EMPTY_BLOB,
    Blob,
    ImageConfig,
    MediaType,
    Platform,
    artifact_manifest,
    canonical_json,
    check_ref_name,
    image_index,
    image_manifest,
    rfc3339,
    standard_annotations,
)
from ukbuild.oci.tar import TarEntry, make_layer

Validate = Callable[[str, Any], None]


def _image(platform: str = "linux/amd64", **kwargs: Any) -> Any:
    layer = make_layer([TarEntry.file("k", b"kernel")])
    return image_manifest([layer], platform=Platform.parse(platform), **kwargs)


def test_canonical_json_is_sorted_compact_utf8() -> None:
    assert (
        canonical_json({"b": [1, "é"], "a": {"z": 1, "y": 2}})
        == '{"a":{"y":2,"z":1},"b":[1,"é"]}'.encode()
    )
    with pytest.raises(ValueError):
        canonical_json(float("nan"))


def test_empty_blob_is_the_well_known_one() -> None:
    assert (
        EMPTY_BLOB.digest
        == "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
    )
    assert EMPTY_BLOB.size == 2


def test_image_manifest_and_config(validate: Validate) -> None:
    image = _image(
        "linux/arm64/v8",
        config=ImageConfig(cmd=["app", "-v"], env=["A=1"], labels={"dev.ukbuild.x": "y"}),
        created=86400,
        annotations=standard_annotations(created=86400, title="hello", version="1.0"),
    )
    manifest = json.loads(image.blob.data)
    config = json.loads(image.config.data)
    validate("image-manifest-schema.json", manifest)
    validate("config-schema.json", config)
    assert image.blob.data == canonical_json(manifest)
    assert manifest["annotations"] == {
        "org.opencontainers.image.created": "1970-01-02T00:00:00Z",
        "org.opencontainers.image.title": "hello",
        "org.opencontainers.image.version": "1.0",
    }
    assert config["created"] == "1970-01-02T00:00:00Z"
    assert (config["os"], config["architecture"], config["variant"]) == ("linux", "arm64", "v8")
    assert config["config"] == {
        "Cmd": ["app", "-v"],
        "Env": ["A=1"],
        "Labels": {"dev.ukbuild.x": "y"},
    }
    assert "Entrypoint" not in config["config"]
    assert manifest["config"] == {
        "mediaType": MediaType.CONFIG,
        "digest": image.config.digest,
        "size": image.config.size,
    }


def test_no_epoch_means_no_created() -> None:
    image = _image()
    assert "created" not in json.loads(image.config.data)
    assert standard_annotations() == {}


def test_same_inputs_same_digest() -> None:
    assert _image(created=5).digest == _image(created=5).digest
    assert _image(created=5).digest != _image(created=6).digest


def test_schema_rejects_what_it_should(validate: Validate) -> None:
    manifest = json.loads(_image().blob.data)
    for broken in (
        {**manifest, "schemaVersion": 1},
        {**manifest, "config": None},
        {**manifest, "layers": []},
    ):
        with pytest.raises(jsonschema.ValidationError):
            validate("image-manifest-schema.json", broken)


def test_artifact_refers_to_subject_without_changing_it(validate: Validate) -> None:
    image = _image()
    before = image.digest
    record = Blob(BUILD_RECORD_TYPE, canonical_json({"inputs": []}))
    artifact = artifact_manifest(
        image, BUILD_RECORD_TYPE, [record], annotations=standard_annotations(created=0)
    )
    document = json.loads(artifact.blob.data)
    validate("image-manifest-schema.json", document)
    # The rc2 schema does not know subject/artifactType: check them explicitly.
    assert document["artifactType"] == BUILD_RECORD_TYPE
    assert document["subject"] == {
        "mediaType": MediaType.MANIFEST,
        "digest": image.digest,
        "size": image.blob.size,
    }
    assert document["config"] == EMPTY_BLOB.descriptor().to_json()
    assert document["layers"] == [record.descriptor().to_json()]
    assert artifact.descriptor().to_json()["artifactType"] == BUILD_RECORD_TYPE
    assert image.digest == before
    with pytest.raises(EmitError, match="not a media type"):
        artifact_manifest(image, "buildinfo", [record])


def test_index_platforms_must_be_distinguishable(validate: Validate) -> None:
    amd64 = _image()
    features = image_manifest(
        [make_layer([TarEntry.file("k", b"other")])],
        platform=Platform("linux", "amd64", os_features=("dev.ukbuild.hvt",)),
    )
    index = image_index([amd64, _image("linux/arm64"), features])
    validate("image-index-schema.json", json.loads(index.blob.data))
    platforms = [m["platform"] for m in json.loads(index.blob.data)["manifests"]]
    assert platforms[2] == {
        "os": "linux",
        "architecture": "amd64",
        "os.features": ["dev.ukbuild.hvt"],
    }
    other = image_manifest(
        [make_layer([TarEntry.file("k", b"x")])], platform=Platform.parse("linux/amd64")
    )
    with pytest.raises(EmitError) as err:
        image_index([amd64, other])
    assert err.value.reason == "ambiguous-platform" and "linux/amd64" in err.value.message
    with pytest.raises(EmitError, match="needs at least one"):
        image_index([])


@pytest.mark.parametrize("key", ["org.opencontainers.image.madeup", "org.opencontainers.foo"])
def test_reserved_annotation_keys_are_refused(key: str) -> None:
    with pytest.raises(EmitError) as err:
        _image(annotations={key: "x"})
    assert err.value.reason == "bad-annotation" and "dev.ukbuild." in (err.value.hint or "")


def test_bad_values_are_emit_errors() -> None:
    with pytest.raises(EmitError):
        _image(annotations={"dev.ukbuild.n": 1})  # type: ignore[dict-item]
    with pytest.raises(EmitError, match="no '='"):
        _image(config=ImageConfig(env=["PATH"]))
    with pytest.raises(EmitError, match="not a platform"):
        Platform.parse("linux")
    with pytest.raises(EmitError, match="not a valid image tag"):
        check_ref_name("bad tag")
    assert check_ref_name("v1.0--rc1/x:y") == "v1.0--rc1/x:y"
    assert rfc3339(1_700_000_000) == "2023-11-14T22:13:20Z"
