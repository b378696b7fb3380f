"""Cache keys: "ukbuild canonical JSON v1" and the key document of an action.

An action's key is the SHA-256 of the canonical bytes of its key document.
The document names everything that can change the action's output and
nothing else: no ambient PATH or HOME, no absolute checkout or scratch
paths, no timestamps, no parallelism, no host name.  Dependencies enter
through the digests of their outputs, never their keys, so a dependency that
rebuilds to the same bytes changes nothing downstream (early cutoff).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import TypeAlias

from ._reapi import Digest

KeyValue: TypeAlias = "str | int | bool | None | list[KeyValue] | dict[str, KeyValue]"

#: Bumping this invalidates every key ever computed.
KEY_VERSION = 1


def canonical_json(value: object) -> bytes:
    """Encode ``value`` as ukbuild canonical JSON v1 (RFC 8785 compatible, no floats)."""
    _reject_floats(value)
    return _encode(value)


_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _encode(value: object) -> bytes:
    """:func:`canonical_json` without the float check, for documents whose parts that
    could hold a float were checked already (the scheduler's key documents)."""
    return _ENCODER.encode(value).encode("utf-8")


def _reject_floats(value: object) -> None:
    if isinstance(value, float):
        raise TypeError("floats are not allowed in key documents")
    if isinstance(value, dict):
        for item in value.values():
            _reject_floats(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _reject_floats(item)


def key_document(
    *,
    step: str,
    step_version: int,
    config: Mapping[str, KeyValue],
    inputs: Mapping[str, str],
    command: list[str],
    env: Mapping[str, str],
    outputs: list[str],
    workdir: str,
    platform: Mapping[str, str],
    toolchain: KeyValue,
    salt: str,
) -> dict[str, KeyValue]:
    """Assemble the key document; every argument is already path- and host-independent."""
    doc: dict[str, KeyValue] = {
        "ukbuild-key": KEY_VERSION,
        "step": step,
        "plugin-key-version": step_version,
        "config": dict(config),
        "inputs": dict(inputs),
        "command": list(command),
        "env": dict(env),
        "outputs": sorted(set(outputs)),
        "platform": dict(platform),
        "toolchain": toolchain,
        "salt": salt,
    }
    if workdir:
        doc["workdir"] = workdir
    return doc


def digest_of(document: Mapping[str, object]) -> Digest:
    """The key: the digest of the document's canonical bytes."""
    data = canonical_json(document)
    return Digest(hashlib.sha256(data).hexdigest(), len(data))


def diff_documents(old: object, new: object, prefix: str = "") -> list[tuple[str, object, object]]:
    """List ``(dotted field, old, new)`` for every leaf that differs between two documents."""
    if isinstance(old, dict) and isinstance(new, dict):
        changes: list[tuple[str, object, object]] = []
        for name in sorted(set(old) | set(new)):
            field = f"{prefix}.{name}" if prefix else str(name)
            if name not in old:
                changes.append((field, None, new[name]))
            elif name not in new:
                changes.append((field, old[name], None))
            else:
                changes.extend(diff_documents(old[name], new[name], field))
        return changes
    return [] if old == new else [(prefix, old, new)]
