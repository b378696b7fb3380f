"""A worker for BuildGrid's bot protocol (Remote Workers API) that runs ukbuild actions.

Run one per machine that has the toolchains your builds use::

    python -m ukbuild.remote.worker --url grpc://buildgrid:50051 \\
        --project ~/src/my-unikernel          # serve the toolchains it declares
        --tools cc,ar,sh,tar,gzip             # and/or a host toolchain of these tools
        --capacity 4 --cache-dir /var/cache/ukbuild-worker

It needs ukbuild with the ``remote`` extra, the toolchains (detected at start
exactly as a build detects them: Rumprun or MirageOS through their backend
plugins, host tools on the standard program directories), and a BuildGrid
whose scheduler matches the keys ``OSFamily`` and ``ukbuild-toolchain``::

    property-set: !dynamic-property-set
      match-property-keys: [OSFamily, ukbuild-toolchain]

The worker advertises ``OSFamily`` and one ``ukbuild-toolchain`` value per
toolchain (``host/<identity>``, ``rumprun/<identity>``…, plus ``none`` for
actions without a toolchain), so BuildGrid only gives it actions whose
toolchain it has, byte for byte.  For each lease it fetches the ``Action``
and ``Command``, materialises the input root from the CAS (blobs are kept in
its own ukbuild store, so repeated inputs are fetched once), runs the command
the way ukbuild's executor does (fresh scratch dir, ``${UKBUILD_WORK}``
expanded, only the Command's environment plus ``PATH`` from the toolchain,
compiler wrappers that map the scratch path away, ``HOME``/``TMPDIR`` inside
the scratch dir, stdout and stderr in one log), uploads the outputs and the
log, and completes the lease with the ``ActionResult``.  A non-zero exit is
a result like any other; trouble with the CAS is reported as UNAVAILABLE, so
BuildGrid retries the job elsewhere.  If the worker dies, BuildGrid requeues
its jobs when the bot session expires (``bot-session-keepalive-timeout``), or
at once when a worker restarts with the same ``--bot-id``.
"""

from __future__ import annotations

import argparse
import os
import posixpath
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import attrs

from .._executor import WORK_VAR, _kill_group, _remove_tree
from .._journal import FileDigests
from .._reapi import (
    ActionResult,
    Digest,
    Directory,
    FileNode,
    OutputDirectory,
    OutputFile,
    OutputSymlink,
    decode_digest,
)
from .._store import Store
from .._trees import scan, special_file, tree_message
from ..errors import BuildError, UkbuildError
from ..model import LOGICAL_WORKDIR, Toolchain
from ..toolchains import detect_host_toolchain, needs_wrappers, write_wrappers
from . import _exwire
from ._base import RemoteError
from ._wire import Status
from .config import RemoteConfig
from .execute import NO_TOOLCHAIN, TOOLCHAIN_KEY, os_family, toolchain_property
from .policy import _readable
from .reapi import GrpcCache

BOTS = "/google.devtools.remoteworkers.v1test2.Bots/"
# google.rpc codes a lease can end with.
OK, INVALID_ARGUMENT, DEADLINE_EXCEEDED, FAILED_PRECONDITION, INTERNAL, UNAVAILABLE = 0, 3, 4, 9, 13, 14
#: How often a busy bot reports its leases (BuildGrid's keepalive must be longer).
HEARTBEAT = 1.0


class JobError(Exception):
    """The lease cannot be run as asked; ``code`` is the google.rpc code reported for it."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@attrs.frozen
class Job:
    lease_id: str
    cancel: threading.Event
    future: Future[_exwire.Lease]


class Worker:
    """One bot: a session with the server and up to ``capacity`` actions running at once."""

    def __init__(
        self,
        cache: GrpcCache,
        store: Store,
        toolchains: Iterable[Toolchain],
        *,
        scratch_root: Path,
        bot_id: str,
        capacity: int = 1,
        properties: Iterable[tuple[str, str]] = (),
        poll_timeout: float = 30.0,
        log: Callable[[str], None] = print,
    ) -> None:
        self.cache = cache
        self.store = store
        self.toolchains = {toolchain_property(t): t for t in toolchains}
        self.scratch_root = scratch_root
        self.bot_id = bot_id
        self.capacity = capacity
        self.poll_timeout = poll_timeout
        self.log = log
        offered = {("OSFamily", os_family()), (TOOLCHAIN_KEY, NO_TOOLCHAIN), *properties}
        offered.update((TOOLCHAIN_KEY, p) for p in self.toolchains)
        self.properties = tuple(sorted(offered))
        self._wrappers: dict[str, Path] = {}
        self._wake = threading.Event()

    # --- the session --------------------------------------------------------------

    def serve(self, stop: threading.Event) -> None:
        """Take and run leases until ``stop`` is set; a lost session is opened again."""
        self.scratch_root.mkdir(parents=True, exist_ok=True)
        for name, toolchain in self.toolchains.items():
            if needs_wrappers(toolchain):
                directory = Path(tempfile.mkdtemp(prefix="tools-", dir=self.scratch_root))
                write_wrappers(toolchain, directory, LOGICAL_WORKDIR)
                self._wrappers[name] = directory
        jobs: dict[str, Job] = {}
        with ThreadPoolExecutor(self.capacity, thread_name_prefix="ukbuild-worker-job") as pool:
            try:
                while not stop.is_set():
                    try:
                        self._session(stop, jobs, pool)
                    except RemoteError as exc:
                        if stop.is_set():
                            break
                        self.log(f"session lost: {exc.message}; starting a new one")
                        for job in jobs.values():
                            job.cancel.set()
                        jobs.clear()
                        stop.wait(1.0)
            finally:
                for job in jobs.values():
                    job.cancel.set()
                for directory in self._wrappers.values():
                    _remove_tree(directory)

    def _session(self, stop: threading.Event, jobs: dict[str, Job], pool: ThreadPoolExecutor) -> None:
        session = _exwire.BotSession(self.bot_id, self.properties, self.capacity)
        request = _exwire.create_bot_session_request(self.cache.instance, session)
        session = session.answered(self._call("CreateBotSession", request, stop))
        self.log(f"bot {self.bot_id}: session {session.name} offers {', '.join(f'{k}={v}' for k, v in self.properties)}")
        try:
            while not stop.is_set():
                self._accept(session, jobs, pool)
                if jobs:
                    self._wake.wait(HEARTBEAT)
                self._wake.clear()
                reported = []
                for job in list(jobs.values()):
                    if job.future.done():
                        reported.append(job.future.result())
                    else:
                        reported.append(_exwire.Lease(job.lease_id, _exwire.LEASE_ACTIVE))
                session = attrs.evolve(session, leases=tuple(reported))
                answer = self._call("UpdateBotSession", _exwire.update_bot_session_request(session), stop)
                for lease in reported:
                    if lease.state == _exwire.LEASE_COMPLETED:
                        del jobs[lease.id]
                session = session.answered(answer)
                kept = {lease.id for lease in session.leases}
                for lease_id in [i for i in jobs if i not in kept]:
                    self.log(f"lease {lease_id}: cancelled by the server")
                    jobs.pop(lease_id).cancel.set()
        finally:
            if stop.is_set():
                self._goodbye(session, jobs)

    def _goodbye(self, session: _exwire.BotSession, jobs: dict[str, Job]) -> None:
        """Stop taking work; unfinished leases go back (UNAVAILABLE: the server retries them at once)."""
        unfinished = Status(UNAVAILABLE, "the worker is stopping")
        for job in jobs.values():
            job.cancel.set()
        held = sorted({*jobs, *(lease.id for lease in session.leases)})  # incl. leases just given
        leases = [_exwire.Lease(i, _exwire.LEASE_COMPLETED, status=unfinished) for i in held]
        jobs.clear()
        final = attrs.evolve(session, leases=tuple(leases), status=_exwire.BOT_TERMINATING)
        try:
            self.cache.call(BOTS + "UpdateBotSession", _exwire.update_bot_session_request(final), timeout=5)
        except RemoteError as exc:
            self.log(f"could not say goodbye: {exc.message}")

    def _accept(self, session: _exwire.BotSession, jobs: dict[str, Job], pool: ThreadPoolExecutor) -> None:
        for lease in session.leases:
            if lease.id in jobs or lease.state not in (_exwire.LEASE_PENDING, _exwire.LEASE_ACTIVE):
                continue
            cancel = threading.Event()
            future = pool.submit(self._run_lease, lease, cancel)
            future.add_done_callback(lambda _f: self._wake.set())
            jobs[lease.id] = Job(lease.id, cancel, future)

    def _call(self, rpc: str, request: bytes, stop: threading.Event) -> bytes:
        data = self.cache.call_until(BOTS + rpc, request, stop, timeout=self.poll_timeout)
        if data is None:
            raise RemoteError(f"{self.cache.name}: {rpc}: no such bot session or instance")
        return data

    # --- one lease -------------------------------------------------------------------

    def _run_lease(self, lease: _exwire.Lease, cancel: threading.Event) -> _exwire.Lease:
        """Run the lease's action; the lease to report, COMPLETED with a status and result."""
        start = time.monotonic()
        try:
            result = self.execute(lease.payload, cancel)
        except JobError as exc:
            self.log(f"lease {lease.id}: {exc.message}")
            return _exwire.Lease(lease.id, _exwire.LEASE_COMPLETED, status=Status(exc.code, exc.message))
        except (RemoteError, OSError, UkbuildError, ValueError) as exc:
            message = getattr(exc, "message", None) or str(exc)
            self.log(f"lease {lease.id}: could not run it: {message}")
            return _exwire.Lease(lease.id, _exwire.LEASE_COMPLETED, status=Status(UNAVAILABLE, message))
        self.log(f"lease {lease.id}: exit status {result.exit_code} after {time.monotonic() - start:.2f} s")
        packed = _exwire.Any(_exwire.RESULT_TYPE, result.encode())
        return _exwire.Lease(lease.id, _exwire.LEASE_COMPLETED, status=Status(OK), result=packed)

    def execute(self, payload: _exwire.Any | None, cancel: threading.Event) -> ActionResult:
        """Run one REAPI action from its lease payload; outputs and log uploaded to the CAS."""
        action = self._action(payload)
        command = _exwire.Command.decode(self._blob(action.command))
        platform = dict(action.platform or command.platform)
        wanted = platform.get(TOOLCHAIN_KEY, NO_TOOLCHAIN)
        toolchain = self.toolchains.get(wanted)
        if wanted != NO_TOOLCHAIN and toolchain is None:
            raise JobError(FAILED_PRECONDITION, f"this worker has no toolchain {wanted}")
        if not command.arguments:
            raise JobError(FAILED_PRECONDITION, "the Command has no arguments")
        scratch = Path(tempfile.mkdtemp(prefix="job-", dir=self.scratch_root))
        try:
            work = scratch / "work"
            self._materialize(action.input_root, work)
            cwd = _inside(work, command.working_directory or ".")
            cwd.mkdir(parents=True, exist_ok=True)
            outputs = {path: _inside(cwd, path) for path in command.output_paths}
            for target in outputs.values():
                target.parent.mkdir(parents=True, exist_ok=True)
            self.log(f"running {command.arguments[0]} (toolchain {wanted}) in {work}")
            log = scratch / "log"
            exit_code = self._run(command, toolchain, wanted, scratch, work, cwd, log, action.timeout, cancel)
            return self._capture(outputs, log, exit_code)
        finally:
            _remove_tree(scratch)

    def _action(self, payload: _exwire.Any | None) -> _exwire.Action:
        if payload is not None and payload.type_url == _exwire.ACTION_TYPE:
            return _exwire.Action.decode(payload.value)
        if payload is not None and payload.type_url == _exwire.DIGEST_TYPE:
            return _exwire.Action.decode(self._blob(decode_digest(payload.value)))
        raise JobError(FAILED_PRECONDITION, f"unsupported lease payload {payload.type_url if payload else None!r}")

    def _blob(self, digest: Digest) -> bytes:
        self._fetch([digest])
        data = self.store.read_bytes(digest)
        if data is None:
            raise JobError(FAILED_PRECONDITION, f"blob {digest} vanished from the worker's store")
        return data

    def _fetch(self, digests: Iterable[Digest]) -> None:
        needed = [d for d in set(digests) if not self.store.has(d)]
        if needed and (missing := self.cache.download_blobs(needed, self.store)):
            listed = ", ".join(str(d) for d in sorted(missing)[:3])
            raise JobError(FAILED_PRECONDITION, f"missing from the CAS: {listed}")

    def _materialize(self, root: Digest, dest: Path) -> None:
        """Write the input root below ``dest``; symlinks last, so no write goes through one."""
        level: list[tuple[Digest, Path]] = [(root, dest)]
        links: list[tuple[str, Path]] = []
        while level:
            self._fetch(d for d, _ in level)
            files: list[tuple[FileNode, Path]] = []
            below: list[tuple[Digest, Path]] = []
            for digest, path in level:
                directory = Directory.decode(self._blob(digest))
                names = [n.name for n in directory.files] + [n.name for n in directory.directories]
                names += [n.name for n in directory.symlinks]
                if len(set(names)) != len(names) or any(not n or n in (".", "..") or "/" in n for n in names):
                    raise JobError(FAILED_PRECONDITION, f"input directory {digest} has invalid or repeated names")
                path.mkdir(parents=True, exist_ok=True)
                files += [(f, path / f.name) for f in directory.files]
                below += [(d.digest, path / d.name) for d in directory.directories]
                links += [(s.target, path / s.name) for s in directory.symlinks]
            self._fetch(f.digest for f, _ in files)
            for node, path in files:
                if not self.store.export(node.digest, path, executable=node.executable):
                    raise JobError(FAILED_PRECONDITION, f"input {node.digest} is corrupt in the worker's store")
            level = below
        for target, path in links:
            os.symlink(target, path)

    def _run(
        self, command: _exwire.Command, toolchain: Toolchain | None, wanted: str,
        scratch: Path, work: Path, cwd: Path, log: Path, timeout: int, cancel: threading.Event,
    ) -> int:
        root = str(work)
        env = {k: v.replace(WORK_VAR, root) for k, v in command.env}
        if "PATH" not in env:
            path = [str(self._wrappers[wanted])] if wanted in self._wrappers else []
            env["PATH"] = os.pathsep.join(path + list(toolchain.search_path if toolchain else ()))
        for name in ("home", "tmp"):
            (scratch / name).mkdir()
        env.update({"HOME": str(scratch / "home"), "TMPDIR": str(scratch / "tmp"), "UKBUILD_WORK": root})
        argv = [a.replace(WORK_VAR, root) for a in command.arguments]
        with open(log, "wb") as out:
            try:
                proc = subprocess.Popen(
                    argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out,
                    stderr=subprocess.STDOUT, start_new_session=True,
                )
            except OSError as exc:
                out.write(f"ukbuild-worker: cannot run '{argv[0]}': {exc.strerror} (PATH={env['PATH']})\n".encode())
                return 127
            deadline = time.monotonic() + timeout if timeout else None
            while True:
                try:
                    return proc.wait(timeout=0.05)
                except subprocess.TimeoutExpired:
                    if cancel.is_set():
                        _kill_group(proc)
                        raise JobError(UNAVAILABLE, "cancelled") from None
                    if deadline is not None and time.monotonic() > deadline:
                        _kill_group(proc)
                        raise JobError(DEADLINE_EXCEEDED, f"timed out after {timeout} s") from None

    def _capture(self, outputs: dict[str, Path], log: Path, exit_code: int) -> ActionResult:
        """Store what the command produced, upload it, and describe it as an ActionResult."""
        files, dirs, links = [], [], []
        blobs: set[Digest] = set()
        for rel, path in sorted(outputs.items()):
            try:
                st = os.lstat(path)  # (never opened before its kind is known: a named pipe would block)
            except FileNotFoundError:
                continue  # the client reports it as not produced
            if stat.S_ISLNK(st.st_mode):
                links.append(OutputSymlink(rel, os.readlink(path)))
            elif stat.S_ISDIR(st.st_mode):
                try:
                    entries = scan(path, lambda p, _st: self.store.put_file(Path(p)))
                except BuildError as exc:  # a special file inside: named as the action sees it
                    raise JobError(INVALID_ARGUMENT, "output " + exc.message.replace(f"{path}/", f"{rel}/", 1)) from None
                root, tree, tree_digest = tree_message(entries)
                self.store.put_bytes(tree.encode())
                blobs.add(tree_digest)
                blobs.update(f.digest for d in (tree.root, *tree.children) for f in d.files)
                dirs.append(OutputDirectory(rel, tree_digest, root))
            elif stat.S_ISREG(st.st_mode):
                digest = self.store.put_file(path)
                blobs.add(digest)
                files.append(OutputFile(rel, digest, bool(st.st_mode & 0o111)))
            else:
                raise JobError(INVALID_ARGUMENT, special_file(f"output {rel}", st.st_mode).message)
        log_digest = self.store.put_file(log)
        blobs.add(log_digest)
        missing = self.cache.find_missing(blobs)
        with _readable(self.store, missing) as upload:
            if upload is None:
                raise RemoteError("an output vanished from the worker's store before upload")
            self.cache.upload_blobs(upload)
        return ActionResult(tuple(files), tuple(dirs), tuple(links), exit_code, log_digest, None)


def _inside(root: Path, rel: str) -> Path:
    """``root/rel`` normalised; a path that leaves ``root`` is refused."""
    normal = posixpath.normpath(rel)
    if posixpath.isabs(normal) or normal == ".." or normal.startswith("../"):
        raise JobError(FAILED_PRECONDITION, f"path {rel!r} leaves the input root")
    return root / normal if normal != "." else root


# --- command line ------------------------------------------------------------------------


def detect_toolchains(projects: Sequence[str], tool_sets: Sequence[str]) -> list[Toolchain]:
    """The toolchains the given projects declare, and host toolchains of the given tools."""
    from .._project import load_project
    from ..plugins import DetectContext

    digests = FileDigests({})
    versions: dict[str, tuple[tuple[int, int], str]] = {}
    found = [detect_host_toolchain(t.split(","), file_digest=digests, versions=versions) for t in tool_sets]
    loaded = None
    for path in projects:
        project = load_project(path)
        for name, spec in sorted(project.toolchains.items()):
            if spec.backend is None:
                found.append(detect_host_toolchain(spec.tools, file_digest=digests, versions=versions, name=name,
                                                   origin=spec.origin, launchers=spec.launchers))
                continue
            if loaded is None:
                from ..plugins._manager import backends, plugin_manager

                loaded = backends(plugin_manager())
            backend = loaded.get(spec.backend)
            if backend is None:
                raise UkbuildError(f"{spec.origin}: backend '{spec.backend}' is not installed on this worker")
            detection = backend.detect(spec.options, DetectContext(dict(os.environ), digests, versions))
            if detection.toolchain is None:
                raise UkbuildError(f"{spec.origin}: toolchain.{name}: not found here: {detection.reason}")
            found.append(attrs.evolve(detection.toolchain, name=name, backend=backend.NAME))
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ukbuild-worker", description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="the BuildGrid server, grpc://HOST:PORT")
    parser.add_argument("--instance", default="", help="REAPI instance name")
    parser.add_argument("--project", action="append", default=[], help="serve the toolchains this project declares")
    parser.add_argument("--tools", action="append", default=[], help="serve a host toolchain of these tools: cc,ar,sh")
    parser.add_argument("--capacity", type=int, default=1, help="actions run at once")
    parser.add_argument("--bot-id", default=f"{socket.gethostname()}-{os.getpid()}",
                        help="stable id: a restarted worker with the same id takes back its jobs at once")
    parser.add_argument("--property", action="append", default=[], help="extra platform property KEY=VALUE")
    parser.add_argument("--cache-dir", type=Path, default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
                        / "ukbuild-worker", help="the worker's blob store")
    parser.add_argument("--scratch-dir", type=Path, default=Path(tempfile.gettempdir()) / f"ukbuild-worker-{os.getuid()}")
    parser.add_argument("--poll-timeout", type=float, default=30.0, help="seconds one long poll may take")
    args = parser.parse_args(argv)

    def log(message: str) -> None:
        print(f"ukbuild-worker: {message}", file=sys.stderr, flush=True)

    try:
        toolchains = detect_toolchains(args.project, args.tools)
        extra = [tuple(p.split("=", 1)) for p in args.property]
        if any(len(p) != 2 for p in extra):
            raise UkbuildError("--property takes KEY=VALUE")
        config = RemoteConfig.from_mapping({"url": args.url, "instance": args.instance, "timeout": args.poll_timeout})
    except UkbuildError as exc:
        log(f"error: {exc.message}")
        return 2
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with Store(args.cache_dir, warn=log) as store:
        cache = GrpcCache(config)
        worker = Worker(cache, store, toolchains, scratch_root=args.scratch_dir, bot_id=args.bot_id,
                        capacity=args.capacity, properties=extra,  # type: ignore[arg-type]
                        poll_timeout=args.poll_timeout, log=log)
        try:
            worker.serve(stop)
        finally:
            cache.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
