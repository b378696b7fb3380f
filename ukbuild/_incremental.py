"""The incremental path: after a small change, rebuild only what the change reaches.

Beside the no-op record (:mod:`._noop`), a successful build leaves this one:
which paths each action's key read, each action's key and dependencies, the
files each target wrote, the toolchains, and every action as pickled bytes.
When the no-op check fails and only action inputs changed (not the project
file, a directory a ``foreach`` globbed, or a tool), the changed paths name
the actions that read them; those and their dependants (the *cone*) are keyed
and resolved as in a full build, against the recorded results of the
dependencies just outside the cone.  Nothing else is parsed, keyed, looked up
or materialised, so a one-file change costs the no-op's stat loop plus the
cone.  Anything else — another request, a project edit, a record that does
not match the no-op one, a dependency's result missing from the cache —
means the full path, which is always right; this path must give the same
keys, outputs and records as the full one would (``tests/core/test_incremental.py``).
"""

from __future__ import annotations

import marshal
import os
import pickle
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

from . import _noop
from .events import EventBus, Subscriber

if TYPE_CHECKING:
    import argparse
    from typing import TextIO

    from ._reapi import ActionResult, Digest
    from ._scheduler import Outcome, Scheduler
    from .model import Action, Project, Toolchain

FILE = "incremental"
FORMAT = 2


def _path(state: str) -> str:
    return os.path.join(state, FILE)


def record(
    state: str,
    request: list[object],
    tracked: list[str],
    summary: dict,  # type: ignore[type-arg]
    *,
    project: Project,
    targets: list[str],
    toolchains: Mapping[str, Toolchain],
    scheduler: Scheduler,
    outcomes: Mapping[str, Outcome],
    files: Mapping[str, Mapping[str, str]],
    others: Mapping[str, list[str]],
    out_dir: str,
    stats: Mapping[str, tuple[int, int, int, int] | None],
    tool_paths: list[str],
    environ: Mapping[str, str | None],
) -> None:
    """After a successful full build: the no-op record, then the incremental one.

    ``files`` holds each target's files as materialised (relative path → digest),
    ``others`` its symlinks and directories;
    ``stats`` the tracked paths' stat data as the build read or wrote them;
    ``tool_paths`` the paths that identify the toolchains, ``environ`` the variables
    their detection read.
    """
    token = _noop.record(state, request, tracked, summary, stats=dict(stats), environ=environ)
    if token is None or any(name not in files for name in targets):
        return  # (a target without files cannot happen after a successful build)
    try:
        actions = {n: pickle.dumps(project.actions[n], 5) for n in outcomes}
        context = pickle.dumps((_slim(project), dict(toolchains)), 5)
    except Exception:  # noqa: BLE001 - a value that does not pickle: no incremental path
        _forget(state)
        return
    _save(state, {
        "format": FORMAT, "token": token, "request": request, "context": context,
        "targets": list(targets), "keys": summary["actions"],
        "deps": {n: list(project.actions[n].dependencies) for n in outcomes},
        "reads": {n: scheduler.reads.get(n, []) for n in outcomes},
        "actions": actions, "files": {n: dict(files[n]) for n in targets},
        "others": {n: list(others.get(n, ())) for n in targets}, "out_dir": out_dir,
        "fixed": [*project.files, *tool_paths],
        "declared": {n: list(project.actions[n].outputs) for n in targets},
        "name": project.name,
    })


def _slim(project: Project) -> Project:
    import attrs  # noqa: PLC0415

    return attrs.evolve(project, actions={})


def _save(state: str, data: dict) -> None:  # type: ignore[type-arg]
    target = _path(state)
    tmp = f"{target}.{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as f:
            marshal.dump(data, f)
        os.replace(tmp, target)
    except (OSError, ValueError):
        try:
            os.unlink(tmp)
        except OSError:
            pass


def _forget(state: str) -> None:
    try:
        os.unlink(_path(state))
    except OSError:
        pass


def _load(state: str) -> dict | None:  # type: ignore[type-arg]
    try:
        with open(_path(state), "rb") as f:
            data = marshal.loads(f.read())
    except (OSError, EOFError, ValueError, TypeError):
        return None
    return data if isinstance(data, dict) and data.get("format") == FORMAT else None


class Fallback(Exception):
    """The incremental path cannot finish (a settled result's bytes are gone, or another
    build changed the output dir meanwhile): build in full.  The message says why."""


class Rebuild:
    """An incremental build of the request recorded in ``state``; :meth:`prepare` says
    whether it applies, :meth:`run` does it (same events as a full build)."""

    def __init__(
        self,
        state: str,
        request: list[object],
        *,
        cache_dir: str | None,
        jobs: int,
        keep_going: bool = False,
        mirrors: tuple[str, ...] = (),
        keep_scratch: bool = False,
        scratch_dir: str | None = None,
        sandbox: bool = False,
        offline: bool = False,
        overrides: Mapping[str, str] | None = None,
    ) -> None:
        self.state = state
        self.offline = offline
        self.request = request
        self.cache_dir = cache_dir
        self.jobs = jobs
        self.keep_going = keep_going
        self.mirrors = mirrors
        self.keep_scratch = keep_scratch
        self.scratch_dir = scratch_dir
        self.sandbox = sandbox
        self.overrides = dict(overrides or {})
        self.cancel_event = threading.Event()
        self.bus = EventBus()
        self.targets: list[str] = []
        self.total = 0

    # --- deciding -------------------------------------------------------------

    def prepare(self) -> bool:
        """Load both records and work out the cone; False: take the full path."""
        try:
            return self._prepare()
        except Exception:  # noqa: BLE001 - a record this version cannot use: the full path decides
            if getattr(self, "store", None) is not None:
                self.store.close()
            return False

    def _prepare(self) -> bool:
        found = _noop.changes(self.state, self.request)
        if found is None:
            return False
        noop, changed, self._stats = found
        self._recorded = noop
        data = _load(self.state)
        if data is None or data.get("token") != noop.get("token") or data.get("request") != self.request:
            return False
        self.data = data
        self.targets = data["targets"]
        self.total = len(data["keys"])
        fixed = set(data["fixed"])
        if any(p in fixed or self._stats[p] is None for p in changed):
            return False  # the project, a globbed directory or a tool changed; or a file is gone
        changed_set = set(changed)
        dirty = {n for n, paths in data["reads"].items() if not changed_set.isdisjoint(paths)}
        read = set(_flatten(data["reads"][n] for n in dirty))
        out_dir = data["out_dir"] + "/"
        by_rel: dict[str, str] = {}
        shared: set[str] = set()
        entries = {t: [*files, *data["others"][t]] for t, files in data["files"].items()}
        for target, rels in entries.items():
            for rel in rels:
                if by_rel.setdefault(rel, target) != target:
                    shared.add(rel)
        dirs = {rel: t for t, rels in data["others"].items() for rel in rels if by_rel[rel] == t}
        if dirs:  # (symlinks are in there too; only directories hold other paths)
            for target, rels in entries.items():
                for rel in rels:
                    parts = rel.split("/")
                    for i in range(1, len(parts)):
                        owner = dirs.get("/".join(parts[:i]))
                        if owner is not None and owner != target:
                            shared.update((rel, "/".join(parts[:i])))
        remat: set[str] = set()
        for path in changed:
            owner = by_rel.get(path[len(out_dir) :]) if path.startswith(out_dir) else None
            if owner is not None:
                remat.add(owner)
            elif path not in read:
                return False  # a path nothing here accounts for
        users: dict[str, list[str]] = {}
        for name, deps in data["deps"].items():
            for dep in deps:
                users.setdefault(dep, []).append(name)
        cone: set[str] = set()
        stack = list(dirty)
        while stack:
            name = stack.pop()
            if name not in cone:
                cone.add(name)
                stack.extend(users.get(name, ()))
        target_set = set(self.targets)
        writing = (cone & target_set) | remat
        # A path written by two targets (or inside another's directory) ends up as the
        # later one's: only the full path knows.
        if any(not shared.isdisjoint(entries[t]) for t in writing):
            return False
        self.cone, self.remat = cone, remat - cone
        self.writing = [t for t in self.targets if t in writing]
        return self._settle()

    def _settle(self) -> bool:
        """Unpickle the cone and fetch the recorded results it builds on."""
        from pathlib import Path  # noqa: PLC0415

        from ._reapi import Digest  # noqa: PLC0415
        from ._cachedir import default_cache_dir  # noqa: PLC0415
        from ._store import Store  # noqa: PLC0415

        data = self.data
        self.project, self.toolchains = pickle.loads(data["context"])
        self.actions: dict[str, Action] = {n: pickle.loads(data["actions"][n]) for n in self.cone}
        self.store = Store(
            Path(self.cache_dir or default_cache_dir()).absolute(), warn=lambda m: self.bus.emit("warning", message=m)
        )
        self.store.sweep_temp()
        self.known: dict[str, tuple[Digest, ActionResult]] = {}
        outside = {d for n in self.cone for d in data["deps"][n] if d not in self.cone} | self.remat
        for name in sorted(outside):
            key = Digest.parse(data["keys"][name])
            # Not verified byte for byte: staging and materialising check every byte they copy.
            result = self.store.get_action_result(key)
            if result is None:
                self.store.close()
                return False
            self.known[name] = (key, result)
        return True

    # --- running --------------------------------------------------------------

    def subscribe(self, subscriber: Subscriber) -> None:
        self.bus.subscribe(subscriber)

    def cancel(self) -> None:
        self.cancel_event.set()

    def run(self) -> bool:
        """Build the cone and write what changed; True when every action succeeded.

        Raises :class:`Fallback` when a recorded result turned out to be unusable
        (nothing is recorded then, so the full path runs next).
        """
        from . import _outlock  # noqa: PLC0415

        start = time.monotonic()
        self.bus.emit("build-started", project=self.data["name"], targets=self.targets, jobs=self.jobs,
                      out_dir=self.data["out_dir"], cache_dir=str(self.store.root))
        lock, waited = _outlock.hold(self.state, self.data["out_dir"], lambda m: self.bus.emit("warning", message=m))
        try:
            if waited:  # it may have changed what this plan was made from
                self.store.close()
                raise Fallback(f"another build wrote {self.data['out_dir']} meanwhile")
            return self._build(start)
        finally:
            _outlock.release(lock)

    def _build(self, start: float) -> bool:
        from . import _journal  # noqa: PLC0415
        from ._executor import Executor, LostOutput, scratch_root  # noqa: PLC0415
        from ._materialize import materialize  # noqa: PLC0415
        from ._scheduler import Scheduler  # noqa: PLC0415

        data, state = self.data, self.state
        out_dir = data["out_dir"]
        _noop.forget(state)
        if self.sandbox:
            from ._sandbox import bwrap_available  # noqa: PLC0415

            if not bwrap_available():
                from .errors import ToolchainError  # noqa: PLC0415

                raise ToolchainError(
                    "--sandbox: bubblewrap (bwrap) is not installed or cannot create namespaces here",
                    hint="apt-get install bubblewrap, or build without --sandbox", reason="no-sandbox",
                )
        for name in sorted(data["keys"]):
            if name not in self.cone:
                self.bus.emit("action-cached", action=name, key=data["keys"][name], via="journal")
        from pathlib import Path  # noqa: PLC0415

        journal = _journal.Journal(Path(state) / "journal")
        digests, history = journal.digests, journal.history

        executor = Executor(
            self.store, Path(self.project.root),
            scratch_root=scratch_root(self.scratch_dir),
            log_dir=Path(state) / "logs", mirrors=self.mirrors, keep_scratch=self.keep_scratch,
            checks=self._checks(), sandbox=self.sandbox, offline=self.offline,
        )
        import attrs  # noqa: PLC0415

        project = attrs.evolve(self.project, actions=self.actions)
        scheduler = Scheduler(
            project, self.store, executor, self.toolchains, digests, history, self.bus.emit,
            jobs=self.jobs, keep_going=self.keep_going, cancel=self.cancel_event, overrides=self.overrides,
        )
        try:
            outcomes = scheduler.run(sorted(self.cone), known=self.known,
                                     exported=frozenset(self.writing))
            ready = []
            for name in self.writing:
                outcome = outcomes.get(name)
                result = outcome.result if outcome is not None else self.known[name][1]
                if result is not None:
                    ready.append((name, result))
            placed_stats: dict[str, tuple[int, int, int, int]] = {}
            others: dict[str, list[str]] = {}
            files = materialize(ready, self.store, Path(out_dir), digests, jobs=self.jobs, stats=placed_stats,
                                others=others)
            written = {name: {rel: str(d) for rel, d in placed.items()} for name, placed in files.items()}
        except LostOutput as exc:
            raise Fallback(f"the stored outputs of {exc.producer} are gone") from exc
        finally:
            executor.close()
            journal.save()
            self.store.close()
        mine = {n: o for n, o in outcomes.items() if n in self.cone}
        ok = all(o.status in ("executed", "cached") for o in mine.values())
        count = {s: sum(1 for o in mine.values() if o.status == s) for s in ("executed", "failed", "skipped")}
        files_now = {**data["files"], **written}
        outputs: dict[str, str] = {}
        for name in self.targets:
            outputs.update(files_now[name])
        self.bus.emit("build-finished", ok=ok, executed=count["executed"],
                   cached=self.total - count["executed"] - count["failed"] - count["skipped"],
                   failed=count["failed"], skipped=count["skipped"], seconds=round(time.monotonic() - start, 6),
                   outputs=outputs, overrides=dict(self.overrides))
        if ok:
            self._record(scheduler, outcomes, files_now, {**data["others"], **others}, outputs, placed_stats)
        return ok

    def _checks(self) -> dict[str, Callable[[object], None]]:
        if not any(a.checks for a in self.actions.values()):
            return {}
        from .plugins._manager import backends, plugin_manager  # noqa: PLC0415

        return {name: check for b in backends(plugin_manager()).values() for name, check in b.checks().items()}

    def _record(self, scheduler: Scheduler, outcomes: Mapping[str, Outcome], files: dict[str, dict[str, str]],
                others: dict[str, list[str]], outputs: dict[str, str],
                placed: Mapping[str, tuple[int, int, int, int]]) -> None:
        data = self.data
        keys = dict(data["keys"])
        keys.update((n, str(o.key)) for n, o in outcomes.items() if n in self.cone)
        reads = dict(data["reads"])
        reads.update((n, scheduler.reads.get(n, [])) for n in self.cone)
        out_dir = data["out_dir"]
        tracked = [*data["fixed"], *_flatten(reads.values()), *(os.path.join(out_dir, rel) for rel in outputs),
                   *(os.path.join(out_dir, rel) for rel in _flatten(others.values()))]
        # Stat data taken before this build stays valid for what it did not write (taken
        # before hashing, so a change during the build is seen next time); what the cone
        # read has the stat data its keys read, what was written the data as placed.
        stats = dict(zip(self._recorded["paths"], _noop.stats_of(self._recorded)))
        stats.update(self._stats)
        for path, key in scheduler.stats.items():
            if path not in self._stats and path in stats and stats[path] != key:
                key = _noop.UNKNOWN  # changed during this build; actions outside the cone read it as it was
            stats[path] = key
        for name in self.writing:
            for rel in (*data["files"][name], *data["others"][name], *files[name], *others[name]):
                stats.pop(os.path.join(out_dir, rel), None)
        stats.update(placed)
        summary = {"project": data["name"], "targets": self.targets, "actions": keys, "outputs": outputs}
        token = _noop.record(self.state, self.request, tracked, summary, stats=stats,
                             environ=self._recorded.get("environ", {}))
        if token is None:
            return
        actions = dict(data["actions"])
        actions.update((n, pickle.dumps(a, 5)) for n, a in self.actions.items())
        _save(self.state, {**data, "token": token, "keys": keys, "reads": reads, "files": files, "others": others,
                           "actions": actions})


def _flatten(lists: Iterable[list[str]]) -> Iterable[str]:
    for items in lists:
        yield from items


def from_cli(
    args: argparse.Namespace, out: TextIO, err: TextIO, *, state: str, request: list[object],
    overrides: Mapping[str, str],
) -> int | None:
    """``ukbuild build`` when the no-op check failed: the exit code, or None for the full path."""
    if args.depfile or args.remote_cache or getattr(args, "remote_executor", None):
        return None
    rebuild = Rebuild(
        state, request, cache_dir=os.path.abspath(args.cache_dir) if args.cache_dir else None,
        jobs=args.jobs or os.cpu_count() or 1, keep_going=args.keep_going, mirrors=tuple(args.mirror),
        keep_scratch=args.keep_scratch, scratch_dir=os.path.abspath(args.scratch_dir) if args.scratch_dir else None,
        sandbox=args.sandbox, offline=args.offline, overrides=overrides,
    )
    if not rebuild.prepare():
        return None
    from ._progress import attach  # noqa: PLC0415

    attach(rebuild, out, err, json_mode=args.json)  # type: ignore[arg-type]
    try:
        ok = rebuild.run()
    except KeyboardInterrupt:
        rebuild.cancel()
        raise
    except Fallback as exc:
        print(f"warning: {exc}: building in full", file=err)
        return None
    if not ok:
        return 1
    if not args.json:
        print(f"outputs: {rebuild.data['out_dir']}", file=out)
        for target in rebuild.targets:
            for path in rebuild.data["declared"][target]:
                print(f"  {path}", file=out)
    return 0
