"""The REAPI and ByteStream request/response messages the gRPC client sends, hand-encoded.

Like :mod:`ukbuild._reapi`, this writes the protobuf wire format directly, so
the remote tier needs ``grpcio`` for transport but no ``protobuf`` runtime and
no generated code.  Field numbers are those of REAPI v2
(``build/bazel/remote/execution/v2/remote_execution.proto``) and
``google/bytestream/bytestream.proto``; a test parses these bytes with the
generated classes BuildGrid ships.  Decoding tolerates every wire type and
ignores unknown fields, since servers send messages from newer API versions.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import attrs

from .._reapi import (
    ActionResult,
    Digest,
    _field_bytes,
    _field_int,
    _field_str,
    _read_varint,
    _varint,
    decode_digest,
    encode_digest,
)

SHA256 = 1  # DigestFunction.Value.SHA256

# The ActionResult fields ukbuild understands; others (inline logs, execution
# metadata) are dropped before decoding.
_RESULT_FIELDS = frozenset({2, 3, 4, 6, 8, 12})


def fields(data: bytes) -> Iterator[tuple[int, int | bytes]]:
    """Yield (field number, value) of a message; fixed-width values come as ints."""
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
        elif wire in (1, 5):
            width = 8 if wire == 1 else 4
            if pos + width > end:
                raise ValueError("truncated field")
            yield number, int.from_bytes(data[pos : pos + width], "little")
            pos += width
        else:
            raise ValueError(f"unsupported wire type {wire}")


def _digests(number: int, digests: Iterable[Digest]) -> bytes:
    return b"".join(_field_bytes(number, encode_digest(d)) for d in digests)


def _bytes_field(number: int, data: bytes) -> bytes:
    return _field_bytes(number, data) if data else b""


@attrs.frozen
class Status:
    """``google.rpc.Status``: a gRPC code (0 is OK) and a message."""

    code: int = 0
    message: str = ""

    @classmethod
    def decode(cls, data: bytes) -> Status:
        code, message = 0, ""
        for number, value in fields(data):
            if number == 1 and isinstance(value, int):
                code = value
            elif number == 2 and isinstance(value, bytes):
                message = value.decode(errors="replace")
        return cls(code, message)


# --- Capabilities -------------------------------------------------------------


def get_capabilities_request(instance: str) -> bytes:
    return _field_str(1, instance)


@attrs.frozen
class Capabilities:
    """What ukbuild needs from ``ServerCapabilities``."""

    digest_functions: tuple[int, ...] = ()
    max_batch_total_size: int = 0
    update_enabled: bool = False
    exec_enabled: bool = False

    @classmethod
    def decode(cls, data: bytes) -> Capabilities:
        functions: list[int] = []
        max_batch, update, execute = 0, False, False
        for number, value in fields(data):
            if number == 1 and isinstance(value, bytes):
                for sub, item in fields(value):
                    if sub == 1:
                        functions.extend(_repeated_enum(item))
                    elif sub == 2 and isinstance(item, bytes):
                        update = any(n == 1 and bool(v) for n, v in fields(item))
                    elif sub == 4 and isinstance(item, int):
                        max_batch = item
            elif number == 2 and isinstance(value, bytes):
                execute = any(n == 2 and bool(v) for n, v in fields(value))
        return cls(tuple(functions), max_batch, update, execute)


def _repeated_enum(value: int | bytes) -> list[int]:
    """A repeated enum arrives packed (one bytes field) or as single varints."""
    if isinstance(value, int):
        return [value]
    out, pos = [], 0
    while pos < len(value):
        item, pos = _read_varint(value, pos)
        out.append(item)
    return out


# --- ContentAddressableStorage -----------------------------------------------


def find_missing_request(instance: str, digests: Iterable[Digest]) -> bytes:
    return _field_str(1, instance) + _digests(2, digests) + _field_int(3, SHA256)


def find_missing_response(data: bytes) -> list[Digest]:
    return [decode_digest(v) for n, v in fields(data) if n == 2 and isinstance(v, bytes)]


def batch_update_request(instance: str, blobs: Iterable[tuple[Digest, bytes]]) -> bytes:
    out = bytearray(_field_str(1, instance))
    for digest, data in blobs:
        out += _field_bytes(2, _field_bytes(1, encode_digest(digest)) + _bytes_field(2, data))
    return bytes(out) + _field_int(5, SHA256)


def batch_update_response(data: bytes) -> list[tuple[Digest, Status]]:
    """(digest, status) per blob; servers may answer in any order."""
    out = []
    for number, value in fields(data):
        if number == 1 and isinstance(value, bytes):
            digest, status = Digest("", 0), Status()
            for sub, item in fields(value):
                if sub == 1 and isinstance(item, bytes):
                    digest = decode_digest(item)
                elif sub == 2 and isinstance(item, bytes):
                    status = Status.decode(item)
            out.append((digest, status))
    return out


def batch_read_request(instance: str, digests: Iterable[Digest]) -> bytes:
    return _field_str(1, instance) + _digests(2, digests) + _field_int(4, SHA256)


def batch_read_response(data: bytes) -> list[tuple[Digest, bytes, Status]]:
    """(digest, data, status) per blob; servers may answer in any order."""
    out = []
    for number, value in fields(data):
        if number == 1 and isinstance(value, bytes):
            digest, blob, status = Digest("", 0), b"", Status()
            for sub, item in fields(value):
                if sub == 1 and isinstance(item, bytes):
                    digest = decode_digest(item)
                elif sub == 2 and isinstance(item, bytes):
                    blob = item
                elif sub == 3 and isinstance(item, bytes):
                    status = Status.decode(item)
            out.append((digest, blob, status))
    return out


# --- ActionCache ----------------------------------------------------------------


def get_action_result_request(instance: str, key: Digest) -> bytes:
    return _field_str(1, instance) + _field_bytes(2, encode_digest(key)) + _field_int(6, SHA256)


def update_action_result_request(instance: str, key: Digest, result: ActionResult) -> bytes:
    return (
        _field_str(1, instance)
        + _field_bytes(2, encode_digest(key))
        + _field_bytes(3, result.encode())
        + _field_int(5, SHA256)
    )


def action_result(data: bytes) -> ActionResult:
    """Decode a server's ``ActionResult``, keeping only the fields ukbuild stores.

    Raises ``StoreError`` (via ``ActionResult.decode``) or ``ValueError`` when malformed.
    """
    kept = bytearray()
    for number, value in fields(data):
        if number not in _RESULT_FIELDS:
            continue
        if isinstance(value, bytes):
            kept += _field_bytes(number, value)
        else:
            kept += _varint(number << 3) + _varint(value)
    return ActionResult.decode(bytes(kept))


# --- ByteStream -------------------------------------------------------------------


def read_request(resource: str, offset: int = 0) -> bytes:
    return _field_str(1, resource) + _field_int(2, offset)


def read_response(data: bytes) -> bytes:
    for number, value in fields(data):
        if number == 10 and isinstance(value, bytes):
            return value
    return b""


def write_request(resource: str, offset: int, data: bytes, *, finish: bool) -> bytes:
    return (
        _field_str(1, resource)
        + _field_int(2, offset)
        + _field_int(3, int(finish))
        + _bytes_field(10, data)
    )


def write_response(data: bytes) -> int:
    for number, value in fields(data):
        if number == 1 and isinstance(value, int):
            return value
    return 0
