"""Write images out (an OCI image layout, an OCI archive, a Docker archive) and read layouts back.

Each writer builds its output in a temporary sibling of the target and
renames it into place at the end, so an error never leaves a half-written
layout or archive behind.  An existing target is replaced only when it is an
output of the same kind (an OCI layout directory, or a file).  The reader
checks every blob's size and digest against its descriptor.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from ukbuild.errors import EmitError

from .model import (
    REF_NAME,
    Blob,
    Descriptor,
    Index,
    Manifest,
    MediaType,
    Platform,
    canonical_json,
    check_annotations,
    check_digest,
    check_ref_name,
)
from .tar import TarEntry, decompress_layer, tar_bytes

OCI_LAYOUT = canonical_json({"imageLayoutVersion": "1.0.0"})

_DOCKER_NAME_RE = re.compile(
    r"(?:[A-Za-z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
    r"(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*\Z"
)
_DOCKER_TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}\Z")


def layout_files(
    tags: Mapping[str, Manifest | Index],
    *,
    referrers: Sequence[Manifest] = (),
    annotations: Mapping[str, str] | None = None,
) -> dict[str, bytes]:
    """The files of an OCI image layout, by relative path.

    ``tags`` maps each ``ref.name`` to an image or a per-platform index;
    ``referrers`` are artifact manifests (build record, SBOM) whose subject
    must be one of the written manifests.  They are listed in ``index.json``
    without a tag, so they never change the image's digest.
    """
    if not tags:
        raise EmitError("nothing to write: no tagged image", reason="empty-layout")
    blobs: dict[str, Blob] = {}
    manifests: set[str] = set()
    entries = []
    for tag in sorted(tags):
        target = tags[tag]
        entries.append(target.descriptor({REF_NAME: check_ref_name(tag)}).to_json())
        for blob in target.blobs():
            blobs[blob.digest] = blob
            if blob.media_type == MediaType.MANIFEST:
                manifests.add(blob.digest)
    for referrer in referrers:
        if referrer.subject is None or referrer.subject.digest not in manifests:
            raise EmitError(
                f"artifact {referrer.digest} does not refer to an image in this layout",
                hint="attach build records and SBOMs to one of the images being written",
                reason="dangling-referrer",
            )
        entries.append(referrer.descriptor().to_json())
        for blob in referrer.blobs():
            blobs[blob.digest] = blob
    index: dict[str, object] = {
        "schemaVersion": 2,
        "mediaType": MediaType.INDEX,
        "manifests": entries,
    }
    if annotations:
        index["annotations"] = check_annotations(annotations, "index.json")
    files = {"oci-layout": OCI_LAYOUT, "index.json": canonical_json(index)}
    for digest in sorted(blobs):
        algorithm, encoded = digest.split(":", 1)
        files[f"blobs/{algorithm}/{encoded}"] = blobs[digest].data
    return files


def write_oci_layout(
    target: Path | str,
    tags: Mapping[str, Manifest | Index],
    *,
    referrers: Sequence[Manifest] = (),
    annotations: Mapping[str, str] | None = None,
) -> Path:
    """Write an OCI image layout directory at ``target`` (see :func:`layout_files`)."""
    files = layout_files(tags, referrers=referrers, annotations=annotations)
    target = Path(target)
    with _replacing_dir(target) as tmp:
        for relative, data in files.items():
            path = tmp / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    return target


def write_oci_archive(
    target: Path | str,
    tags: Mapping[str, Manifest | Index],
    *,
    referrers: Sequence[Manifest] = (),
    annotations: Mapping[str, str] | None = None,
    mtime: int = 0,
) -> Path:
    """Write the layout as one deterministic tar (``oci-archive:`` for skopeo/podman)."""
    files = layout_files(tags, referrers=referrers, annotations=annotations)
    data = tar_bytes((TarEntry.file(path, content) for path, content in files.items()), mtime=mtime)
    return _write_file(Path(target), data)


def write_docker_archive(
    target: Path | str, images: Mapping[str, Manifest], *, mtime: int = 0
) -> Path:
    """Write a ``docker load``-able archive; ``images`` maps ``repo:tag`` to an image.

    Layers are stored uncompressed (``<diff_id>/layer.tar``), which also lets
    zstd images through.  Manifest annotations do not survive this format;
    config Labels do.
    """
    if not images:
        raise EmitError("nothing to write: no tagged image", reason="empty-layout")
    by_digest: dict[str, tuple[Manifest, list[str]]] = {}
    for repo_tag in sorted(images):
        manifest = images[repo_tag]
        _check_docker_ref(repo_tag)
        if manifest.platform is None:
            raise EmitError(
                f"{repo_tag}: artifact {manifest.digest} is not an image and cannot go into a Docker archive",
                reason="not-an-image",
            )
        by_digest.setdefault(manifest.digest, (manifest, []))[1].append(repo_tag)
    files: dict[str, bytes] = {}
    entries = []
    for manifest, repo_tags in by_digest.values():
        config_name = manifest.config.digest.split(":", 1)[1] + ".json"
        files[config_name] = manifest.config.data
        layer_names = []
        for layer in manifest.layers:
            raw = decompress_layer(layer)
            name = Blob(MediaType.LAYER, raw).digest.split(":", 1)[1] + "/layer.tar"
            files[name] = raw
            layer_names.append(name)
        entries.append({"Config": config_name, "RepoTags": repo_tags, "Layers": layer_names})
    files["manifest.json"] = canonical_json(entries)
    data = tar_bytes((TarEntry.file(path, content) for path, content in files.items()), mtime=mtime)
    return _write_file(Path(target), data)


def _check_docker_ref(repo_tag: str) -> None:
    name, sep, tag = repo_tag.rpartition(":")
    if not sep or "/" in tag or not _DOCKER_NAME_RE.match(name) or not _DOCKER_TAG_RE.match(tag):
        raise EmitError(
            f"{repo_tag!r} is not a Docker repository:tag",
            hint="write e.g. 'ukbuild/hello:latest' (lowercase repository, tag of letters, digits, '._-')",
            reason="bad-tag",
        )


def _sibling_temp(target: Path, kind: str) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    if kind == "dir":
        return Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    return Path(name)


@contextlib.contextmanager
def _replacing_dir(target: Path) -> Iterator[Path]:
    """Yield a temporary directory that replaces ``target`` once the block succeeds."""
    if target.exists() or target.is_symlink():
        if not target.is_dir() or target.is_symlink():
            raise EmitError(f"{target} exists and is not a directory", reason="output-exists")
        if any(target.iterdir()) and not (target / "oci-layout").is_file():
            raise EmitError(
                f"{target} is a non-empty directory that is not an OCI layout; not replacing it",
                hint="choose another output directory, or remove this one",
                reason="output-exists",
            )
    with _os_errors(target):
        tmp = _sibling_temp(target, "dir")
        try:
            yield tmp
            tmp.chmod(0o755)
            if target.exists():
                old = Path(
                    tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent)
                )
                os.replace(target, old / "layout")
                os.replace(tmp, target)
                shutil.rmtree(old)
            else:
                os.replace(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


def _write_file(target: Path, data: bytes) -> Path:
    if target.is_dir():
        raise EmitError(f"{target} is a directory, not an archive file", reason="output-exists")
    with _os_errors(target):
        tmp = _sibling_temp(target, "file")
        try:
            tmp.write_bytes(data)
            tmp.chmod(0o644)
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    return target


@contextlib.contextmanager
def _os_errors(target: Path) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise EmitError(
            f"cannot write {target}: {exc.strerror or exc}",
            hint="check that the output directory exists, is writable and has free space",
            reason="output-failed",
        ) from exc


def read_oci_layout(root: Path | str, tag: str) -> Manifest | Index:
    """Read the image or index tagged ``tag`` in the layout at ``root``, every blob verified.

    Each blob's size and sha256 must match its descriptor; manifest bytes are
    kept as stored, so pushing what was read keeps every digest.
    """
    reader = _LayoutReader(Path(root))
    matches = [
        entry for entry in reader.entries() if entry.get("annotations", {}).get(REF_NAME) == tag
    ]
    if len(matches) != 1:
        tags = sorted(
            {str(e["annotations"][REF_NAME]) for e in reader.entries() if REF_NAME in e.get("annotations", {})}
        )
        raise EmitError(
            f"{root}: {'no' if not matches else 'more than one'} image tagged {tag!r} in this OCI layout",
            hint="tags here: " + (", ".join(tags) or "none"),
            reason="bad-layout",
        )
    return reader.target(matches[0])


def read_referrers(root: Path | str, target: Manifest | Index) -> tuple[Manifest, ...]:
    """The untagged artifacts in the layout at ``root`` whose subject is ``target`` or one of its images."""
    reader = _LayoutReader(Path(root))
    subjects = {target.digest, *(m.digest for m in (target.manifests if isinstance(target, Index) else ()))}
    found = []
    for entry in reader.entries():
        if REF_NAME in entry.get("annotations", {}) or entry.get("mediaType") != MediaType.MANIFEST:
            continue
        manifest = reader.manifest(entry, None)
        if manifest.subject is not None and manifest.subject.digest in subjects:
            found.append(manifest)
    return tuple(found)


class _LayoutReader:
    """Reads descriptors of one layout, checking every blob against its descriptor."""

    def __init__(self, root: Path) -> None:
        self.root = root
        try:
            layout = json.loads((root / "oci-layout").read_bytes())
            self.index = json.loads((root / "index.json").read_bytes())
        except (OSError, ValueError) as exc:
            raise EmitError(
                f"{root} is not a readable OCI image layout: {exc}",
                hint="build the image first (format = \"oci\"), or give the layout directory",
                reason="bad-layout",
            ) from exc
        if not isinstance(layout, dict) or layout.get("imageLayoutVersion") != "1.0.0":
            raise self._bad("oci-layout", "is not imageLayoutVersion 1.0.0")
        if not isinstance(self.index, dict) or not isinstance(self.index.get("manifests"), list):
            raise self._bad("index.json", "has no manifests list")

    def entries(self) -> list[dict[str, Any]]:
        return [e for e in self.index["manifests"] if isinstance(e, dict)]

    def _bad(self, what: str, problem: str) -> EmitError:
        return EmitError(
            f"{self.root}: {what} {problem}",
            hint="rebuild the image; the layout was changed or damaged after it was written",
            reason="bad-layout",
        )

    def blob(self, descriptor: Any) -> Blob:
        if not isinstance(descriptor, dict):
            raise self._bad("a descriptor", "is not a JSON object")
        digest, size, media_type = (descriptor.get(k) for k in ("digest", "size", "mediaType"))
        if not isinstance(digest, str) or not isinstance(size, int) or not isinstance(media_type, str):
            raise self._bad(f"descriptor {descriptor!r}", "lacks a digest, size or mediaType")
        check_digest(digest)
        path = self.root / "blobs" / "sha256" / digest.split(":", 1)[1]
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise self._bad(f"blob {digest}", f"cannot be read: {exc.strerror or exc}") from exc
        blob = Blob(media_type, data)
        if blob.size != size or blob.digest != digest:
            raise self._bad(
                f"blob {digest}", f"does not match its descriptor (size {blob.size}, digest {blob.digest})"
            )
        return blob

    def target(self, descriptor: dict[str, Any]) -> Manifest | Index:
        if descriptor.get("mediaType") == MediaType.INDEX:
            blob = self.blob(descriptor)
            children = self._json(blob).get("manifests")
            if not isinstance(children, list) or not children:
                raise self._bad(f"index {blob.digest}", "lists no manifests")
            return Index(blob, tuple(self.manifest(child, _platform(child)) for child in children))
        return self.manifest(descriptor, _platform(descriptor))

    def manifest(self, descriptor: dict[str, Any], platform: Platform | None) -> Manifest:
        if descriptor.get("mediaType") != MediaType.MANIFEST:
            raise self._bad(f"descriptor {descriptor.get('digest')}", "is neither an image manifest nor an index")
        blob = self.blob(descriptor)
        body = self._json(blob)
        layers = body.get("layers")
        if not isinstance(layers, list):
            raise self._bad(f"manifest {blob.digest}", "has no layers list")
        config = self.blob(body.get("config"))
        if platform is None and config.media_type == MediaType.CONFIG:
            platform = _platform(self._json(config))
        subject = body.get("subject")
        if subject is not None and not (
            isinstance(subject, dict) and {"mediaType", "digest", "size"} <= set(subject)
        ):
            raise self._bad(f"manifest {blob.digest}", "has a subject that is not a descriptor")
        return Manifest(
            blob,
            config,
            tuple(self.blob(layer) for layer in layers),
            platform,
            body.get("artifactType"),
            None if subject is None else Descriptor(subject["mediaType"], subject["digest"], subject["size"]),
        )

    def _json(self, blob: Blob) -> dict[str, Any]:
        try:
            value = json.loads(blob.data)
        except ValueError as exc:
            raise self._bad(f"blob {blob.digest}", "is not JSON") from exc
        if not isinstance(value, dict):
            raise self._bad(f"blob {blob.digest}", "is not a JSON object")
        return value


def _platform(document: dict[str, Any]) -> Platform | None:
    """The platform of an index entry (``platform``) or of an image config (top-level keys)."""
    value = document.get("platform", document)
    if not isinstance(value, dict) or "os" not in value or "architecture" not in value:
        return None
    return Platform(
        value["os"],
        value["architecture"],
        value.get("variant"),
        value.get("os.version"),
        tuple(value.get("os.features", ())),
    )
