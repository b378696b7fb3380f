"""The remote-execution messages, hand-encoded like :mod:`._wire`.

REAPI v2 ``Command``, ``Action``, ``Platform``, ``ExecuteRequest`` /
``ExecuteResponse`` and ``google.longrunning.Operation`` for the client, and
the Remote Workers API (``google.devtools.remoteworkers.v1test2``)
``BotSession`` and ``Lease`` for the worker.  Field numbers are those of the
protos BuildGrid 0.9.1 vendors; a test parses these bytes with its generated
classes.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from .._reapi import (
    ActionResult,
    Digest,
    _field_bytes,
    _field_int,
    _field_str,
    decode_digest,
    encode_digest,
)
from ._wire import SHA256, Status, action_result, fields

TYPE_PREFIX = "type.googleapis.com/"
ACTION_TYPE = TYPE_PREFIX + "build.bazel.remote.execution.v2.Action"
DIGEST_TYPE = TYPE_PREFIX + "build.bazel.remote.execution.v2.Digest"
RESULT_TYPE = TYPE_PREFIX + "build.bazel.remote.execution.v2.ActionResult"
EXECUTE_RESPONSE_TYPE = TYPE_PREFIX + "build.bazel.remote.execution.v2.ExecuteResponse"

# Lease and bot states (remoteworkers v1test2).
LEASE_PENDING, LEASE_ACTIVE, LEASE_COMPLETED, LEASE_CANCELLED = 1, 2, 4, 5
BOT_OK, BOT_TERMINATING = 1, 4


def _pairs(number: int, pairs: Iterable[tuple[str, str]]) -> bytes:
    return b"".join(_field_bytes(number, _field_str(1, k) + _field_str(2, v)) for k, v in pairs)


def _decode_pairs(values: Iterable[int | bytes]) -> tuple[tuple[str, str], ...]:
    out = []
    for value in values:
        if isinstance(value, bytes):
            sub = dict(fields(value))
            out.append((_text(sub.get(1)), _text(sub.get(2))))
    return tuple(out)


def _text(value: int | bytes | None) -> str:
    return value.decode() if isinstance(value, bytes) else ""


def _repeated(data: bytes, number: int) -> list[int | bytes]:
    return [v for n, v in fields(data) if n == number]


def encode_status(status: Status) -> bytes:
    return _field_int(1, status.code) + _field_str(2, status.message)


@attrs.frozen
class Any:
    """``google.protobuf.Any``: a type URL and the packed message's bytes."""

    type_url: str
    value: bytes

    def encode(self) -> bytes:
        return _field_str(1, self.type_url) + (_field_bytes(2, self.value) if self.value else b"")

    @classmethod
    def decode(cls, data: bytes) -> Any:
        sub = dict(fields(data))
        value = sub.get(2)
        return cls(_text(sub.get(1)), value if isinstance(value, bytes) else b"")


# --- Command and Action ------------------------------------------------------------


@attrs.frozen
class Command:
    """What to run; ``env`` and ``platform`` are kept sorted (REAPI requires it)."""

    arguments: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = attrs.field(converter=lambda p: tuple(sorted(p)), default=())
    output_paths: tuple[str, ...] = attrs.field(converter=lambda p: tuple(sorted(set(p))), default=())
    working_directory: str = ""
    platform: tuple[tuple[str, str], ...] = attrs.field(converter=lambda p: tuple(sorted(p)), default=())

    def encode(self) -> bytes:
        out = b"".join(_field_str(1, a) if a else _field_bytes(1, b"") for a in self.arguments)
        out += _pairs(2, self.env)
        if self.platform:  # deprecated here since v2.2, still read by older servers
            out += _field_bytes(5, _pairs(1, self.platform))
        out += _field_str(6, self.working_directory)
        out += b"".join(_field_str(7, p) for p in self.output_paths)
        return out

    @classmethod
    def decode(cls, data: bytes) -> Command:
        """Parse a Command; REAPI 2.0 ``output_files``/``output_directories`` count as paths."""
        args = tuple(_text(v) for v in _repeated(data, 1))
        paths = [_text(v) for v in _repeated(data, 7)]
        if not paths:
            paths = [_text(v) for v in (*_repeated(data, 3), *_repeated(data, 4))]
        platform: tuple[tuple[str, str], ...] = ()
        for value in _repeated(data, 5):
            if isinstance(value, bytes):
                platform = _decode_pairs(_repeated(value, 1))
        workdir = next((_text(v) for v in _repeated(data, 6)), "")
        return cls(args, _decode_pairs(_repeated(data, 2)), tuple(paths), workdir, platform)


@attrs.frozen
class Action:
    command: Digest
    input_root: Digest
    platform: tuple[tuple[str, str], ...] = attrs.field(converter=lambda p: tuple(sorted(p)), default=())
    timeout: int = 0  # seconds; 0 = the server's default
    do_not_cache: bool = False
    salt: bytes = b""

    def encode(self) -> bytes:
        out = _field_bytes(1, encode_digest(self.command)) + _field_bytes(2, encode_digest(self.input_root))
        if self.timeout:
            out += _field_bytes(6, _field_int(1, self.timeout))
        out += _field_int(7, int(self.do_not_cache))
        if self.salt:
            out += _field_bytes(9, self.salt)
        if self.platform:
            out += _field_bytes(10, _pairs(1, self.platform))
        return out

    @classmethod
    def decode(cls, data: bytes) -> Action:
        command = input_root = None
        platform: tuple[tuple[str, str], ...] = ()
        timeout, do_not_cache, salt = 0, False, b""
        for number, value in fields(data):
            if number == 1 and isinstance(value, bytes):
                command = decode_digest(value)
            elif number == 2 and isinstance(value, bytes):
                input_root = decode_digest(value)
            elif number == 6 and isinstance(value, bytes):
                timeout = next((v for n, v in fields(value) if n == 1 and isinstance(v, int)), 0)
            elif number == 7 and isinstance(value, int):
                do_not_cache = bool(value)
            elif number == 9 and isinstance(value, bytes):
                salt = value
            elif number == 10 and isinstance(value, bytes):
                platform = _decode_pairs(_repeated(value, 1))
        if command is None or input_root is None:
            raise ValueError("Action lacks its command or input root digest")
        return cls(command, input_root, platform, timeout, do_not_cache, salt)


# --- Execution -------------------------------------------------------------------------


def execute_request(instance: str, action: Digest, *, skip_cache_lookup: bool = False) -> bytes:
    return (
        _field_str(1, instance)
        + _field_int(3, int(skip_cache_lookup))
        + _field_bytes(6, encode_digest(action))
        + _field_int(9, SHA256)
    )


def wait_execution_request(name: str) -> bytes:
    return _field_str(1, name)


def name_request(name: str) -> bytes:
    """``CancelOperationRequest`` / ``GetOperationRequest``: just the operation's name."""
    return _field_str(1, name)


@attrs.frozen
class ExecuteResponse:
    result: ActionResult | None
    cached: bool
    status: Status
    message: str = ""

    @classmethod
    def decode(cls, data: bytes) -> ExecuteResponse:
        result, cached, status, message = None, False, Status(), ""
        for number, value in fields(data):
            if number == 1 and isinstance(value, bytes):
                result = action_result(value)
            elif number == 2 and isinstance(value, int):
                cached = bool(value)
            elif number == 3 and isinstance(value, bytes):
                status = Status.decode(value)
            elif number == 5 and isinstance(value, bytes):
                message = value.decode(errors="replace")
        return cls(result, cached, status, message)


@attrs.frozen
class Operation:
    """A ``google.longrunning.Operation`` of an Execute call."""

    name: str
    done: bool
    error: Status | None = None
    response: ExecuteResponse | None = None

    @classmethod
    def decode(cls, data: bytes) -> Operation:
        name, done, error, response = "", False, None, None
        for number, value in fields(data):
            if number == 1 and isinstance(value, bytes):
                name = value.decode()
            elif number == 3 and isinstance(value, int):
                done = bool(value)
            elif number == 4 and isinstance(value, bytes):
                error = Status.decode(value)
            elif number == 5 and isinstance(value, bytes):
                packed = Any.decode(value)
                if packed.type_url == EXECUTE_RESPONSE_TYPE:
                    response = ExecuteResponse.decode(packed.value)
        return cls(name, done, error, response)


# --- Remote Workers API ---------------------------------------------------------------------


@attrs.frozen
class Lease:
    """One job given to a bot; ``payload`` packs an ``Action`` (or its ``Digest``)."""

    id: str
    state: int
    payload: Any | None = None
    status: Status | None = None
    result: Any | None = None

    def encode(self) -> bytes:
        out = _field_int(2, self.state)
        if self.status is not None:
            out += _field_bytes(3, encode_status(self.status))
        out += _field_str(7, self.id)
        if self.payload is not None:
            out += _field_bytes(8, self.payload.encode())
        if self.result is not None:
            out += _field_bytes(9, self.result.encode())
        return out

    @classmethod
    def decode(cls, data: bytes) -> Lease:
        lease_id, state, payload, status = "", 0, None, None
        for number, value in fields(data):
            if number == 7 and isinstance(value, bytes):
                lease_id = value.decode()
            elif number == 2 and isinstance(value, int):
                state = value
            elif number == 8 and isinstance(value, bytes):
                payload = Any.decode(value)
            elif number == 3 and isinstance(value, bytes):
                status = Status.decode(value)
        return cls(lease_id, state, payload, status)


@attrs.frozen
class BotSession:
    """A bot's session: who it is, what its primary device offers, which leases it holds."""

    bot_id: str
    properties: tuple[tuple[str, str], ...] = ()
    capacity: int = 1
    name: str = ""
    leases: tuple[Lease, ...] = ()
    version: str = ""
    status: int = BOT_OK

    def encode(self) -> bytes:
        device = _field_str(1, self.bot_id) + _pairs(2, self.properties)
        worker = _field_bytes(1, device) + _pairs(3, [("capacity", str(self.capacity))])
        out = _field_str(1, self.name) + _field_str(2, self.bot_id) + _field_int(3, self.status)
        out += _field_bytes(4, worker)
        out += b"".join(_field_bytes(5, lease.encode()) for lease in self.leases)
        return out + _field_str(7, self.version)

    def answered(self, data: bytes) -> BotSession:
        """This session as the server returned it: its name, leases and version."""
        name, version, leases = self.name, self.version, []
        for number, value in fields(data):
            if number == 1 and isinstance(value, bytes):
                name = value.decode()
            elif number == 5 and isinstance(value, bytes):
                leases.append(Lease.decode(value))
            elif number == 7 and isinstance(value, bytes):
                version = value.decode()
        return attrs.evolve(self, name=name, leases=tuple(leases), version=version)


def create_bot_session_request(parent: str, session: BotSession) -> bytes:
    return _field_str(1, parent) + _field_bytes(2, session.encode())


def update_bot_session_request(session: BotSession) -> bytes:
    return _field_str(1, session.name) + _field_bytes(2, session.encode())
