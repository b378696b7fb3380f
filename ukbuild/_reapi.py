"""The few Remote Execution API v2 messages ukbuild stores, in protobuf wire format.

Encoding them by hand keeps protobuf out of the core while producing exactly
the bytes ``SerializeToString()`` would (fields in number order, proto3
defaults omitted).  That makes ukbuild's tree digests and action results the
ones a REAPI server computes and accepts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import attrs

from .errors import StoreError

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


@attrs.frozen(order=True)
class Digest:
    """A SHA-256 content digest paired with the content's size (REAPI ``Digest``)."""

    hash: str
    size: int

    @classmethod
    def of(cls, data: bytes) -> Digest:
        return cls(hashlib.sha256(data).hexdigest(), len(data))

    @classmethod
    def parse(cls, text: str) -> Digest:
        """Parse ``sha256:<hex>/<size>``, the form used in key documents and events."""
        algo, _, rest = text.partition(":")
        hex_, _, size = rest.partition("/")
        if algo != "sha256" or len(hex_) != 64 or not size.isdigit():
            raise ValueError(f"not a digest: {text!r}")
        return cls(hex_, int(size))

    def __str__(self) -> str:
        return f"sha256:{self.hash}/{self.size}"


# --- wire primitives -------------------------------------------------------


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field_bytes(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _field_str(number: int, text: str) -> bytes:
    return _field_bytes(number, text.encode()) if text else b""


def _field_int(number: int, value: int) -> bytes:
    if not value:
        return b""
    if value < 0:
        value += 1 << 64
    return _varint(number << 3) + _varint(value)


def _fields(data: bytes) -> Iterator[tuple[int, int | bytes]]:
    """Yield (field number, value) from a message; unknown wire types are an error."""
    pos, end = 0, len(data)
    while pos < end:
        key, pos = _read_varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _read_varint(data, pos)
            yield number, value
        elif wire == 2:
            length, pos = _read_varint(data, pos)
            if pos + length > end:
                raise ValueError("truncated field")
            yield number, data[pos : pos + length]
            pos += length
        else:
            raise ValueError(f"unsupported wire type {wire}")


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


# --- messages ---------------------------------------------------------------


def encode_digest(d: Digest) -> bytes:
    return _field_str(1, d.hash) + _field_int(2, d.size)


def decode_digest(data: bytes) -> Digest:
    hash_, size = "", 0
    for number, value in _fields(data):
        if number == 1 and isinstance(value, bytes):
            hash_ = value.decode()
        elif number == 2 and isinstance(value, int):
            size = value
    return Digest(hash_, size)


@attrs.frozen
class FileNode:
    name: str
    digest: Digest
    executable: bool = False


@attrs.frozen
class SymlinkNode:
    name: str
    target: str


@attrs.frozen
class DirectoryNode:
    name: str
    digest: Digest


@attrs.frozen
class Directory:
    """One level of a Merkle tree; children are kept sorted by name (REAPI canonical form)."""

    files: tuple[FileNode, ...] = ()
    directories: tuple[DirectoryNode, ...] = ()
    symlinks: tuple[SymlinkNode, ...] = ()

    def encode(self) -> bytes:
        out = bytearray()
        for f in sorted(self.files, key=lambda n: n.name):
            body = _field_str(1, f.name) + _field_bytes(2, encode_digest(f.digest))
            body += _field_int(4, int(f.executable))
            out += _field_bytes(1, body)
        for d in sorted(self.directories, key=lambda n: n.name):
            out += _field_bytes(2, _field_str(1, d.name) + _field_bytes(2, encode_digest(d.digest)))
        for s in sorted(self.symlinks, key=lambda n: n.name):
            out += _field_bytes(3, _field_str(1, s.name) + _field_str(2, s.target))
        return bytes(out)

    @classmethod
    def decode(cls, data: bytes) -> Directory:
        files, dirs, links = [], [], []
        for number, value in _fields(data):
            if not isinstance(value, bytes):
                continue
            sub = dict(_fields(value))
            name = _text(sub.get(1))
            if number == 1:
                files.append(FileNode(name, _digest(sub.get(2)), bool(sub.get(4))))
            elif number == 2:
                dirs.append(DirectoryNode(name, _digest(sub.get(2))))
            elif number == 3:
                links.append(SymlinkNode(name, _text(sub.get(2))))
        return cls(tuple(files), tuple(dirs), tuple(links))


@attrs.frozen
class Tree:
    """A whole output directory in one message: its root and every descendant."""

    root: Directory
    children: tuple[Directory, ...] = ()
    #: Each child's digest, which the ``DirectoryNode`` entries name: of the bytes as
    #: received when decoded (no second encoding), else of its encoding.
    child_digests: tuple[Digest, ...] = attrs.field(eq=False, repr=False)

    @child_digests.default
    def _encoded_child_digests(self) -> tuple[Digest, ...]:
        return tuple(Digest.of(child.encode()) for child in self.children)

    def encode(self) -> bytes:
        out = _field_bytes(1, self.root.encode())
        for child in self.children:
            out += _field_bytes(2, child.encode())
        return out

    @classmethod
    def decode(cls, data: bytes) -> Tree:
        root, children, digests = Directory(), [], []
        for number, value in _fields(data):
            if number == 1 and isinstance(value, bytes):
                root = Directory.decode(value)
            elif number == 2 and isinstance(value, bytes):
                children.append(Directory.decode(value))
                digests.append(Digest.of(value))
        return cls(root, tuple(children), tuple(digests))


@attrs.frozen
class OutputFile:
    path: str
    digest: Digest
    executable: bool = False


@attrs.frozen
class OutputDirectory:
    path: str
    tree_digest: Digest
    root_digest: Digest


@attrs.frozen
class OutputSymlink:
    path: str
    target: str


@attrs.frozen
class ActionResult:
    """What an action produced; every digest names a blob in the CAS."""

    output_files: tuple[OutputFile, ...] = ()
    output_directories: tuple[OutputDirectory, ...] = ()
    output_symlinks: tuple[OutputSymlink, ...] = ()
    exit_code: int = 0
    stdout_digest: Digest | None = None
    stderr_digest: Digest | None = None

    def blobs(self) -> Iterator[Digest]:
        """Every CAS blob this result refers to directly (trees are expanded elsewhere)."""
        for f in self.output_files:
            yield f.digest
        for d in self.output_directories:
            yield d.tree_digest
        for log in (self.stdout_digest, self.stderr_digest):
            if log is not None:
                yield log

    def encode(self) -> bytes:
        out = bytearray()
        for f in self.output_files:
            body = _field_str(1, f.path) + _field_bytes(2, encode_digest(f.digest))
            out += _field_bytes(2, body + _field_int(4, int(f.executable)))
        for d in self.output_directories:
            body = _field_str(1, d.path) + _field_bytes(3, encode_digest(d.tree_digest))
            out += _field_bytes(3, body + _field_bytes(5, encode_digest(d.root_digest)))
        out += _field_int(4, self.exit_code)
        if self.stdout_digest is not None:
            out += _field_bytes(6, encode_digest(self.stdout_digest))
        if self.stderr_digest is not None:
            out += _field_bytes(8, encode_digest(self.stderr_digest))
        for s in self.output_symlinks:
            out += _field_bytes(12, _field_str(1, s.path) + _field_str(2, s.target))
        return bytes(out)

    @classmethod
    def decode(cls, data: bytes) -> ActionResult:
        """Parse stored bytes; anything malformed is a ``StoreError`` (treated as a miss)."""
        try:
            files, dirs, links = [], [], []
            exit_code, out_d, err_d = 0, None, None
            for number, value in _fields(data):
                if number == 4 and isinstance(value, int):  # int32: a negative one is sign-extended
                    exit_code = value - (1 << 64) if value >= 1 << 63 else value
                    continue
                if not isinstance(value, bytes):
                    raise ValueError(f"field {number} has the wrong wire type")
                if number in (6, 8):
                    digest = decode_digest(value)
                    out_d, err_d = (digest, err_d) if number == 6 else (out_d, digest)
                    continue
                sub = dict(_fields(value))
                if number == 2:
                    files.append(OutputFile(_text(sub.get(1)), _digest(sub.get(2)), bool(sub.get(4))))
                elif number == 3:
                    tree = _digest(sub.get(3))
                    dirs.append(OutputDirectory(_text(sub.get(1)), tree, _digest(sub.get(5))))
                elif number == 12:
                    links.append(OutputSymlink(_text(sub.get(1)), _text(sub.get(2))))
            return cls(tuple(files), tuple(dirs), tuple(links), exit_code, out_d, err_d)
        except (ValueError, UnicodeDecodeError) as exc:
            raise StoreError(f"malformed action result: {exc}", reason="corrupt-entry") from exc


def _text(value: int | bytes | None) -> str:
    if not isinstance(value, bytes):
        return ""
    return value.decode()


def _digest(value: int | bytes | None) -> Digest:
    if not isinstance(value, bytes):
        raise ValueError("missing digest")
    digest = decode_digest(value)
    if len(digest.hash) != 64:
        raise ValueError("bad digest")
    return digest
