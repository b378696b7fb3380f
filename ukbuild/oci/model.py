"""OCI values: blobs, descriptors, platforms, configs, manifests and indexes.

Every JSON document is serialised canonically (sorted keys, no whitespace,
UTF-8), because its bytes are its digest: the same inputs must always give
the same manifest digest.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from ukbuild.errors import EmitError

if TYPE_CHECKING:
    from .tar import Layer


class MediaType:
    LAYOUT_HEADER = "application/vnd.oci.layout.header.v1+json"
    INDEX = "application/vnd.oci.image.index.v1+json"
    MANIFEST = "application/vnd.oci.image.manifest.v1+json"
    CONFIG = "application/vnd.oci.image.config.v1+json"
    EMPTY = "application/vnd.oci.empty.v1+json"
    LAYER = "application/vnd.oci.image.layer.v1.tar"
    LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
    LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"


#: Artifact types for what ukbuild attaches to an image as referrers.
BUILD_RECORD_TYPE = "application/vnd.ukbuild.buildinfo.v1+json"
SBOM_SPDX_TYPE = "application/spdx+json"

ANNOTATION_PREFIX = "org.opencontainers.image."
REF_NAME = ANNOTATION_PREFIX + "ref.name"
CREATED = ANNOTATION_PREFIX + "created"
#: The pre-defined ``org.opencontainers.image.*`` keys; others are reserved.
STANDARD_ANNOTATIONS = frozenset(
    ANNOTATION_PREFIX + key
    for key in (
        "created",
        "authors",
        "url",
        "documentation",
        "source",
        "version",
        "revision",
        "vendor",
        "licenses",
        "ref.name",
        "title",
        "description",
        "base.digest",
        "base.name",
    )
)

_DIGEST_RE = re.compile(r"sha256:[a-f0-9]{64}\Z")
_REF_NAME_RE = re.compile(
    r"[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*(?:/[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*)*\Z"
)


def str_tuple(values: Iterable[str]) -> tuple[str, ...]:
    """attrs converter: any iterable of strings to a tuple (typed for mypy)."""
    return tuple(values)


def str_dict(values: Mapping[str, str]) -> dict[str, str]:
    """attrs converter: any string mapping to a plain dict (typed for mypy)."""
    return dict(values)


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8, no NaN: one byte string per value."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def rfc3339(epoch: int) -> str:
    """``1970-01-01T00:00:00Z`` form of a Unix time, as annotations and configs use."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def check_digest(digest: str) -> str:
    if not _DIGEST_RE.match(digest):
        raise EmitError(f"{digest!r} is not a sha256 digest", reason="bad-digest")
    return digest


def check_ref_name(name: str) -> str:
    """Validate a tag as the image-layout spec defines ``ref.name``."""
    if not isinstance(name, str) or not _REF_NAME_RE.match(name):
        raise EmitError(
            f"{name!r} is not a valid image tag",
            hint="tags are letters and digits joined by '-', '.', '_', ':', '@', '+' or '/'",
            reason="bad-tag",
        )
    return name


def check_annotations(annotations: Mapping[str, str], where: str) -> dict[str, str]:
    """Return a plain dict of string annotations; refuse invented ``org.opencontainers`` keys."""
    result: dict[str, str] = {}
    for key, value in annotations.items():
        if not isinstance(key, str) or not key or not isinstance(value, str):
            raise EmitError(
                f"{where}: annotation {key!r}={value!r} is not a string pair",
                hint="annotation keys and values must both be strings",
                reason="bad-annotation",
            )
        if key.startswith("org.opencontainers.") and key not in STANDARD_ANNOTATIONS:
            raise EmitError(
                f"{where}: annotation key {key!r} is reserved by the OCI image spec",
                hint="put ukbuild or project keys under your own prefix, e.g. 'dev.ukbuild.'",
                reason="bad-annotation",
            )
        result[key] = value
    return result


def standard_annotations(
    *,
    created: int | None = None,
    title: str | None = None,
    description: str | None = None,
    version: str | None = None,
    revision: str | None = None,
    source: str | None = None,
    url: str | None = None,
    licenses: str | None = None,
    authors: str | None = None,
    vendor: str | None = None,
) -> dict[str, str]:
    """The ``org.opencontainers.image.*`` annotations that are given.

    ``created`` is a Unix time (``SOURCE_DATE_EPOCH``); without one the key is
    left out rather than filled with the wall clock.
    """
    values = {
        "title": title,
        "description": description,
        "version": version,
        "revision": revision,
        "source": source,
        "url": url,
        "licenses": licenses,
        "authors": authors,
        "vendor": vendor,
    }
    result = {ANNOTATION_PREFIX + key: value for key, value in values.items() if value is not None}
    if created is not None:
        result[CREATED] = rfc3339(created)
    return result


@attrs.frozen
class Blob:
    """Content plus its media type; the digest is computed once."""

    media_type: str
    data: bytes = attrs.field(converter=bytes, repr=lambda d: f"<{len(d)} bytes>")
    digest: str = attrs.field(init=False)

    @digest.default
    def _digest(self) -> str:
        return sha256_digest(self.data)

    @property
    def size(self) -> int:
        return len(self.data)

    @classmethod
    def json(cls, media_type: str, value: Any) -> Blob:
        return cls(media_type, canonical_json(value))

    def descriptor(self, **kwargs: Any) -> Descriptor:
        return Descriptor(self.media_type, self.digest, self.size, **kwargs)


EMPTY_BLOB = Blob(MediaType.EMPTY, b"{}")


@attrs.frozen
class Platform:
    """An OCI platform; ``Platform.parse("linux/arm64/v8")`` for the common form."""

    os: str
    architecture: str
    variant: str | None = None
    os_version: str | None = None
    os_features: tuple[str, ...] = attrs.field(default=(), converter=str_tuple)

    @classmethod
    def parse(cls, text: str) -> Platform:
        parts = text.split("/")
        if len(parts) not in (2, 3) or not all(re.fullmatch(r"[A-Za-z0-9_.-]+", p) for p in parts):
            raise EmitError(
                f"{text!r} is not a platform",
                hint="write OS/ARCH[/VARIANT], e.g. linux/amd64 or linux/arm64/v8",
                reason="bad-platform",
            )
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else None)

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)

    def to_json(self) -> dict[str, Any]:
        result: dict[str, Any] = {"os": self.os, "architecture": self.architecture}
        if self.variant:
            result["variant"] = self.variant
        if self.os_version:
            result["os.version"] = self.os_version
        if self.os_features:
            result["os.features"] = list(self.os_features)
        return result


@attrs.frozen
class Descriptor:
    media_type: str
    digest: str = attrs.field(validator=lambda _i, _a, v: check_digest(v))
    size: int
    annotations: Mapping[str, str] = attrs.field(factory=dict, converter=str_dict)
    platform: Platform | None = None
    artifact_type: str | None = None

    def to_json(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
        }
        if self.annotations:
            result["annotations"] = dict(self.annotations)
        if self.platform is not None:
            result["platform"] = self.platform.to_json()
        if self.artifact_type:
            result["artifactType"] = self.artifact_type
        return result


@attrs.frozen
class ImageConfig:
    """The runnable parts of an image config (``config`` in the JSON)."""

    cmd: tuple[str, ...] = attrs.field(default=(), converter=str_tuple)
    entrypoint: tuple[str, ...] = attrs.field(default=(), converter=str_tuple)
    env: tuple[str, ...] = attrs.field(default=(), converter=str_tuple)
    labels: Mapping[str, str] = attrs.field(factory=dict, converter=str_dict)
    working_dir: str | None = None

    def to_json(self) -> dict[str, Any]:
        for item in self.env:
            if "=" not in item:
                raise EmitError(
                    f"environment entry {item!r} has no '='",
                    hint="write NAME=VALUE",
                    reason="bad-env",
                )
        result: dict[str, Any] = {}
        if self.cmd:
            result["Cmd"] = list(self.cmd)
        if self.entrypoint:
            result["Entrypoint"] = list(self.entrypoint)
        if self.env:
            result["Env"] = list(self.env)
        if self.labels:
            result["Labels"] = check_annotations(self.labels, "config labels")
        if self.working_dir:
            result["WorkingDir"] = self.working_dir
        return result


@attrs.frozen
class Manifest:
    """An image or artifact manifest together with every blob it refers to."""

    blob: Blob
    config: Blob
    layers: tuple[Blob, ...]
    platform: Platform | None = None
    artifact_type: str | None = None
    subject: Descriptor | None = None

    @property
    def digest(self) -> str:
        return self.blob.digest

    def descriptor(self, annotations: Mapping[str, str] | None = None) -> Descriptor:
        return self.blob.descriptor(
            annotations=annotations or {}, platform=self.platform, artifact_type=self.artifact_type
        )

    def blobs(self) -> Iterator[Blob]:
        yield self.config
        yield from self.layers
        yield self.blob


@attrs.frozen
class Index:
    """An image index and the manifests it lists (one reference, several platforms)."""

    blob: Blob
    manifests: tuple[Manifest, ...]

    @property
    def digest(self) -> str:
        return self.blob.digest

    def descriptor(self, annotations: Mapping[str, str] | None = None) -> Descriptor:
        return self.blob.descriptor(annotations=annotations or {})

    def blobs(self) -> Iterator[Blob]:
        for manifest in self.manifests:
            yield from manifest.blobs()
        yield self.blob


def _manifest_json(
    config: Descriptor,
    layers: Sequence[Descriptor],
    annotations: Mapping[str, str],
    subject: Descriptor | None = None,
    artifact_type: str | None = None,
) -> dict[str, Any]:
    if not layers:
        raise EmitError("an image needs at least one layer", reason="no-layers")
    result: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": MediaType.MANIFEST,
        "config": config.to_json(),
        "layers": [layer.to_json() for layer in layers],
    }
    if annotations:
        result["annotations"] = check_annotations(annotations, "manifest")
    if subject is not None:
        result["subject"] = subject.to_json()
    if artifact_type:
        result["artifactType"] = artifact_type
    return result


def image_manifest(
    layers: Sequence[Layer],
    *,
    platform: Platform,
    config: ImageConfig | None = None,
    created: int | None = None,
    annotations: Mapping[str, str] | None = None,
    config_descriptor_platform: bool = False,
) -> Manifest:
    """Build an image manifest and its config for ``layers`` (base first).

    ``created`` (a Unix time) sets the config's ``created``; leave it ``None``
    to omit it.  ``config_descriptor_platform`` repeats the platform on the
    config descriptor, which KraftKit reads back.
    """
    config = config or ImageConfig()
    config_json: dict[str, Any] = {
        **platform.to_json(),
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
    }
    runtime = config.to_json()
    if runtime:
        config_json["config"] = runtime
    if created is not None:
        config_json["created"] = rfc3339(created)
    config_blob = Blob.json(MediaType.CONFIG, config_json)
    config_desc = config_blob.descriptor(platform=platform if config_descriptor_platform else None)
    layer_descs = [
        layer.blob.descriptor(annotations=check_annotations(layer.annotations, "layer"))
        for layer in layers
    ]
    manifest = Blob.json(
        MediaType.MANIFEST, _manifest_json(config_desc, layer_descs, annotations or {})
    )
    return Manifest(manifest, config_blob, tuple(layer.blob for layer in layers), platform)


def artifact_manifest(
    subject: Manifest | Descriptor,
    artifact_type: str,
    payloads: Sequence[Blob],
    *,
    annotations: Mapping[str, str] | None = None,
) -> Manifest:
    """An artifact (build record, SBOM, …) that refers to ``subject`` as a referrer.

    Its config is the empty descriptor, so ``artifactType`` is required; the
    subject's digest is unchanged by attaching it.
    """
    if not artifact_type or "/" not in artifact_type:
        raise EmitError(
            f"artifact type {artifact_type!r} is not a media type",
            hint="use e.g. " + BUILD_RECORD_TYPE,
            reason="bad-artifact-type",
        )
    subject_desc = subject.descriptor() if isinstance(subject, Manifest) else subject
    subject_desc = Descriptor(subject_desc.media_type, subject_desc.digest, subject_desc.size)
    layer_descs = [payload.descriptor() for payload in payloads]
    body = _manifest_json(
        EMPTY_BLOB.descriptor(),
        layer_descs,
        annotations or {},
        subject=subject_desc,
        artifact_type=artifact_type,
    )
    return Manifest(
        Blob.json(MediaType.MANIFEST, body),
        EMPTY_BLOB,
        tuple(payloads),
        None,
        artifact_type,
        subject_desc,
    )


def image_index(
    manifests: Sequence[Manifest], *, annotations: Mapping[str, str] | None = None
) -> Index:
    """An index of per-platform manifests under one reference.

    Two entries a runtime could not tell apart (same os, architecture,
    variant, os.version and os.features) are refused: the second would never
    be selected.
    """
    if not manifests:
        raise EmitError("an image index needs at least one manifest", reason="empty-index")
    seen: dict[Platform, str] = {}
    for manifest in manifests:
        if manifest.platform is None:
            raise EmitError(
                f"manifest {manifest.digest} has no platform and cannot be listed in a platform index",
                reason="ambiguous-platform",
            )
        key = attrs.evolve(
            manifest.platform, os_features=tuple(sorted(manifest.platform.os_features))
        )
        if key in seen:
            raise EmitError(
                f"two images for platform {manifest.platform} cannot be told apart in one index",
                detail=f"{seen[key]}\n{manifest.digest}",
                hint="give them different os.features or variants, or publish them under separate tags",
                reason="ambiguous-platform",
            )
        seen[key] = manifest.digest
    body: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": MediaType.INDEX,
        "manifests": [manifest.descriptor().to_json() for manifest in manifests],
    }
    if annotations:
        body["annotations"] = check_annotations(annotations, "index")
    return Index(Blob.json(MediaType.INDEX, body), tuple(manifests))
