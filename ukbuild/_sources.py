"""Fetching, verifying, extracting and patching sources.

Archives are fixed-output: only their declared sha256 enters keys, and a
download whose content does not match is rejected before anything is stored.
Mirrors (directories or URLs) are searched by sha256 first.  Extraction
refuses anything that could write outside its directory.
"""

from __future__ import annotations

import hashlib
import http.client
import lzma
import os
import shutil
import subprocess
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from ._reapi import Digest
from ._store import CHUNK, Store
from ._trees import climbs_out, link_leaves
from .errors import SourceError
from .model import ArchiveSource

#: Refuse archives that unpack to more than this (zip bombs); override per call.
MAX_UNPACKED_BYTES = 16 << 30
DOWNLOAD_TIMEOUT = 60
#: What a damaged archive raises besides tarfile.TarError (truncated or corrupt streams,
#: zip members whose bytes contradict their declared size or CRC).
_DAMAGED = (EOFError, OSError, zlib.error, lzma.LZMAError, zipfile.BadZipFile)


def fetch_archive(source: ArchiveSource, store: Store, mirrors: Iterable[str] = (), *, offline: bool = False) -> Digest:
    """Make the archive's bytes available in the store; returns their digest.

    ``offline`` reads only the store and local mirrors (directories, ``file://``).
    """
    known = store.find_blob(source.sha256)
    if known is not None:
        return known
    name = PurePosixPath(urllib.parse.urlparse(source.url).path).name
    candidates = []
    for mirror in mirrors:
        for leaf in (source.sha256, name):
            candidates.append(_join(mirror, leaf))
    candidates.append(source.url)
    if offline:
        candidates = [url for url in candidates if _is_local(url)]
        if not candidates:
            raise SourceError(
                f"{source.url}: not in the cache, and the build is offline",
                hint="build once with the network to fill the cache, or put the archive in a mirror directory (--mirror DIR)",
                reason="offline",
            )
    errors = []
    for url in candidates:
        try:
            return _download(url, source.sha256, store)
        except _Skip as exc:
            errors.append(f"{url}: {exc}")
    raise SourceError(
        f"{source.url}: could not fetch an archive with sha256 {source.sha256}",
        detail="\n".join(errors),
        hint="check the URL and sha256, or put the archive in a mirror directory (--mirror DIR)",
        reason="fetch-failed",
        temporary=any("mismatch" not in e for e in errors),
    )


class _Skip(Exception):
    """This candidate did not provide the archive; try the next."""


def _join(mirror: str, leaf: str) -> str:
    if "://" in mirror:
        return mirror.rstrip("/") + "/" + urllib.parse.quote(leaf)
    return str(Path(mirror) / leaf)


def _is_local(url: str) -> bool:
    return "://" not in url or url.startswith("file://")


def _host(url: str) -> tuple[str | None, int | None]:
    parts = urllib.parse.urlparse(url)
    return parts.hostname, parts.port or {"http": 80, "https": 443}.get(parts.scheme)


class _SameHostRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects only to the same host and port (another port is another server)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        if _host(urllib.parse.urljoin(req.full_url, newurl)) != _host(req.full_url):
            raise urllib.error.URLError(f"refused redirect to another host: {newurl}")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _open(url: str):  # type: ignore[no-untyped-def]
    if "://" not in url:
        return open(url, "rb")  # noqa: SIM115 - the caller closes it
    if url.startswith("file://"):
        return open(urllib.request.url2pathname(urllib.parse.urlparse(url).path), "rb")  # noqa: SIM115
    opener = urllib.request.build_opener(_SameHostRedirects)
    return opener.open(url, timeout=DOWNLOAD_TIMEOUT)


def _download(url: str, sha256: str, store: Store) -> Digest:
    fd, tmp = tempfile.mkstemp(prefix="fetch-", dir=store.scratch_dir())
    try:
        h = hashlib.sha256()
        size = 0
        try:
            with _open(url) as src, os.fdopen(fd, "wb") as dst:
                while chunk := src.read(CHUNK):
                    h.update(chunk)
                    size += len(chunk)
                    dst.write(chunk)
                missing = getattr(src, "length", None)  # of an HTTP response's Content-Length
        except FileNotFoundError as exc:
            raise _Skip("not found") from exc
        except (OSError, urllib.error.URLError, ValueError, http.client.HTTPException) as exc:
            raise _Skip(str(exc)) from exc
        if missing:  # the connection closed early
            raise _Skip(f"truncated: got {size} of {size + missing} bytes")
        if h.hexdigest() != sha256:
            raise _Skip(f"sha256 mismatch: got {h.hexdigest()} ({size} bytes)")
        return store.put_file(Path(tmp), Digest(sha256, size))
    finally:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass


def extract_archive(archive: Path, dest: Path, *, strip: int, origin: str, limit: int = MAX_UNPACKED_BYTES) -> None:
    """Unpack a tar (any compression) or zip into ``dest``, dropping ``strip`` leading components."""
    dest.mkdir(parents=True, exist_ok=True)
    if zipfile.is_zipfile(archive):
        _extract_zip(archive, dest, strip, origin, limit)
        return
    try:
        with tarfile.open(archive) as tar:
            members = []
            total = 0
            for member in tar.getmembers():
                name = _stripped(member.name, strip, origin)
                if name is None:
                    continue
                if member.isdev() or member.isfifo():
                    raise _unsafe(origin, member.name, "device or FIFO")
                if member.issym() or member.islnk():
                    _check_link(name, member.linkname, member.issym(), strip, origin, member.name)
                    if member.islnk():
                        member.linkname = _stripped(member.linkname, strip, origin) or ""
                total += member.size
                if total > limit:
                    raise SourceError(f"{origin}: unpacks to more than {limit} bytes", reason="archive-too-large")
                member.name = name
                members.append(member)
            tar.extractall(dest, members=members, filter="data")
    except (tarfile.TarError, *_DAMAGED) as exc:
        raise SourceError(f"{origin}: cannot unpack: {exc}", reason="bad-archive") from exc


def _extract_zip(archive: Path, dest: Path, strip: int, origin: str, limit: int) -> None:
    try:
        _unzip(archive, dest, strip, origin, limit)
    except _DAMAGED as exc:
        raise SourceError(f"{origin}: cannot unpack: {exc}", reason="bad-archive") from exc


def _unzip(archive: Path, dest: Path, strip: int, origin: str, limit: int) -> None:
    with zipfile.ZipFile(archive) as zf:
        if sum(i.file_size for i in zf.infolist()) > limit:
            raise SourceError(f"{origin}: unpacks to more than {limit} bytes", reason="archive-too-large")
        for info in zf.infolist():
            name = _stripped(info.filename, strip, origin)
            if name is None:
                continue
            target = dest / name
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out)
            if info.external_attr >> 16 & 0o111:
                target.chmod(0o755)


def _stripped(name: str, strip: int, origin: str) -> str | None:
    pure = PurePosixPath(name)
    if pure.is_absolute() or ".." in pure.parts:
        raise _unsafe(origin, name, "absolute path or '..'")
    parts = [p for p in pure.parts if p != "."]
    if len(parts) <= strip:
        return None
    return "/".join(parts[strip:])


def _check_link(name: str, target: str, symbolic: bool, strip: int, origin: str, raw: str) -> None:
    pure = PurePosixPath(target)
    if pure.is_absolute():
        raise _unsafe(origin, raw, f"link to absolute path {target}")
    if link_leaves(name, target) if symbolic else climbs_out(pure.parts[strip:]):
        raise _unsafe(origin, raw, f"link escapes the tree: {target}")


def _unsafe(origin: str, member: str, why: str) -> SourceError:
    return SourceError(
        f"{origin}: unsafe archive member {member!r}: {why}",
        hint="the archive is refused whole; check where it came from",
        reason="unsafe-archive",
    )


def apply_patches(tree: Path, patches: Iterable[Path], origin: str) -> None:
    for patch in patches:
        proc = subprocess.run(
            ["patch", "-p1", "--batch", "--forward", "--no-backup-if-mismatch", "-i", str(patch)],
            cwd=tree, capture_output=True, text=True, check=False,
        )
        if proc.returncode != 0:
            raise SourceError(
                f"{origin}: patch {patch.name} does not apply",
                detail=(proc.stdout + proc.stderr).strip(),
                hint="refresh the patch against this source version",
                reason="patch-failed",
            )
