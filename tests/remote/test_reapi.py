"""The gRPC tier: wire conformance with BuildGrid's generated classes, instance names,
and faults from an in-process gRPC server (reordered batches, wrong bytes, UNAVAILABLE)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import attrs
import pytest

from tests.remote.conftest import BUILDGRID_VENV, Server
from tests.remote.helpers import make_result, noise
from ukbuild._reapi import Digest
from ukbuild._store import Store
from ukbuild.remote import Blob, CorruptBlob, RemoteConfig, RemoteError, RemoteTier, _wire, connect

pytestmark = pytest.mark.usefixtures("need_grpc")

CONFORMANCE = r"""
import json, sys
from buildgrid._protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re
from buildgrid._protos.google.bytestream import bytestream_pb2 as bs
from google.protobuf.json_format import MessageToDict
kinds = {"FindMissingBlobsRequest": re, "BatchUpdateBlobsRequest": re, "BatchReadBlobsRequest": re,
         "GetActionResultRequest": re, "UpdateActionResultRequest": re, "GetCapabilitiesRequest": re,
         "ReadRequest": bs, "WriteRequest": bs}
out = {}
for name, data in json.load(sys.stdin).items():
    message = getattr(kinds[name], name).FromString(bytes.fromhex(data))
    out[name] = {"dict": MessageToDict(message), "same": message.SerializeToString() == bytes.fromhex(data)}
print(json.dumps(out))
"""


def test_requests_parse_as_buildgrids_generated_messages(buildgrid: Server, store: Store) -> None:
    sample = make_result(store, "wire")
    a, b = Digest.of(b"a"), Digest.of(b"bb")
    messages = {
        "FindMissingBlobsRequest": _wire.find_missing_request("main", [a, b]),
        "BatchUpdateBlobsRequest": _wire.batch_update_request("main", [(a, b"a"), (b, b"bb")]),
        "BatchReadBlobsRequest": _wire.batch_read_request("main", [a]),
        "GetActionResultRequest": _wire.get_action_result_request("main", sample.key),
        "UpdateActionResultRequest": _wire.update_action_result_request(
            "main", sample.key, sample.result
        ),
        "GetCapabilitiesRequest": _wire.get_capabilities_request("main"),
        "ReadRequest": _wire.read_request("main/blobs/x/1", 5),
        "WriteRequest": _wire.write_request("main/uploads/u/blobs/x/2", 0, b"xy", finish=True),
    }
    run = subprocess.run(
        [str(BUILDGRID_VENV / "bin" / "python"), "-c", CONFORMANCE],
        input=json.dumps({k: v.hex() for k, v in messages.items()}),
        capture_output=True,
        text=True,
        check=True,
    )
    parsed = json.loads(run.stdout)
    assert all(entry["same"] for entry in parsed.values()), (
        parsed
    )  # canonical bytes, no unknown fields
    d = {name: entry["dict"] for name, entry in parsed.items()}
    assert d["FindMissingBlobsRequest"] == {
        "instanceName": "main",
        "digestFunction": "SHA256",
        "blobDigests": [{"hash": a.hash, "sizeBytes": "1"}, {"hash": b.hash, "sizeBytes": "2"}],
    }
    assert d["BatchUpdateBlobsRequest"]["requests"][1] == {
        "digest": {"hash": b.hash, "sizeBytes": "2"},
        "data": "YmI=",
    }
    update = d["UpdateActionResultRequest"]
    assert update["actionDigest"]["hash"] == sample.key.hash
    assert update["actionResult"]["outputDirectories"][0]["path"] == "out/dir"
    assert update["actionResult"]["outputSymlinks"] == [{"path": "out/link", "target": "file"}]
    assert d["ReadRequest"] == {"resourceName": "main/blobs/x/1", "readOffset": "5"}
    assert d["WriteRequest"] == {
        "resourceName": "main/uploads/u/blobs/x/2",
        "finishWrite": True,
        "data": "eHk=",
    }


def test_capabilities_and_instance_names(buildgrid: Server, store: Store, store_b: Store) -> None:
    cache = connect(RemoteConfig(buildgrid.url))
    caps = cache.capabilities()  # type: ignore[attr-defined]
    assert caps.digest_functions == (_wire.SHA256,) and caps.max_batch_total_size == 4193280
    assert caps.update_enabled
    team = connect(RemoteConfig(buildgrid.url, instance="team"))
    sample = make_result(store, "instance")
    team.upload_blobs([Blob(d, data=data) for d, data in sample.blobs.items()])
    team.update_action_result(sample.key, sample.result)
    assert team.get_action_result(sample.key) == sample.result
    assert cache.get_action_result(sample.key) is None  # another instance's action cache
    unknown = connect(RemoteConfig(buildgrid.url, instance="nope", timeout=2.0))
    with pytest.raises(RemoteError) as caught:
        unknown.find_missing({sample.key})
    assert "Invalid instance name" in str(caught.value)
    for remote in (cache, team, unknown):
        remote.close()


# --- a fake REAPI server ------------------------------------------------------------------


@attrs.define
class FakeReapi:
    """CAS + AC in memory; answers batches in reverse order; optional faults."""

    url: str = ""
    cas: dict[Digest, bytes] = attrs.field(factory=dict)
    ac: dict[Digest, bytes] = attrs.field(factory=dict)
    calls: list[str] = attrs.field(factory=list)
    fault: str = ""  # "" | "wrong-bytes" | "unavailable-once" | "unavailable" | "slow"


def _fake_reapi_server(state: FakeReapi) -> Callable[[], object]:
    import grpc

    from ukbuild._reapi import _field_bytes, decode_digest, encode_digest

    def digests(data: bytes, number: int) -> list[Digest]:
        return [
            decode_digest(v) for n, v in _wire.fields(data) if n == number and isinstance(v, bytes)
        ]

    def guard(name: str, context: grpc.ServicerContext) -> None:
        state.calls.append(name)
        if state.fault == "slow":
            time.sleep(2.0)
        if state.fault == "unavailable" or (
            state.fault == "unavailable-once" and len(state.calls) == 1
        ):
            context.abort(grpc.StatusCode.UNAVAILABLE, "going away")

    def capabilities(request: bytes, context: grpc.ServicerContext) -> bytes:
        guard("GetCapabilities", context)
        return _field_bytes(1, _wire._field_int(4, 1000))  # a small batch limit: 1000 bytes

    def find_missing(request: bytes, context: grpc.ServicerContext) -> bytes:
        guard("FindMissingBlobs", context)
        return b"".join(
            _field_bytes(2, encode_digest(d)) for d in digests(request, 2) if d not in state.cas
        )

    def batch_read(request: bytes, context: grpc.ServicerContext) -> bytes:
        guard("BatchReadBlobs", context)
        out = b""
        for d in reversed(digests(request, 2)):
            data = state.cas.get(d)
            if data is not None and state.fault == "wrong-bytes":
                data = data[::-1] + b"!"
            body = _field_bytes(1, encode_digest(d))
            body += _field_bytes(2, data) if data else b""
            body += _field_bytes(3, _wire._field_int(1, 0 if data is not None else 5))
            out += _field_bytes(1, body)
        return out

    def batch_update(request: bytes, context: grpc.ServicerContext) -> bytes:
        guard("BatchUpdateBlobs", context)
        out = b""
        entries = [
            dict(_wire.fields(v))
            for n, v in _wire.fields(request)
            if n == 2 and isinstance(v, bytes)
        ]
        for entry in reversed(entries):
            d = decode_digest(entry[1])  # type: ignore[arg-type]
            state.cas[d] = entry.get(2, b"")  # type: ignore[assignment]
            out += _field_bytes(1, _field_bytes(1, encode_digest(d)) + _field_bytes(2, b""))
        return out

    def get_result(request: bytes, context: grpc.ServicerContext) -> bytes:
        guard("GetActionResult", context)
        (key,) = digests(request, 2)
        if key not in state.ac:
            context.abort(grpc.StatusCode.NOT_FOUND, "no")
        return state.ac[key]

    def read(request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
        guard("Read", context)
        name = dict(_wire.fields(request))[1]
        assert isinstance(name, bytes)
        hash_, size = name.decode().split("/")[-2:]
        data = state.cas.get(Digest(hash_, int(size)))
        if data is None:
            context.abort(grpc.StatusCode.NOT_FOUND, "no")
        if state.fault == "wrong-bytes":
            data = data[::-1]
        for start in range(0, len(data), 1000):
            yield _field_bytes(10, data[start : start + 1000])

    identity = (lambda b: b, lambda b: b)
    handlers = {
        "build.bazel.remote.execution.v2.Capabilities": {
            "GetCapabilities": grpc.unary_unary_rpc_method_handler(capabilities, *identity)
        },
        "build.bazel.remote.execution.v2.ContentAddressableStorage": {
            "FindMissingBlobs": grpc.unary_unary_rpc_method_handler(find_missing, *identity),
            "BatchReadBlobs": grpc.unary_unary_rpc_method_handler(batch_read, *identity),
            "BatchUpdateBlobs": grpc.unary_unary_rpc_method_handler(batch_update, *identity),
        },
        "build.bazel.remote.execution.v2.ActionCache": {
            "GetActionResult": grpc.unary_unary_rpc_method_handler(get_result, *identity)
        },
        "google.bytestream.ByteStream": {
            "Read": grpc.unary_stream_rpc_method_handler(read, *identity)
        },
    }
    from concurrent.futures import ThreadPoolExecutor

    server = grpc.server(ThreadPoolExecutor(max_workers=4))
    for service, methods in handlers.items():
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, methods),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    state.url = f"grpc://127.0.0.1:{port}"
    return lambda: server.stop(grace=None).wait()


@pytest.fixture
def fake_reapi() -> Iterator[FakeReapi]:
    state = FakeReapi()
    stop = _fake_reapi_server(state)
    yield state
    stop()


def test_batches_are_matched_by_digest_and_split_by_the_servers_limit(
    fake_reapi: FakeReapi, store_b: Store
) -> None:
    datas = [noise(f"batch-{i}", 150 + i) for i in range(12)] + [noise("stream", 5000)]
    blobs = [Blob(Digest.of(d), data=d) for d in datas]
    cache = connect(RemoteConfig(fake_reapi.url))
    cache.upload_blobs(blobs[:-1])  # the 5000-byte blob exceeds the fake's 1000-byte batch limit
    fake_reapi.cas[blobs[-1].digest] = datas[-1]
    assert fake_reapi.calls.count("BatchUpdateBlobs") >= 3  # 12 blobs of ~250 framed bytes
    assert cache.download_blobs({b.digest for b in blobs}, store_b) == set()
    assert fake_reapi.calls.count("Read") == 1  # the large one over ByteStream, in 1000-byte chunks
    for data in datas:
        assert store_b.read_bytes(Digest.of(data)) == data
    cache.close()


def test_wrong_bytes_over_grpc_are_never_stored(
    fake_reapi: FakeReapi, store: Store, store_b: Store
) -> None:
    small, large = noise("small", 200), noise("large", 3000)
    for data in (small, large):
        fake_reapi.cas[Digest.of(data)] = data
    fake_reapi.fault = "wrong-bytes"
    cache = connect(RemoteConfig(fake_reapi.url))
    with pytest.raises(CorruptBlob) as caught:
        cache.download_blobs({Digest.of(small), Digest.of(large)}, store_b)
    assert str(Digest.of(small)) in str(caught.value) and str(Digest.of(large)) in str(caught.value)
    assert not store_b.has(Digest.of(small)) and not store_b.has(Digest.of(large))
    assert store_b.stats().temp_files == 0
    cache.close()


def test_unavailable_is_retried_then_a_warning_and_a_miss(
    fake_reapi: FakeReapi, store: Store, store_b: Store
) -> None:
    sample = make_result(store, "retry")
    fake_reapi.ac[sample.key] = sample.result.encode()
    for digest, data in sample.blobs.items():
        fake_reapi.cas[digest] = data
    fake_reapi.fault = "unavailable-once"
    warnings: list[str] = []
    tier = RemoteTier(connect(RemoteConfig(fake_reapi.url)), retries=2, warn=warnings.append)
    assert tier.lookup(sample.key, store_b) == sample.result  # the retry succeeded
    assert warnings == []
    fake_reapi.fault = "unavailable"
    assert tier.lookup(make_result(store, "retry-2").key, store_b) is None
    assert len(warnings) == 1 and "UNAVAILABLE" in warnings[0]
    tier.close()


def test_grpc_tier_is_optional() -> None:
    """Importing ukbuild.remote and using HTTP never imports grpc."""
    script = "import sys, ukbuild.remote as r; r.connect(r.RemoteConfig('http://127.0.0.1:1')); print('grpc' in sys.modules)"
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "False"


def test_slow_grpc_remote_costs_one_deadline(fake_reapi: FakeReapi, store: Store) -> None:
    fake_reapi.fault = "slow"
    warnings: list[str] = []
    tier = RemoteTier(connect(RemoteConfig(fake_reapi.url, timeout=0.3)), warn=warnings.append)
    start = time.monotonic()
    for i in range(10):
        assert tier.lookup(Digest.of(b"%d" % i), store) is None
    assert time.monotonic() - start < 1.5
    assert fake_reapi.calls == ["GetActionResult"]
    assert len(warnings) == 1 and "no answer in time" in warnings[0]
    tier.close()
