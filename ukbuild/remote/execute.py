"""Remote execution: run an action on a REAPI execution service instead of locally.

:class:`RemoteExecutor` has the local :class:`~ukbuild._executor.Executor`'s
shape (``run(staging, cancel) -> ActionResult``, ``log_path``, ``close``)::

    executor = RemoteExecutor(local_executor, RemoteConfig("grpc://bgd:50051"))
    result = executor.run(staging, cancel)   # outputs now in the local store

Per action it stages the inputs exactly as the local executor does (into a
scratch dir), hashes them into a REAPI Merkle tree, uploads what the server
lacks, sends a ``Command`` and ``Action`` and waits on the ``Execute``
operation (``WaitExecution`` when the stream breaks).  Outputs are downloaded
into the local store, verified, and described in ukbuild's own terms, so the
result is stored under ukbuild's key like a local one; the REAPI action
digest is only the server's business.  A non-zero exit is a ``BuildError``
with the log's tail, as locally.

The platform names the toolchain by identity (``ukbuild-toolchain``, see
:func:`toolchain_property`), so only a worker holding that exact toolchain
(:mod:`ukbuild.remote.worker`) is given the action.  Commands keep
``${UKBUILD_WORK}`` unexpanded and carry no ``PATH``: the worker supplies
both, from its own scratch dir and toolchain.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import grpc

from .._executor import Executor, Staging, _remove_tree, _tail, action_env, ended, missing_output
from .._reapi import ActionResult, Digest, OutputDirectory, OutputFile, OutputSymlink
from .._store import hash_file
from .._trees import flatten_tree, merkle, scan, tree_message
from ..errors import BuildError, Cancelled
from ..keys import canonical_json
from ..model import Action as UkAction
from ..model import OutputInput, Toolchain
from . import _exwire
from ._base import Blob, RemoteError
from ._wire import Status
from .config import RemoteConfig
from .reapi import GrpcCache

EXECUTION = "/build.bazel.remote.execution.v2.Execution/"
CANCEL_OPERATION = "/google.longrunning.Operations/CancelOperation"
TOOLCHAIN_KEY = "ukbuild-toolchain"
NO_TOOLCHAIN = "none"
#: gRPC codes of google.rpc.Status.
OK, CANCELLED, DEADLINE_EXCEEDED, FAILED_PRECONDITION = 0, 1, 4, 9
#: Stream failures after which the operation is awaited again (WaitExecution).
REWAIT = frozenset({"UNAVAILABLE", "INTERNAL", "UNKNOWN", "ABORTED", "DEADLINE_EXCEEDED"})
MAX_REWAITS = 5


def os_family() -> str:
    """REAPI's ``OSFamily`` of this machine (``linux``, ``macos``, …)."""
    return {"darwin": "macos", "win32": "windows"}.get(sys.platform, sys.platform.rstrip("0123456789"))


def toolchain_property(toolchain: Toolchain | None) -> str:
    """``<backend or host>/<sha256 of the toolchain's identity>``, or ``none``.

    The identity is the toolchain's key document without its project-local
    name: tool versions and digests, prefix, env, identity files.  Two
    machines agree on it exactly when their toolchains are interchangeable.
    """
    if toolchain is None:
        return NO_TOOLCHAIN
    identity = {k: v for k, v in toolchain.to_key().items() if k != "name"}
    digest = hashlib.sha256(canonical_json(identity)).hexdigest()
    return f"{toolchain.backend or 'host'}/{digest}"


def platform_properties(toolchain: Toolchain | None, extra: Iterable[tuple[str, str]] = ()) -> tuple[tuple[str, str], ...]:
    """What a worker must offer to run an action with ``toolchain``."""
    return tuple(sorted({("OSFamily", os_family()), (TOOLCHAIN_KEY, toolchain_property(toolchain)), *extra}))


def remote_paths(action: UkAction) -> dict[str, str]:
    """Declared output → REAPI output path (relative to the working directory)."""
    base = action.workdir or "."
    return {out: posixpath.relpath(out.rstrip("/"), base) for out in action.outputs}


class RemoteExecutor:
    """Runs actions on a REAPI execution service; stages through ``local`` (and logs there)."""

    def __init__(
        self,
        local: Executor,
        config: RemoteConfig,
        *,
        properties: Iterable[tuple[str, str]] = (),
        timeout: int = 0,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.local = local
        self.store = local.store
        self.cache = GrpcCache(config)
        self.properties = tuple(properties)
        self.timeout = timeout
        self._warn = warn or (lambda _msg: None)

    def log_path(self, action: UkAction) -> Path:
        return self.local.log_path(action)

    def close(self) -> None:
        self.local.close()
        self.cache.close()

    def run(self, staging: Staging, cancel: threading.Event) -> ActionResult:
        action = staging.action
        if action.rootfs is not None:  # workers offer no pinned root file systems: it runs here
            return self.local.run(staging, cancel)
        self.local.refuse_offline(action)
        self.local.scratch_root.mkdir(parents=True, exist_ok=True)
        self.local.log_dir.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix="r-", dir=self.local.scratch_root))
        try:
            work = scratch / "work"
            work.mkdir()
            action_digest, blobs = self._prepare(staging, work)
            response = self._execute(action, action_digest, blobs, cancel)
            log = self.log_path(action)
            result = self._collect(action, response, log)
            if action.checks:
                checked = scratch / "check"
                checked.mkdir()
                self.local._stage_outputs(OutputInput(action.name), result, checked, action)
                self.local._check(action, checked, log)
            return result
        finally:
            if not self.local.keep_scratch:
                _remove_tree(scratch)

    # --- preparing -------------------------------------------------------------

    def _prepare(self, staging: Staging, work: Path) -> tuple[Digest, dict[Digest, Blob]]:
        """Stage and hash the input root; the Action's digest and every blob it needs."""
        action = staging.action
        self.local._stage(staging, work)
        (work / action.workdir).mkdir(parents=True, exist_ok=True)
        for output in action.outputs:
            (work / output.rstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        blobs: dict[Digest, Blob] = {}

        def file_digest(path: str, _st: os.stat_result) -> Digest:
            digest = hash_file(Path(path))
            blobs.setdefault(digest, Blob(digest, path=Path(path)))
            return digest

        root, directories = merkle(scan(work, file_digest))
        blobs.update((d, Blob(d, data=data)) for d, data in directories.items())
        platform = platform_properties(staging.toolchain, self.properties)
        env = {**dict(staging.toolchain.env), **action_env(action)} if staging.toolchain else action_env(action)
        command = _exwire.Command(
            arguments=action.argv,
            env=env.items(),
            output_paths=remote_paths(action).values(),
            working_directory=action.workdir,
            platform=platform,
        ).encode()
        command_digest = Digest.of(command)
        encoded = _exwire.Action(command_digest, root, platform, self.timeout, salt=action.salt.encode()).encode()
        action_digest = Digest.of(encoded)
        blobs[command_digest] = Blob(command_digest, data=command)
        blobs[action_digest] = Blob(action_digest, data=encoded)
        return action_digest, blobs

    def _upload(self, blobs: Mapping[Digest, Blob]) -> None:
        missing = self.cache.find_missing(list(blobs))
        self.cache.upload_blobs([blobs[d] for d in missing])

    # --- executing ---------------------------------------------------------------

    def _execute(
        self, action: UkAction, digest: Digest, blobs: Mapping[Digest, Blob], cancel: threading.Event
    ) -> _exwire.ExecuteResponse:
        """Upload, execute, wait; a server that lost inputs meanwhile gets them once more."""
        try:
            for attempt in range(2):
                self._upload(blobs)
                response = self._wait(action, digest, cancel)
                if response.status.code != FAILED_PRECONDITION or attempt:
                    return response
                self._warn(f"{action.name}: {self.cache.name} lacked inputs; uploading again")
        except RemoteError as exc:
            raise BuildError(
                f"{action.name}: remote execution failed: {exc.message}",
                hint="check that the execution service is up and has workers",
                reason="remote-unavailable",
                temporary=True,
            ) from None
        raise AssertionError("unreachable")

    def _wait(self, action: UkAction, digest: Digest, cancel: threading.Event) -> _exwire.ExecuteResponse:
        """Follow the Execute operation to its end, re-attaching when the stream breaks."""
        request = _exwire.execute_request(self.cache.instance, digest)
        method, name = EXECUTION + "Execute", ""
        for _ in range(MAX_REWAITS + 1):
            call = self.cache.open_stream(method, request)
            try:
                for data in _watched(call, cancel):
                    operation = _exwire.Operation.decode(data)
                    name = operation.name or name
                    if operation.done:
                        return _finished(operation)
            except grpc.RpcError as exc:
                if cancel.is_set():
                    self._cancel(name)
                    raise Cancelled(f"{action.name}: cancelled") from None
                error = self.cache.rpc_error(method, exc)
                code = exc.code()
                if code is None or code.name not in REWAIT:
                    raise error from None
                self._warn(f"{action.name}: {error.message}; waiting on the operation again")
                time.sleep(0.2)
            if name:  # the stream ended or broke before the end: wait on the same operation
                method, request = EXECUTION + "WaitExecution", _exwire.wait_execution_request(name)
        raise RemoteError(f"{self.cache.name}: the operation for {action.name} never finished")

    def _cancel(self, name: str) -> None:
        if not name:
            return
        try:
            self.cache.call(CANCEL_OPERATION, _exwire.name_request(name), timeout=2)
        except RemoteError:
            pass  # best effort: the server drops an abandoned operation's job anyway

    # --- collecting --------------------------------------------------------------

    def _collect(self, action: UkAction, response: _exwire.ExecuteResponse, log: Path) -> ActionResult:
        """The remote result in local terms, its blobs in the local store, its log at ``log``."""
        remote = response.result
        if response.status.code != OK or remote is None:
            status = response.status
            what = "timed out" if status.code == DEADLINE_EXCEEDED else f"failed: {status.message or status.code}"
            raise BuildError(
                f"{action.name}: remote execution {what}",
                detail=response.message or None,
                reason="remote-timeout" if status.code == DEADLINE_EXCEEDED else "remote-execution-failed",
                temporary=status.code != DEADLINE_EXCEEDED,
            )
        self._fetch([d for d in (remote.stdout_digest, remote.stderr_digest) if d is not None])
        with open(log, "wb") as out:
            for d in (remote.stdout_digest, remote.stderr_digest):
                if d is not None:
                    out.write(self.store.read_bytes(d) or b"")
        if remote.exit_code != 0:
            raise BuildError(
                f"{action.name}: command {ended(remote.exit_code)}",
                detail=_tail(log),
                hint=f"full log: {log}",
                reason="action-failed",
            )
        files, dirs, links = [], [], []
        by_path: dict[str, OutputFile | OutputDirectory | OutputSymlink] = {
            **{f.path: f for f in remote.output_files},
            **{d.path: d for d in remote.output_directories},
            **{s.path: s for s in remote.output_symlinks},
        }
        for output, path in remote_paths(action).items():
            found = by_path.get(path)
            rel = output.rstrip("/")
            if found is None:
                raise missing_output(action, output, log)
            if isinstance(found, OutputDirectory) != output.endswith("/"):
                kind = "is not a directory" if output.endswith("/") else "is a directory"
                raise BuildError(f"{action.name}: output '{output}' {kind}", reason="wrong-output-kind")
            if isinstance(found, OutputFile):
                files.append(OutputFile(rel, found.digest, found.executable))
            elif isinstance(found, OutputSymlink):
                links.append(OutputSymlink(rel, found.target))
            else:
                dirs.append(self._directory(action, rel, found))
        self._fetch([f.digest for f in files])
        return ActionResult(tuple(files), tuple(dirs), tuple(links), 0, self.store.put_file(log), None)

    def _directory(self, action: UkAction, rel: str, found: OutputDirectory) -> OutputDirectory:
        """Fetch an output tree and its files; re-encode it as the local executor would."""
        self._fetch([found.tree_digest])
        tree = self.store.read_tree(found.tree_digest)
        if tree is None:
            raise BuildError(f"{action.name}: the remote sent a malformed tree for '{rel}/'", reason="remote-corrupt")
        entries = flatten_tree(tree)
        root, canonical, tree_digest = tree_message(entries)
        if root != found.root_digest:
            raise BuildError(f"{action.name}: the remote tree for '{rel}/' does not match its root digest",
                             reason="remote-corrupt")
        self.store.put_bytes(canonical.encode())
        self._fetch([f.digest for d in (canonical.root, *canonical.children) for f in d.files])
        return OutputDirectory(rel, tree_digest, root)

    def _fetch(self, digests: list[Digest]) -> None:
        needed = [d for d in set(digests) if not self.store.has(d)]
        if not needed:
            return
        try:
            lost = self.cache.download_blobs(needed, self.store)
        except RemoteError as exc:
            raise BuildError(f"could not fetch remote outputs: {exc.message}", reason="remote-unavailable",
                             temporary=True) from None
        if lost:
            raise BuildError(
                f"{self.cache.name} lost {len(lost)} output blob(s) right after producing them",
                detail=", ".join(str(d) for d in sorted(lost)[:5]),
                reason="remote-missing-output",
                temporary=True,
            )


def _watched(call: Any, cancel: threading.Event) -> Any:
    """Iterate a streaming call, cancelling it from a helper thread once ``cancel`` is set."""
    finished = threading.Event()

    def watch() -> None:
        while not finished.wait(0.05):
            if cancel.is_set():
                call.cancel()
                return

    watcher = threading.Thread(target=watch, daemon=True, name="ukbuild-remote-cancel")
    watcher.start()
    try:
        yield from call
    finally:
        finished.set()


def _finished(operation: _exwire.Operation) -> _exwire.ExecuteResponse:
    if operation.error is not None and operation.error.code != OK:
        return _exwire.ExecuteResponse(None, False, operation.error)
    if operation.response is None:
        return _exwire.ExecuteResponse(None, False, Status(13, "the operation ended without a response"))
    return operation.response


__all__ = [
    "RemoteExecutor",
    "os_family",
    "platform_properties",
    "remote_paths",
    "toolchain_property",
]
