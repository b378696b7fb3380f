"""The embedding API: load a project, build targets, explain keys.

Nothing here prints or exits, and there is no global state: each
:class:`Build` owns its store handle, journal, executor and event bus, so
two builds can run in one process at once (from two threads).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from . import _incremental, _journal, _noop, _outlock
from ._cachedir import default_cache_dir
from ._executor import Executor, LostOutput, scratch_root
from ._graph import closure, order
from ._materialize import materialize
from ._noop import StatKey
from ._project import load_project
from ._reapi import Digest
from ._scheduler import Outcome, Scheduler
from ._store import Store
from .errors import BuildError, ConfigError, ToolchainError, UkbuildError
from .events import EventBus, Subscriber
from .keys import KeyValue, canonical_json, diff_documents
from .model import Action, Project, SourceInput, Toolchain
from .toolchains import Lookup, detect_host_toolchain, find_tool, shadowing, tool_paths, watching_lookups

if TYPE_CHECKING:
    from .plugins import Backend, Check, Detection, RecordingEnviron
    from .remote import RemoteConfig
    from .remote.execute import RemoteExecutor
    from .runner import Drive, RunResult

__all__ = [
    "Build",
    "BuildOptions",
    "BuildResult",
    "Explanation",
    "build",
    "detect_backends",
    "explain",
    "load_project",
    "run",
]


def _jobs() -> int:
    return os.cpu_count() or 1


@attrs.frozen
class BuildOptions:
    """How to build; every field has a sensible default.

    ``out_dir`` defaults to ``<project>/out``; ``cache_dir`` to
    ``$UKBUILD_CACHE_DIR`` or the XDG cache dir.  ``overrides`` maps a
    package name to a local source tree, or a local archive unpacked like the
    pinned one (same ``strip``), used instead of its pinned source.
    """

    out_dir: Path | None = None
    cache_dir: Path | None = None
    use_cache: bool = True
    jobs: int = attrs.field(factory=_jobs, validator=attrs.validators.ge(1))
    keep_going: bool = False
    overrides: Mapping[str, str] = attrs.field(factory=dict)
    mirrors: tuple[str, ...] = ()
    scratch_dir: Path | None = None
    keep_scratch: bool = False
    #: A shared cache (``ukbuild.remote.RemoteConfig``): read-only unless it says push.
    remote: RemoteConfig | None = None
    #: Journal, no-op record and logs (default ``OUT/.ukbuild``).
    state_dir: Path | None = None
    #: Run each action under bubblewrap: no network, no writes outside its scratch dir,
    #: which it sees at /ukbuild/work (for recipes you do not trust; see docs/reliability.md).
    sandbox: bool = False
    #: Run actions on a REAPI execution service (``ukbuild.remote.RemoteConfig``), e.g.
    #: BuildGrid with :mod:`ukbuild.remote.worker` bots; outputs still land in the local store.
    remote_executor: RemoteConfig | None = None
    #: Fetch nothing: pinned archives only from the cache or local mirrors, and steps marked
    #: ``network`` only as cache hits (a clear error otherwise).
    offline: bool = False


@attrs.frozen
class BuildResult:
    """What a build did: per-action outcomes and the files written to ``out_dir``."""

    ok: bool
    outcomes: Mapping[str, Outcome]
    outputs: Mapping[str, str]
    out_dir: Path
    seconds: float
    #: Every project and source file the build read (for Make depfiles).
    inputs: tuple[str, ...] = ()

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes.values() if o.status == status)

    @property
    def errors(self) -> list[UkbuildError]:
        return [o.error for o in self.outcomes.values() if o.error is not None]


def _resolve_targets(project: Project, targets: Iterable[str]) -> list[str]:
    """Target names → action names (a foreach group ``compile`` means all ``compile[…]``)."""
    wanted = list(targets) or list(project.default_targets) or sorted(project.actions)
    groups: dict[str, list[str]] = {}
    for name in project.actions:
        groups.setdefault(name, []).append(name)
        if name.endswith("]") and "[" in name:
            groups.setdefault(name[: name.index("[")], []).append(name)
    resolved: dict[str, None] = {}
    for target in wanted:
        members = groups.get(target)
        if not members:
            import difflib  # noqa: PLC0415

            close = difflib.get_close_matches(target, list(project.actions), n=1)
            raise ConfigError(
                f"no target named '{target}' in project {project.name}",
                hint=f"did you mean '{close[0]}'?" if close else "run `ukbuild graph` to list them",
                reason="unknown-target",
            )
        resolved.update(dict.fromkeys(members))
    return list(resolved)


def _check_directories(root: Path, out_dir: Path, state_dir: Path, scratch_dir: Path | None) -> None:
    """Refuse, before anything is written, directories a build cannot use: a file in the
    way, or an output directory holding the project (output directories are pruned of
    what the build did not write, so the project's own files would go)."""
    if _holds(out_dir, root):
        raise ConfigError(
            f"output directory {out_dir}: it holds the project ({root}), whose files outputs would replace",
            hint="give the outputs a directory of their own, e.g. -o out (the default) or one outside the project",
            reason="bad-directory",
        )
    for what, path in (("output directory", out_dir), ("--state-dir", state_dir), ("--scratch-dir", scratch_dir)):
        for place in (path, *(path.parents if path is not None else ())):
            if place is not None and os.path.lexists(place):
                if not os.path.isdir(place):
                    raise ConfigError(f"{what} {path}: {place} is a file, not a directory",
                                      hint="name a directory (it is created if missing)", reason="bad-directory")
                break


def _holds(outer: str | os.PathLike[str], inner: str | os.PathLike[str]) -> bool:
    """Whether directory ``outer`` is ``inner`` or one of its ancestors (symlinks resolved)."""
    outer, inner = os.path.realpath(outer), os.path.realpath(inner)
    return inner == outer or inner.startswith(outer.rstrip("/") + "/")


def _make_directory(what: str, path: Path, option: str) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create {what} {path}: {exc.strerror}",
                          hint=f"name a directory this user can write with {option}", reason="bad-directory") from exc


class _Session:
    """Store, journal and toolchains for one project and output dir."""

    def __init__(
        self, project: Project, options: BuildOptions, bus: EventBus, backends: Mapping[str, Backend] | None = None
    ) -> None:
        for name in options.overrides:
            if not any(isinstance(i, SourceInput) and i.name == name for a in project.actions.values() for i in a.inputs):
                raise ConfigError(f"--override {name}: no package named '{name}'", hint="name a package of this project", reason="unknown-target")
        for name, path in options.overrides.items():
            if not (Path(path).is_dir() or Path(path).is_file()):
                raise ConfigError(f"--override {name}={path}: no such directory or archive",
                                  hint="give the local source tree, or a source archive (e.g. Debian's orig tarball)",
                                  reason="bad-override")
        out = os.path.realpath(options.out_dir or Path(project.root) / "out")
        for name, path in options.overrides.items():
            if os.path.isdir(path) and _holds(path, out):
                raise ConfigError(f"--override {name}={path}: the output directory {out} is inside it, so every "
                                  "build would change the tree it is keyed by",
                                  hint="give the outputs a directory outside the override tree (-o)",
                                  reason="bad-override")
        self.project = project
        self.options = options
        self.root = Path(project.root)
        self.out_dir = Path(options.out_dir or self.root / "out").absolute()
        self.state_dir = Path(_noop.state_dir(str(self.out_dir), str(options.state_dir) if options.state_dir else None))
        _check_directories(self.root, self.out_dir, self.state_dir, options.scratch_dir)
        self.journal = _journal.Journal(self.state_dir / "journal")
        self.digests, self.history, self.versions = self.journal.digests, self.journal.history, self.journal.versions
        self._backends = backends
        self.lock: int | None = None  # (held while the build writes: see _outlock)
        #: The paths that identify the detected toolchains → their stat data as detected.
        self.tool_stats: dict[str, StatKey | None] = {}
        self._environ: RecordingEnviron | None = None
        warn: Callable[[str], None] = lambda m: bus.emit("warning", message=m)
        if options.use_cache:
            self.cache_dir: Path | None = Path(options.cache_dir or default_cache_dir()).absolute()
            self.store = Store(self.cache_dir, warn=warn)
            self.store.sweep_temp()
        else:  # a private store for this build's blobs only; nothing touches the cache
            self.cache_dir = None
            self.store = Store(Path(tempfile.mkdtemp(prefix="ukbuild-nocache-")), warn=warn, private=True)
        self.remote = None
        if options.remote is not None and options.use_cache:
            from .remote import open_remote  # noqa: PLC0415 - only for builds that share a cache

            self.remote = open_remote(options.remote, warn=lambda m: bus.emit("warning", message=m))

    def close(self) -> None:
        if self.lock is not None:
            _outlock.release(self.lock)
            self.lock = None
        if self.remote is not None:
            self.remote.close()
        self.store.close()
        if self.cache_dir is None:
            shutil.rmtree(self.store.root, ignore_errors=True)

    @staticmethod
    def load_backends() -> Mapping[str, Backend]:
        from .plugins._manager import backends, plugin_manager  # noqa: PLC0415

        return backends(plugin_manager())

    @property
    def backends(self) -> Mapping[str, Backend]:
        if self._backends is None:
            self._backends = self.load_backends()
        return self._backends

    def checks(self, actions: Iterable[Action]) -> dict[str, Check]:
        """The verifiers the given actions name, from the installed backends."""
        if not any(a.checks for a in actions):
            return {}
        return {name: check for b in self.backends.values() for name, check in b.checks().items()}

    def toolchains(self, names: Iterable[str]) -> dict[str, Toolchain]:
        """Detect the named toolchains; ``tool_stats`` gets the stat data of the paths that
        identify them, as detection found them."""
        found: dict[str, Toolchain] = {}
        for name in sorted(set(names)):
            with watching_lookups() as lookups:
                found[name] = self._detect(name)
            self._watch_tools(found[name], lookups)
        return found

    def _watch_tools(self, toolchain: Toolchain, lookups: list[Lookup]) -> None:
        """Stat the paths that identify ``toolchain``; then check that they still lead to
        what detection found (the files it hashed, the tools it looked up): a path changed
        in between is recorded as unknown, so that the next build detects again."""
        stats = self.tool_stats
        for path in tool_paths(toolchain, lookups):
            stats.setdefault(path, _noop.stat_of(path))
        for path, digest in [*((t.path, t.digest) for t in toolchain.tools), *toolchain.files]:
            real = os.path.realpath(path)
            try:
                st = os.stat(real)
                same = str(self.digests(real, st)) == digest  # (by stat: hashed again only if changed)
            except OSError:
                same = False
            stats[real] = _journal.stat_key(st) if same else _noop.UNKNOWN
        for lookup in lookups:
            name, search, found = lookup
            if find_tool(name, search) != found:
                for path in (*shadowing(lookup), *([found] if found else [])):
                    stats[path] = _noop.UNKNOWN

    @property
    def environ(self) -> RecordingEnviron:
        """The environment backends detect in (what they read goes into the no-op record)."""
        if self._environ is None:
            from .plugins import RecordingEnviron  # noqa: PLC0415 - only projects with backend toolchains

            self._environ = RecordingEnviron(os.environ)
        return self._environ

    def environ_read(self) -> dict[str, str | None]:
        return self._environ.recorded() if self._environ is not None else {}

    def _detect(self, name: str) -> Toolchain:
        spec = self.project.toolchains.get(name)
        if spec is None:
            raise ConfigError(f"no toolchain named '{name}'", reason="unknown-toolchain")
        if spec.backend is None:
            return detect_host_toolchain(
                spec.tools, file_digest=self.digests, versions=self.versions, name=name, origin=spec.origin,
                launchers=spec.launchers,
            )
        backend = self.backends.get(spec.backend)
        if backend is None:
            raise ConfigError(f"{spec.origin}: toolchain.{name}.backend: backend '{spec.backend}' is not installed",
                              hint=f"install the ukbuild-{spec.backend} distribution", reason="unknown-backend")
        from .plugins import DetectContext  # noqa: PLC0415 - only projects with backend toolchains

        detection = backend.detect(spec.options, DetectContext(self.environ, self.digests, self.versions))
        if detection.toolchain is None:
            raise ToolchainError(
                f"{spec.origin}: toolchain.{name}: {backend.NAME} toolchain not found: {detection.reason}",
                detail="looked in: " + ", ".join(detection.searched) if detection.searched else None,
                hint=f"set {detection.env_var} to its install prefix, or put its tools on PATH"
                if detection.env_var else None,
                reason="toolchain-not-found",
            )
        return attrs.evolve(detection.toolchain, name=name, backend=backend.NAME)

    def save(self) -> None:
        self.journal.save()


class Build:
    """One build of some targets of a project.

    Subscribe to its events, then :meth:`run` it; :meth:`cancel` (from any
    thread) stops it cleanly: running commands are killed, nothing partial
    is cached or left at an output path.
    """

    def __init__(
        self,
        project: Project,
        targets: Iterable[str] = (),
        options: BuildOptions | None = None,
        *,
        backends: Mapping[str, Backend] | None = None,
    ) -> None:
        self.project = project
        self.backends = backends
        self.requested = list(targets)
        self.options = options or BuildOptions()
        self.targets = _resolve_targets(project, self.requested)
        self._bus = EventBus()
        self._cancel = threading.Event()

    def subscribe(self, subscriber: Subscriber) -> None:
        self._bus.subscribe(subscriber)

    def cancel(self) -> None:
        self._cancel.set()

    def run(self) -> BuildResult:
        start = time.monotonic()
        session = _Session(self.project, self.options, self._bus, self.backends)
        try:
            return self._run(session, start)
        finally:
            session.close()

    def _run(self, session: _Session, start: float) -> BuildResult:
        project, options = self.project, self.options
        # Stat data taken before anything is read (the loader took its files' before parsing):
        # what changes from now on is seen by the next build.
        read_stats = {p: project.file_stats[p] if p in project.file_stats else _noop.stat_of(p) for p in project.files}
        self._bus.emit("build-started", project=project.name, targets=self.targets, jobs=options.jobs,
                       out_dir=str(session.out_dir), cache_dir=str(session.cache_dir) if session.cache_dir else None)
        needed = closure(project.actions, self.targets)
        toolchains = session.toolchains(a.toolchain for n in needed if (a := project.actions[n]).toolchain)
        if options.sandbox and options.remote_executor is not None:
            raise ConfigError(
                "--sandbox isolates local actions; with a remote executor the workers run them",
                hint="drop --sandbox, or build locally without --remote-executor", reason="sandbox-remote",
            )
        if options.sandbox:
            from ._sandbox import bwrap_available  # noqa: PLC0415

            if not bwrap_available():
                raise ToolchainError(
                    "--sandbox: bubblewrap (bwrap) is not installed or cannot create namespaces here",
                    hint="apt-get install bubblewrap, or build without --sandbox", reason="no-sandbox",
                )
        _make_directory("output directory", session.out_dir, "-o")
        _make_directory("state directory", session.state_dir, "--state-dir (default: OUT/.ukbuild)")
        _make_directory("scratch directory", scratch_root(options.scratch_dir),
                        "--scratch-dir (default: $TMPDIR/ukbuild-UID)")
        session.lock, _ = _outlock.hold(str(session.state_dir), str(session.out_dir),
                                        lambda m: self._bus.emit("warning", message=m))
        executor: Executor | RemoteExecutor = Executor(
            session.store, session.root,
            scratch_root=scratch_root(options.scratch_dir),
            log_dir=session.state_dir / "logs", mirrors=options.mirrors, keep_scratch=options.keep_scratch,
            checks=session.checks(project.actions[n] for n in needed), sandbox=options.sandbox,
            offline=options.offline,
        )
        if options.remote_executor is not None:
            from .remote.execute import RemoteExecutor  # noqa: PLC0415 - needs the remote extra

            executor = RemoteExecutor(executor, options.remote_executor,
                                      warn=lambda m: self._bus.emit("warning", message=m))
        scheduler = Scheduler(
            project, session.store, executor, toolchains, session.digests, session.history, self._bus.emit,
            jobs=options.jobs, keep_going=options.keep_going, cancel=self._cancel,
            overrides=options.overrides, use_cache=options.use_cache, remote=session.remote,
        )
        request = _noop.request(project.files[0] if project.files else "", self.requested,
                                str(session.out_dir), dict(options.overrides))
        _noop.forget(str(session.state_dir))
        placed: dict[str, StatKey] = {}
        others: dict[str, list[str]] = {}
        try:
            outcomes = scheduler.run(self.targets)
            files = self._materialize(scheduler, outcomes, session, placed, others)
        finally:
            executor.close()
            session.save()
        written = {rel: digest for target in files.values() for rel, digest in target.items()}
        ok = all(o.status in ("executed", "cached") for o in outcomes.values())
        inputs = tuple(sorted(p for p in {*project.files, *scheduler.tracked} if os.path.isfile(p)))
        result = BuildResult(ok, outcomes, written, session.out_dir, time.monotonic() - start, inputs)
        self._bus.emit(
            "build-finished", ok=ok, executed=result.count("executed"), cached=result.count("cached"),
            failed=result.count("failed"), skipped=result.count("skipped"), seconds=round(result.seconds, 6),
            outputs=dict(written), overrides=dict(options.overrides),
        )
        if ok:
            tools = list(session.tool_stats)
            tracked = [*project.files, *scheduler.tracked, *tools]
            out_dir = str(session.out_dir)
            tracked += [os.path.join(out_dir, p) for p in written]
            tracked += [os.path.join(out_dir, p) for target in others.values() for p in target]
            # Each path's stat data as the build read it (or wrote it, for outputs): not as it
            # is now, which may be an edit made during the build.
            for found in (scheduler.stats, session.tool_stats):
                for path, key in found.items():
                    if read_stats.setdefault(path, key) != key:
                        read_stats[path] = _noop.UNKNOWN
            read_stats.update(placed)
            summary = {"project": project.name, "targets": list(self.targets),
                       "actions": {n: str(o.key) for n, o in outcomes.items()}, "outputs": dict(written)}
            _incremental.record(str(session.state_dir), request, tracked, summary, project=project,
                                targets=self.targets, toolchains=toolchains, scheduler=scheduler,
                                outcomes=outcomes, files=files, others=others, out_dir=out_dir,
                                stats=read_stats, tool_paths=tools, environ=session.environ_read())
        return result

    def _materialize(
        self, scheduler: Scheduler, outcomes: dict[str, Outcome], session: _Session, stats: dict[str, StatKey],
        others: dict[str, list[str]],
    ) -> dict[str, dict[str, str]]:
        """Each target's files written or kept: target → relative path → digest; ``others``
        gets each target's symlinks and directories, ``stats`` the stat data of all as placed."""
        rebuilt: set[str] = set()
        while True:
            results = ((n, outcomes[n].result) for n in self.targets if n in outcomes)
            ready = [(n, result) for n, result in results if result is not None]
            try:
                files = materialize(ready, session.store, session.out_dir, session.digests, jobs=self.options.jobs,
                                    stats=stats, others=others)
            except LostOutput as exc:
                # The stored bytes were corrupt (and are now removed): build it again, then
                # place everything once more (what is in place already is kept).
                if exc.producer in rebuilt:
                    raise BuildError(f"{exc.producer}: its stored outputs keep disappearing",
                                     reason="store-unstable") from exc
                rebuilt.add(exc.producer)
                outcomes.update(scheduler.run([exc.producer], force=frozenset({exc.producer})))
                continue
            return {name: {rel: str(digest) for rel, digest in placed.items()} for name, placed in files.items()}


def build(project: Project | str | os.PathLike[str], targets: Iterable[str] = (), **options: object) -> BuildResult:
    """Build ``targets`` (default: the project's defaults) and return the result."""
    if not isinstance(project, Project):
        project = load_project(project)
    return Build(project, targets, BuildOptions(**options)).run()  # type: ignore[arg-type]


@attrs.frozen
class Explanation:
    """Why an action's key is what it is, compared with its previous key."""

    action: str
    key: Digest | None
    status: str  # "cached" | "will-run" | "blocked" (waits for a dependency to run)
    previous: Digest | None
    changes: list[tuple[str, KeyValue, KeyValue]]
    blocked_by: str | None = None
    note: str | None = None


def explain(project: Project, target: str, options: BuildOptions | None = None) -> list[Explanation]:
    """Compute the current key of ``target``'s actions without running anything and diff it
    against the previous distinct key recorded for that action."""
    options = options or BuildOptions()
    bus = EventBus()
    session = _Session(project, options, bus)
    targets = _resolve_targets(project, [target])
    needed = order(project.actions, closure(project.actions, targets))
    toolchains = session.toolchains(a.toolchain for n in needed if (a := project.actions[n]).toolchain)
    scheduler = Scheduler(
        project, session.store, None, toolchains, session.digests, session.history, bus.emit,  # type: ignore[arg-type]
        jobs=1, keep_going=True, cancel=threading.Event(), overrides=options.overrides,
    )
    results = {}
    blocked: dict[str, str] = {}
    explanations = []
    try:
        for name in needed:
            action = project.actions[name]
            waiting = next((blocked.get(d, d) for d in action.dependencies if d not in results), None)
            if waiting is not None:
                blocked[name] = waiting
                if name in targets:
                    explanations.append(Explanation(name, None, "blocked", None, [], blocked_by=waiting))
                continue
            document = scheduler.key_document(action, results)
            key = Digest.of(canonical_json(document))
            hit = session.store.get_action_result(key)
            if hit is not None:
                results[name] = hit
            else:
                blocked[name] = name
            if name in targets:
                explanations.append(_compare(name, key, document, hit is not None, session))
    finally:
        session.close()
        session.save()
    return explanations


def _compare(name: str, key: Digest, document: dict[str, KeyValue], cached: bool, session: _Session) -> Explanation:
    history = session.history.get(name)
    previous = next((k for k in history if k != key), None)
    status = "cached" if cached else "will-run"
    if previous is None:
        note = "no earlier key recorded" if not history else "unchanged since it was first built"
        return Explanation(name, key, status, None, [], note=note)
    data = session.store.read_bytes(previous)
    if data is None:
        return Explanation(name, key, status, previous, [], note="the previous key document is no longer in the cache")
    changes = diff_documents(json.loads(data), document)
    return Explanation(name, key, status, previous, changes)


def detect_backends(
    backends: Mapping[str, Backend] | None = None, environ: Mapping[str, str] | None = None
) -> list[Detection]:
    """Every installed backend and whether its toolchain is found here (sorted by name)."""
    from .plugins import DetectContext  # noqa: PLC0415

    backends = backends if backends is not None else _Session.load_backends()
    context = DetectContext(dict(os.environ if environ is None else environ), _journal.FileDigests({}))
    return [backends[name].detect({}, context) for name in sorted(backends)]


def run(
    project: Project,
    target: str,
    args: Iterable[str] = (),
    options: BuildOptions | None = None,
    *,
    drives: Iterable[str] = (),
    console: Callable[[bytes], None] | None = None,
    backends: Mapping[str, Backend] | None = None,
) -> RunResult:
    """Build ``target`` — a unikernel, or a raw disk or ISO image of one — and boot it
    under QEMU as its backend says (exit status, console handling).

    ``drives`` are attached as virtio disks in order: data images of the
    project by name (built along with the target) or image files by path;
    ISO 9660 ones read-only, the others behind a throwaway overlay.
    ``console`` receives the guest's serial output as it arrives.
    """
    image = project.images.get(target)
    unikernel = image.unikernel if image is not None and image.unikernel else target
    spec = project.unikernels.get(unikernel)
    bootable = image is None or image.format in ("raw", "iso")
    if spec is None or not bootable:
        runnable = sorted(project.unikernels) + sorted(
            n for n, i in project.images.items() if i.format in ("raw", "iso")
        )
        raise ConfigError(
            f"'{target}' is not a unikernel or bootable image of project {project.name}",
            hint="run one of: " + (", ".join(runnable) or "(none declared)"),
            reason="not-runnable",
        )
    extra = list(args)
    if image is not None and extra:
        raise ConfigError(f"{target}: an image's command line is fixed when it is built",
                          hint=f"set cmdline in [image.{target}], or run the unikernel {unikernel}",
                          reason="bad-usage")
    from .images import DATA_FORMATS  # noqa: PLC0415

    drives = list(drives)
    data_images = [d for d in drives if d in project.images]
    for name in data_images:
        if project.images[name].unikernel is not None:
            raise ConfigError(f"--drive {name}: a bootable image, not a data image",
                              hint="attach a data image (format " + " | ".join(DATA_FORMATS) + ") or an image file",
                              reason="bad-usage")
    result = Build(project, [target, *data_images], options, backends=backends).run()
    if not result.ok:
        raise result.errors[0] if result.errors else BuildError(f"building {target} failed")
    attached = [_drive(project, d, result.out_dir) for d in drives]
    backend = (backends or _Session.load_backends())[spec.backend]
    launch = backend.launch(spec, result.out_dir / backend.image_metadata(spec).kernel, extra)
    if attached:
        from .runner import QemuLaunch  # noqa: PLC0415

        if not isinstance(launch, QemuLaunch):
            raise ConfigError(f"{target}: {unikernel} runs as a host process ({launch.argv[0]}), "
                              "so --drive cannot attach a virtio disk to it",
                              hint="declare its block devices in the unikernel's table", reason="bad-usage")
        launch = attrs.evolve(launch, drives=(*launch.drives, *attached))
    if image is not None:
        from .runner import QemuLaunch  # noqa: PLC0415

        if not isinstance(launch, QemuLaunch):
            raise ConfigError(
                f"{target}: {unikernel} runs as a host process ({launch.argv[0]}), not under QEMU, "
                "so a disk image of it cannot be booted",
                hint=f"run the unikernel itself: ukbuild run {unikernel}", reason="not-runnable",
            )
        medium = {image.format.replace("raw", "disk"): result.out_dir / image.output}
        launch = attrs.evolve(launch, kernel=None, append="", **medium)
    from .runner import run as boot  # noqa: PLC0415

    return boot(launch, console=console)


def _drive(project: Project, drive: str, out_dir: Path) -> Drive:
    """A ``--drive`` argument as a virtio disk: a built data image of the project, or a file."""
    from .images import DATA_FORMATS  # noqa: PLC0415
    from .runner import Drive  # noqa: PLC0415

    if drive in project.images:
        image = project.images[drive]
        return Drive(out_dir / image.output, readonly=image.format == "iso9660")
    path = Path(drive)
    if not path.is_file():
        data = sorted(n for n, i in project.images.items() if i.format in DATA_FORMATS)
        raise ConfigError(f"--drive {drive}: no data image of that name in project {project.name}, and no such file",
                          hint="name one of: " + (", ".join(data) or "(no data images declared)") + ", or a disk image file",
                          reason="not-found")
    return Drive(path.absolute(), readonly=path.suffix.lower() == ".iso")
