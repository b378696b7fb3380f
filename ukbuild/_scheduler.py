"""Walking the graph: compute each action's key, ask the store, run what is missing.

Keys are computed in dependency order on the calling thread (a dependency's
output digests are part of its dependants' keys); misses go to a pool of
``jobs`` worker threads, each running one action's process.  A failure is
never cached.  With ``keep_going`` independent actions continue after a
failure; otherwise nothing new starts and the running ones finish.
"""

from __future__ import annotations

import os
import posixpath
import stat as stat_mod
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from ._executor import Executor, LostOutput, Staging, action_env, output_entries
from ._journal import FileDigests, KeyHistory, listing_signature, stat_key
from ._noop import UNKNOWN
from ._reapi import ActionResult, Digest
from ._store import Store
from ._trees import DirEntry, LinkEntry, link_leaves, merkle, scan, walk
from .errors import BuildError, Cancelled, UkbuildError
from .keys import KeyValue, _encode, _reject_floats, key_document
from .model import (
    Action,
    ArchiveSource,
    ExternalInput,
    FileSource,
    LocalSource,
    OutputInput,
    PathInput,
    Project,
    SourceInput,
    Toolchain,
)
from .toolchains import HOST_COMPILERS

if TYPE_CHECKING:
    from .remote import RemoteTier

Emit = Callable[..., None]
MAX_RERUNS = 2


class _Settled:
    """Stands for an action in ``Scheduler.run(known=…)``: no dependencies to visit."""

    dependencies: tuple[str, ...] = ()


_SETTLED = _Settled()


@attrs.frozen
class Outcome:
    """How one action ended in this build."""

    name: str
    status: str  # "executed" | "cached" | "failed" | "skipped"
    key: Digest | None = None
    result: ActionResult | None = None
    seconds: float = 0.0
    error: UkbuildError | None = None


class Scheduler:
    def __init__(
        self,
        project: Project,
        store: Store,
        executor: Executor,
        toolchains: Mapping[str, Toolchain],
        digests: FileDigests,
        history: KeyHistory,
        emit: Emit,
        *,
        jobs: int,
        keep_going: bool,
        cancel: threading.Event,
        overrides: Mapping[str, str],
        use_cache: bool = True,
        remote: RemoteTier | None = None,
    ) -> None:
        self.project = project
        self.root = Path(project.root)
        self.store = store
        self.executor = executor
        self.toolchains = toolchains
        self.digests = digests
        self.history = history
        self.emit = emit
        self.jobs = max(1, jobs)
        self.keep_going = keep_going
        self.cancel = cancel
        self.overrides = overrides
        self.use_cache = use_cache
        self.remote = remote
        self.tracked: set[str] = set()
        #: The stat data of each tracked path as its key read it (:data:`_noop.UNKNOWN` when
        #: two reads in this build saw different data): what the no-op record keeps.
        self.stats: dict[str, tuple[int, int, int, int]] = {}
        #: The paths each action's key read (files, directories, the files in them):
        #: the incremental path reruns the actions that read a changed path.
        self.reads: dict[str, list[str]] = {}
        self._reading: list[str] = []
        self._toolchain_keys: dict[str, KeyValue] = {}
        self._platform_key = project.platform.to_key()
        #: Merkle roots of dependencies' outputs, by (id of the result, sub-path): results
        #: stay referenced for the whole build, so their ids are stable.
        self._trees: dict[tuple[int, str], tuple[ActionResult, Digest]] = {}
        #: Key documents not yet stored (stored on a miss, or when an action's key changes).
        self._pending: dict[str, bytes] = {}
        self._unkeyed_programs: set[tuple[str, str]] = set()

    # --- keys ---------------------------------------------------------------

    def key_document(self, action: Action, results: Mapping[str, ActionResult]) -> dict[str, KeyValue]:
        """Everything that can change the action's output, in canonical form."""
        inputs: dict[str, KeyValue] = {}
        self._reading = reading = []
        root = str(self.root)
        for item in action.inputs:
            if isinstance(item, PathInput):
                inputs[item.label] = self._path_value(os.path.normpath(os.path.join(root, item.path)))
            elif isinstance(item, OutputInput):
                inputs[item.label] = "tree:" + str(self._output_tree(item, results[item.action]))
            elif isinstance(item, SourceInput):
                value = self._source_value(item)
                _reject_floats(value)
                inputs[item.label] = value
            elif isinstance(item, ExternalInput):
                inputs[item.label] = self._path_value(os.path.normpath(item.path))
        self.reads[action.name] = reading
        self._check_program(action)
        toolchain = self._toolchain_key(action.toolchain) if action.toolchain else None
        config: dict[str, KeyValue] = dict(action.config)
        if action.checks:
            config["checks"] = [list(pair) for pair in action.checks]
        if action.network:
            config["network"] = "yes"
        if action.rootfs:
            config["rootfs"] = "tree:" + str(self._output_tree(action.rootfs, results[action.rootfs.action]))
        return key_document(
            step=action.step,
            step_version=action.step_version,
            config=config,
            inputs=inputs,
            command=list(action.argv),
            env=action_env(action),
            outputs=list(action.outputs),
            workdir=action.workdir,
            platform=self._platform_key,
            toolchain=toolchain,
            salt=action.salt,
        )

    def _check_program(self, action: Action) -> None:
        """Warn (once per build and compiler) when an action runs a host compiler its toolchain
        does not list: the compiler's version is not in the key, and without its path-mapping
        wrapper the outputs embed the scratch path, so no two builds agree."""
        toolchain = self.toolchains.get(action.toolchain) if action.toolchain else None
        program = action.argv[0] if action.argv else ""
        if (toolchain is None or toolchain.backend or program not in HOST_COMPILERS
                or toolchain.tool(program) is not None or (toolchain.name, program) in self._unkeyed_programs):
            return
        self._unkeyed_programs.add((toolchain.name, program))
        self.emit("warning", message=(
            f"{action.name}: runs the compiler '{program}', which toolchain '{toolchain.name}' does not list: its "
            "version is not in the key, and its outputs embed the scratch path; add it to the toolchain's tools"))

    def _toolchain_key(self, name: str) -> KeyValue:
        found = self._toolchain_keys.get(name)
        if found is None:
            toolchain = self.toolchains.get(name)
            found = toolchain.to_key() if toolchain else None
            _reject_floats(found)
            self._toolchain_keys[name] = found
        return found

    def _output_tree(self, item: OutputInput, result: ActionResult) -> Digest:
        """The Merkle root of a dependency's outputs (or of one output directory)."""
        memo = (id(result), item.path)
        hit = self._trees.get(memo)
        if hit is not None and hit[0] is result:  # (the result is kept, so its id is not reused)
            return hit[1]
        entries = output_entries(result, self.store)
        if entries is None:
            raise LostOutput(item.action)
        one = entries.get(item.path)
        if one is not None and not isinstance(one, DirEntry):  # one file: its content, under its own name
            entries = {posixpath.basename(item.path): one}
        elif item.path:
            prefix = item.path + "/"
            entries = {k[len(prefix) :]: v for k, v in entries.items() if k.startswith(prefix)}
        found = merkle(entries)[0]
        self._trees[memo] = (result, found)
        return found

    def _track(self, path: str, st: os.stat_result) -> None:
        """A path the key being computed reads: tracked for the records, listed among the
        action's reads, its stat data as read noted (:meth:`_saw`)."""
        self.tracked.add(path)
        self._reading.append(path)
        self._saw(path, st)

    def _saw(self, path: str, st: os.stat_result) -> None:
        """Note the stat data ``path`` had when read (before its content was hashed)."""
        key = stat_key(st)
        if self.stats.setdefault(path, key) != key:
            self.stats[path] = UNKNOWN  # changed between two reads: nothing vouches for it

    def _path_value(self, path: str) -> str:
        """An input file's digest or a directory's tree.  An input that is a symlink counts as
        what it points to (staged as a copy): both paths are tracked, so either changing is seen."""
        st = os.lstat(path)
        self._track(path, st)
        if stat_mod.S_ISLNK(st.st_mode):
            real = os.path.realpath(path)
            try:
                st = os.stat(real)
            except OSError as exc:
                raise BuildError(f"input {path}: a symbolic link to {os.readlink(path)}, which is missing",
                                 hint="restore what it points to, or remove the link", reason="missing-input") from exc
            self._track(real, st)
        if not (stat_mod.S_ISDIR(st.st_mode) or stat_mod.S_ISREG(st.st_mode)):
            raise BuildError(f"input {path}: not a regular file or directory (a named pipe, socket or device)",
                             hint="inputs are files and directories; create that one at run time instead",
                             reason="special-file")
        if stat_mod.S_ISDIR(st.st_mode):
            return "tree:" + str(self._tree(path))
        digest = self.digests(path, st)
        return str(digest) + ("+x" if st.st_mode & 0o111 else "")

    def _tree(self, path: str) -> Digest:
        listing = list(walk(Path(path)))
        found = [os.path.join(path, rel) for rel, _ in listing]
        self.tracked.update(found)
        self._reading.extend(found)
        for full, (_, st) in zip(found, listing, strict=True):
            self._saw(full, st)
        signature = listing_signature(listing)
        known = self.digests.tree(path, signature)
        if known is not None:  # nothing in it changed: no per-file lookups, no Merkle encoding
            seen = self.digests.seen
            for full, (_, st) in zip(found, listing, strict=True):
                if stat_mod.S_ISREG(st.st_mode):
                    seen[full] = stat_key(st)
            return known
        entries = scan(Path(path), self.digests, listing)
        for rel, entry in entries.items():
            if isinstance(entry, LinkEntry) and link_leaves(rel, entry.target):
                raise BuildError(
                    f"{os.path.join(path, rel)}: a symbolic link to {entry.target}, outside {path}; an action "
                    "would read whatever it points to, which is neither staged nor part of the key",
                    hint="copy the file in, make the link point inside the directory, or declare what it "
                    "points to as an input of its own",
                    reason="link-leaves-input",
                )
        root = merkle(entries)[0]
        self.digests.remember_tree(path, signature, root, max((st.st_mtime for _, st in listing), default=0.0))
        return root

    def _source_tree(self, path: str) -> str:
        """A source directory's tree (through a link too), its root tracked as well as what is
        in it: a file added to it changes only the root's stat data."""
        roots = [path] if not os.path.islink(path) else [path, os.path.realpath(path)]
        for root in roots:
            self._track(root, os.lstat(root))
        return "tree:" + str(self._tree(path))

    def _source_value(self, item: SourceInput) -> KeyValue:
        source = item.source
        root = str(self.root)
        patches = [self._path_value(os.path.normpath(os.path.join(root, p))) for p in getattr(source, "patches", ())]
        override = self.overrides.get(item.name)
        if override is not None:
            if os.path.isfile(override):  # an archive (a Debian orig tarball): its bytes, unpacked as pinned
                return {"override": self._path_value(os.path.normpath(override)),
                        "strip": getattr(source, "strip", 1), "patches": patches}
            return {"override": self._source_tree(os.path.normpath(override)), "patches": patches}
        if isinstance(source, ArchiveSource):
            return {"fixed": f"sha256:{source.sha256}", "strip": source.strip, "patches": patches}
        if isinstance(source, LocalSource):
            return {"tree": self._source_tree(os.path.normpath(os.path.join(root, source.path))), "patches": patches}
        if isinstance(source, FileSource) and source.sha256:
            return {"fixed": f"sha256:{source.sha256}"}
        assert isinstance(source, FileSource) and source.path is not None
        return {"file": self._path_value(os.path.normpath(os.path.join(root, source.path)))}

    def key_for(self, action: Action, results: Mapping[str, ActionResult]) -> Digest:
        """The action's key.  Its document is stored (for ``explain``) when the key is new
        for the action; otherwise only if the action turns out to run (see ``resolve``)."""
        data = _encode(self.key_document(action, results))
        key = Digest.of(data)
        if self.history.record(action.name, key):
            self.store.put_bytes(data)
        else:
            self._pending[action.name] = data
        return key

    # --- running --------------------------------------------------------------

    def run(
        self,
        targets: list[str],
        force: frozenset[str] = frozenset(),
        *,
        known: Mapping[str, tuple[Digest, ActionResult]] | None = None,
        exported: frozenset[str] | None = None,
    ) -> dict[str, Outcome]:
        """Resolve and run ``targets`` and what they need.

        ``known`` (the incremental path) gives actions whose key and result are
        already settled: they are not keyed again, and their own dependencies are
        not visited.  ``exported`` names the actions whose outputs will be written
        out (and so checked byte for byte then); default: ``targets``.
        """
        from ._graph import closure, dependants, order  # noqa: PLC0415

        actions: Mapping[str, Action] = self.project.actions
        if known:
            actions = {**actions, **dict.fromkeys(known, _SETTLED)}  # type: ignore[arg-type]
        needed = order(actions, closure(actions, targets))
        users = dependants(actions, needed)
        waiting = {n: set(actions[n].dependencies) for n in needed}
        ready = deque(n for n in needed if not waiting[n])
        to_run: deque[Staging] = deque()  # cache misses waiting for a worker
        results: dict[str, ActionResult] = {}
        outcomes: dict[str, Outcome] = {}
        keys: dict[str, Digest] = {}
        reruns: dict[str, int] = {}
        forced = set(force)
        running: dict[Future[tuple[ActionResult, float]], str] = {}
        #: key → the action queued or running with it; others with that key wait for its result.
        in_flight: dict[Digest, str] = {}
        twins: dict[Digest, list[str]] = {}
        failed = False
        target_set = set(targets if exported is None else exported)

        def finish(name: str, outcome: Outcome) -> None:
            outcomes[name] = outcome
            if outcome.result is not None:
                results[name] = outcome.result
                for user in users[name]:
                    waiting[user].discard(name)
                    if not waiting[user] and user not in outcomes:
                        ready.append(user)

        def fail(name: str, exc: UkbuildError) -> None:
            nonlocal failed
            failed = True
            key = keys.get(name)
            finish(name, Outcome(name, "failed", key, error=exc))
            log = str(self.executor.log_path(actions[name])) if key is not None else None
            self.emit("action-failed", action=name, key=str(key) if key else None, message=exc.message,
                      reason=exc.reason, log=log if log and os.path.exists(log) else None, detail=exc.detail,
                      hint=exc.hint, origin=str(actions[name].origin))
            stack = list(users[name])
            while stack:
                user = stack.pop()
                if user not in outcomes:
                    outcomes[user] = Outcome(user, "skipped")
                    self.emit("action-skipped", action=user, because=name)
                    stack.extend(users[user])

        def lost(name: str, producer: str) -> None:
            """A stored output of ``producer`` is gone: run it again, then ``name``."""
            reruns[producer] = reruns.get(producer, 0) + 1
            if reruns[producer] > MAX_RERUNS:
                raise BuildError(f"{producer}: its stored outputs keep disappearing", reason="store-unstable")
            if known and producer in known:
                raise LostOutput(producer)  # settled outside this run: the caller builds in full
            results.pop(producer, None)
            outcomes.pop(producer, None)
            keys.pop(producer, None)
            keys.pop(name, None)
            forced.add(producer)
            waiting[name].add(producer)
            ready.appendleft(producer)

        def resolve(name: str) -> None:
            """Compute the key; finish from the cache, or queue the action to run."""
            if known and name in known:
                key, settled = known[name]
                keys[name] = key
                finish(name, Outcome(name, "cached", key, settled))
                return
            action = actions[name]
            try:
                key = self.key_for(action, results)
            except LostOutput as exc:
                lost(name, exc.producer)
                return
            except UkbuildError as exc:
                fail(name, exc)
                return
            keys[name] = key
            document = self._pending.pop(name, None)
            if self.use_cache and name not in forced:
                hit = self.store.get_action_result(key, verify=name not in target_set)
                via = "local"
                if hit is None and self.remote is not None:
                    hit, via = self.remote.lookup(key, self.store), "remote"
                if hit is not None:
                    self.emit("action-cached", action=name, key=str(key), via=via)
                    finish(name, Outcome(name, "cached", key, hit))
                    release_twins(key, hit)
                    return
            if document is not None:  # it runs: keep its document for explain
                self.store.put_bytes(document)
            if self.use_cache and name not in forced:
                if key in in_flight:
                    twins.setdefault(key, []).append(name)
                    return
                in_flight[key] = name
            toolchain = self.toolchains.get(action.toolchain) if action.toolchain else None
            dependencies = {d: results[d] for d in action.dependencies}
            rootfs = self._output_tree(action.rootfs, results[action.rootfs.action]) if action.rootfs else None
            to_run.append(Staging(action, key, toolchain, dependencies, self.digests.seen, self.overrides, rootfs))

        def release_twins(key: Digest, result: ActionResult) -> None:
            for twin in twins.pop(key, []):
                self.emit("action-cached", action=twin, key=str(key), via="local")
                finish(twin, Outcome(twin, "cached", key, result))

        def collect(future: Future[tuple[ActionResult, float]]) -> None:
            name = running.pop(future)
            if in_flight.get(keys[name]) == name:
                del in_flight[keys[name]]
            try:
                result, seconds = future.result()
            except LostOutput as exc:
                lost(name, exc.producer)
                return
            except Cancelled:
                raise
            except UkbuildError as exc:
                fail(name, exc)
                for twin in twins.pop(keys[name], []):
                    fail(twin, exc)
                return
            if self.use_cache:
                self.store.put_action_result(keys[name], result)
                if self.remote is not None:
                    self.remote.publish(keys[name], result, self.store)
            finish(name, Outcome(name, "executed", keys[name], result, seconds))
            outputs = {f.path: str(f.digest) for f in result.output_files}
            outputs.update({d.path + "/": "tree:" + str(d.root_digest) for d in result.output_directories})
            self.emit("action-finished", action=name, key=str(keys[name]), seconds=round(seconds, 6), outputs=outputs)
            release_twins(keys[name], result)

        with ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="ukbuild-action") as pool:
            try:
                while True:
                    if self.cancel.is_set():
                        raise Cancelled("build cancelled")
                    stopping = failed and not self.keep_going
                    while ready and not stopping:
                        name = ready.popleft()
                        if name not in outcomes and not waiting[name] and name not in keys:
                            resolve(name)
                        stopping = failed and not self.keep_going
                    while to_run and len(running) < self.jobs and not stopping:
                        staging = to_run.popleft()
                        running[pool.submit(self._execute, staging)] = staging.action.name
                    if not running:
                        break
                    done, _ = wait(list(running), timeout=0.1, return_when=FIRST_COMPLETED)
                    for future in done:
                        collect(future)
            except BaseException:
                self.cancel.set()
                raise
        for name in needed:
            if name not in outcomes:
                outcomes[name] = Outcome(name, "skipped")
        return outcomes

    def _execute(self, staging: Staging) -> tuple[ActionResult, float]:
        self.emit("action-started", action=staging.action.name, key=str(staging.key))
        start = time.monotonic()
        result = self.executor.run(staging, self.cancel)
        return result, time.monotonic() - start
