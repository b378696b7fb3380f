"""The remote-execution messages parse as BuildGrid's generated classes, byte for byte."""

from __future__ import annotations

import json
import subprocess

from tests.remote.conftest import BUILDGRID_VENV, _need_buildgrid
from ukbuild._reapi import Digest
from ukbuild.remote import _exwire
from ukbuild.remote._wire import Status

CONFORMANCE = r"""
import json, sys
from buildgrid._protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re
from buildgrid._protos.google.devtools.remoteworkers.v1test2 import bots_pb2 as bots
from google.protobuf.json_format import MessageToDict
kinds = {"Command": re, "Action": re, "ExecuteRequest": re, "WaitExecutionRequest": re,
         "CreateBotSessionRequest": bots, "UpdateBotSessionRequest": bots}
out = {}
for name, data in json.load(sys.stdin).items():
    message = getattr(kinds[name], name).FromString(bytes.fromhex(data))
    out[name] = {"dict": MessageToDict(message), "same": message.SerializeToString() == bytes.fromhex(data)}
print(json.dumps(out))
"""


def test_execution_messages_parse_as_buildgrids_generated_messages() -> None:
    _need_buildgrid()
    cmd, root = Digest.of(b"command"), Digest.of(b"root")
    platform = [("ukbuild-toolchain", "host/ab"), ("OSFamily", "linux")]
    command = _exwire.Command(("sh", "", "-c"), [("TZ", "UTC"), ("LC_ALL", "C"), ("EMPTY", "")],
                              ["b", "a", "b"], "src", platform)
    action = _exwire.Action(cmd, root, platform, timeout=30, salt=b"s")
    lease = _exwire.Lease("/job", _exwire.LEASE_COMPLETED, status=Status(14, "gone"),
                          result=_exwire.Any(_exwire.RESULT_TYPE, b""))
    session = _exwire.BotSession("bot-1", (("OSFamily", "linux"),), 4, name="/s", leases=(lease,), version="3")
    messages = {
        "Command": command.encode(),
        "Action": action.encode(),
        "ExecuteRequest": _exwire.execute_request("main", root),
        "WaitExecutionRequest": _exwire.wait_execution_request("op"),
        "CreateBotSessionRequest": _exwire.create_bot_session_request("main", session),
        "UpdateBotSessionRequest": _exwire.update_bot_session_request(session),
    }
    run = subprocess.run(
        [str(BUILDGRID_VENV / "bin" / "python"), "-c", CONFORMANCE],
        input=json.dumps({k: v.hex() for k, v in messages.items()}),
        capture_output=True, text=True, check=True,
    )
    parsed = json.loads(run.stdout)
    assert all(entry["same"] for entry in parsed.values()), parsed
    d = {name: entry["dict"] for name, entry in parsed.items()}
    assert d["Command"]["arguments"] == ["sh", "", "-c"]
    assert d["Command"]["environmentVariables"] == [
        {"name": "EMPTY"}, {"name": "LC_ALL", "value": "C"}, {"name": "TZ", "value": "UTC"}]
    assert d["Command"]["outputPaths"] == ["a", "b"] and d["Command"]["workingDirectory"] == "src"
    assert d["Action"]["platform"]["properties"] == [
        {"name": "OSFamily", "value": "linux"}, {"name": "ukbuild-toolchain", "value": "host/ab"}]
    assert d["Action"]["timeout"] == "30s" and d["Action"]["salt"] == "cw=="
    assert d["ExecuteRequest"]["actionDigest"]["hash"] == root.hash
    bot = d["UpdateBotSessionRequest"]["botSession"]
    assert bot["worker"]["devices"][0]["properties"] == [{"key": "OSFamily", "value": "linux"}]
    assert bot["worker"]["configs"] == [{"key": "capacity", "value": "4"}]
    assert bot["leases"][0]["state"] == "COMPLETED" and bot["leases"][0]["status"]["code"] == 14
    assert _exwire.Command.decode(messages["Command"]) == command
    assert _exwire.Action.decode(messages["Action"]) == action
