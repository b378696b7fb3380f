"""Write images out: an OCI image layout, an OCI archive, a Docker archive.

Each writer builds its output in a temporary sibling of the target and
renames it into place at the end, so an error never leaves a half-written
layout or archive behind.  An existing target is replaced only when it is an
output of the same kind (an OCI layout directory, or a file).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from ukbuild.errors import EmitError

from .model import (
    REF_NAME,
    Blob,
    Index,
    Manifest,
    MediaType,
    canonical_json,
    check_annotations,
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
