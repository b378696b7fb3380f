"""Running one action: stage its inputs, run its command, capture its outputs.

Each action runs in a fresh scratch directory that holds only its declared
inputs, as copies (a tool that rewrites a staged input in place, like
``ranlib`` on a staged archive, must not reach the store — hard links would
let it, even read-only ones, since builds may run as root).  The
environment is explicit: nothing leaks from the caller.
"""

from __future__ import annotations

import errno
import hashlib
import os
import select
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import attrs

from ._journal import stat_key
from ._reapi import ActionResult, Digest, OutputDirectory, OutputFile, OutputSymlink
from ._sandbox import bwrap_available, wrap
from ._store import COMPRESS_MIN, Store
from ._trees import DirEntry, FileEntry, LinkEntry, flatten_tree, scan, special_file, tree_message, walk
from .errors import BuildError, Cancelled, SourceError, UkbuildError
from .model import (
    LOGICAL_WORKDIR,
    Action,
    ArchiveSource,
    ExternalInput,
    FileSource,
    LocalSource,
    OutputInput,
    PathInput,
    SourceInput,
    Toolchain,
)
from .toolchains import needs_wrappers, write_wrappers

#: Set by the executor for every action, and part of every key.
FIXED_ENV = {"LC_ALL": "C", "TZ": "UTC", "SOURCE_DATE_EPOCH": "0"}
#: Attempts to start a command that fails with ETXTBSY.
EXEC_TRIES = 5
#: PATH inside a pinned root file system.
ROOT_PATH = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
WORK_VAR = "${UKBUILD_WORK}"
#: How much of a failed action's log goes into its error (and the action-failed event).
LOG_TAIL_LINES = 25
LOG_TAIL_BYTES = 8192
#: The longest file name most file systems take, in bytes.
NAME_MAX = 255


@attrs.frozen
class Staging:
    """What the scheduler resolved for one action: where each input's bytes come from."""

    action: Action
    key: Digest
    toolchain: Toolchain | None
    dependency_results: Mapping[str, ActionResult]
    hashed_stats: Mapping[str, tuple[int, int, int, int]]
    source_overrides: Mapping[str, str]
    #: The Merkle root of the action's pinned root file system (``Action.rootfs``).
    rootfs_tree: Digest | None = None


def scratch_root(scratch_dir: str | os.PathLike[str] | None) -> Path:
    """Where actions run: ``scratch_dir``, else ``$TMPDIR/ukbuild-UID``."""
    return Path(scratch_dir or Path(os.environ.get("TMPDIR", "/tmp")) / f"ukbuild-{os.getuid()}")


def file_name(name: str, suffix: str = "", *, limit: int = NAME_MAX) -> str:
    """A file name for ``name`` (an action's or toolchain's) of at most ``limit`` bytes.

    Characters other than letters, digits and ``._-`` become ``_``.  A name
    that does not fit with ``suffix`` keeps a readable prefix and ends in a
    short hash of the whole name, so that long names stay apart.
    """
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)
    if len(f"{safe}{suffix}".encode()) <= limit:
        return safe + suffix
    tag = "-" + hashlib.sha256(name.encode(errors="surrogateescape")).hexdigest()[:16] + suffix
    prefix = safe.encode()[: limit - len(tag.encode())].decode(errors="ignore")
    return prefix + tag


def ended(status: int) -> str:
    """How a failed command ended, from its exit status (negative: the signal that killed it)."""
    if status >= 0:
        return f"failed with exit status {status}"
    try:
        return f"killed by {signal.Signals(-status).name}"
    except ValueError:
        return f"killed by signal {-status}"


def action_env(action: Action) -> dict[str, str]:
    """The environment as it enters the key (``${UKBUILD_WORK}`` not yet expanded)."""
    return {**FIXED_ENV, **dict(action.env)}


class Executor:
    """Runs actions in scratch directories under ``scratch_root``."""

    def __init__(
        self,
        store: Store,
        project_root: Path,
        *,
        scratch_root: Path,
        log_dir: Path,
        mirrors: tuple[str, ...] = (),
        keep_scratch: bool = False,
        checks: Mapping[str, Callable[[Path], None]] | None = None,
        sandbox: bool = False,
        offline: bool = False,
    ) -> None:
        self.checks = checks or {}
        self.sandbox = sandbox
        self.offline = offline
        self.store = store
        self.project_root = project_root
        self.scratch_root = scratch_root
        self.log_dir = log_dir
        self.mirrors = mirrors
        self.keep_scratch = keep_scratch
        self._wrappers: dict[str, Path] = {}
        self._roots: dict[Digest, Path] = {}
        self._lock = threading.Lock()

    def log_path(self, action: Action) -> Path:
        return self.log_dir / file_name(action.name, ".log")

    def refuse_offline(self, action: Action) -> None:
        """An offline build runs no step marked as fetching (its result must come from the cache)."""
        if action.network and self.offline:
            raise BuildError(
                f"{action.name}: needs the network to run, and the build is offline",
                hint="build once with the network: its result is cached, and later offline builds reuse it",
                reason="offline",
            )

    def run(self, staging: Staging, cancel: threading.Event) -> ActionResult:
        action = staging.action
        self.refuse_offline(action)
        self.scratch_root.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix="a-", dir=self.scratch_root))
        try:
            work = scratch / "work"
            work.mkdir()
            self._stage(staging, work)
            root = self._root_file_system(staging) if action.rootfs else None
            log = self.log_path(action)
            self._execute(staging, scratch, work, log, cancel, root)
            produced = self._produced(action, work)
            self._check(action, work, log)  # (before "not produced": a backend's check says more)
            return self._capture(action, work, log, _all_present(action, produced, log))
        finally:
            if not self.keep_scratch:
                _remove_tree(scratch)

    # --- staging -------------------------------------------------------------

    def _stage(self, staging: Staging, work: Path) -> None:
        action = staging.action
        deferred: list[tuple[Digest, Path, bool, str]] = []
        for item in action.inputs:
            if isinstance(item, OutputInput):
                self._stage_outputs(item, staging.dependency_results[item.action], work, action, deferred)
                continue
            self._export_deferred(deferred)  # (what comes next may write below the same paths)
            if isinstance(item, PathInput | ExternalInput):
                self._stage_path(item, work, staging.hashed_stats, action)
            elif isinstance(item, SourceInput):
                self._stage_source(item, work, staging.source_overrides.get(item.name))
        self._export_deferred(deferred)

    def _export_deferred(self, deferred: list[tuple[Digest, Path, bool, str]]) -> None:
        """Decompress the large staged blobs, a few at a time (zstd and hashing release the GIL)."""
        if not deferred:
            return
        jobs, items = min(len(deferred), os.cpu_count() or 1, 4), list(deferred)
        deferred.clear()

        def export(job: tuple[Digest, Path, bool, str]) -> None:
            digest, target, executable, producer = job
            if not self.store.export(digest, target, executable=executable):
                raise LostOutput(producer)

        if jobs > 1:
            from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415

            with ThreadPoolExecutor(max_workers=jobs) as pool:
                for _ in pool.map(export, items):
                    pass
        else:
            for job in items:
                export(job)

    def _stage_path(self, item: PathInput | ExternalInput, work: Path, hashed: Mapping[str, tuple[int, int, int, int]], action: Action) -> None:
        src = self.project_root / item.path
        dest = work / item.dest
        if src.is_dir():
            for rel, st in walk(src):
                self._copy_checked(src / rel, dest / rel, st, hashed, action)
        else:  # (a symlink: a copy of what it points to, as keyed)
            self._copy_checked(src, dest, os.stat(src), hashed, action, follow=True)

    def _copy_checked(self, src: Path, dest: Path, st: os.stat_result, hashed: Mapping[str, tuple[int, int, int, int]],
                      action: Action, *, follow: bool = False) -> None:
        expected = hashed.get(str(src))
        if os.path.isdir(src) and not os.path.islink(src):
            dest.mkdir(parents=True, exist_ok=True)
            return
        _check_free(dest, action)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if os.path.islink(src) and not follow:
            os.symlink(os.readlink(src), dest)
            return
        shutil.copyfile(src, dest)
        os.chmod(dest, 0o755 if st.st_mode & 0o111 else 0o644)
        if expected is not None and stat_key(os.stat(src)) != expected:
            raise BuildError(
                f"{action.name}: input {src} changed while the build was running",
                hint="run the build again once the file is saved",
                reason="input-changed",
            )

    def _stage_outputs(
        self, item: OutputInput, result: ActionResult, work: Path, action: Action,
        deferred: list[tuple[Digest, Path, bool, str]] | None = None,
    ) -> None:
        dest_root = work / item.dest if item.dest else work

        def place(path: str) -> Path | None:
            if not item.path:
                return dest_root / path
            if path == item.path:
                return dest_root
            if path.startswith(item.path + "/"):
                return dest_root / path[len(item.path) + 1 :]
            return None

        placed = False
        for f in result.output_files:
            target = place(f.path)
            if target is not None:
                self._export(f.digest, target, f.executable, action, item.action, deferred)
                placed = True
        for link in result.output_symlinks:
            target = place(link.path)
            if target is not None:
                _check_free(target, action)
                target.parent.mkdir(parents=True, exist_ok=True)
                os.symlink(link.target, target)
                placed = True
        for d in result.output_directories:
            prefix = d.path.rstrip("/")
            base = place(prefix)
            if base is None and not item.path.startswith(prefix + "/"):
                continue  # neither the whole directory nor a path inside it
            tree = self.store.read_tree(d.tree_digest)
            if tree is None:
                raise LostOutput(item.action)
            if base is not None:
                base.mkdir(parents=True, exist_ok=True)
                placed = True
            for rel, entry in flatten_tree(tree).items():
                target = place(f"{prefix}/{rel}")
                if target is None:
                    continue
                placed = True
                if isinstance(entry, DirEntry):
                    target.mkdir(parents=True, exist_ok=True)
                elif isinstance(entry, LinkEntry):
                    _check_free(target, action)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.symlink(entry.target, target)
                else:
                    self._export(entry.digest, target, entry.executable, action, item.action, deferred)
        if item.path and not placed:
            raise BuildError(
                f"{action.name}: depends on '{item.path}' of action '{item.action}', which produced no such output",
                hint=f"name a path that '{item.action}' writes (its declared outputs, or a path inside one)",
                reason="missing-dependency-output",
            )

    def _export(
        self, digest: Digest, target: Path, executable: bool, action: Action, producer: str,
        deferred: list[tuple[Digest, Path, bool, str]] | None = None,
    ) -> None:
        _check_free(target, action)
        target.parent.mkdir(parents=True, exist_ok=True)
        if deferred is not None and digest.size >= COMPRESS_MIN:
            # Claim the path now (a later input staged there is a conflict), fill it later.
            os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o755 if executable else 0o644))
            deferred.append((digest, target, executable, producer))
            return
        if not self.store.export(digest, target, executable=executable):
            raise LostOutput(producer)

    def _stage_source(self, item: SourceInput, work: Path, override: str | None) -> None:
        dest = work / item.dest
        source = item.source
        origin = f"source of {item.name}"
        from . import _sources  # noqa: PLC0415 - http.client, tarfile, zipfile: only for sources
        if override is not None and os.path.isfile(override):
            _sources.extract_archive(Path(override), dest, strip=getattr(source, "strip", 1),
                                     origin=f"{origin} (override {override})")
        elif override is not None or isinstance(source, LocalSource):
            root = Path(override) if override is not None else self.project_root / source.path  # type: ignore[union-attr]
            shutil.copytree(root, dest, symlinks=True, dirs_exist_ok=True)
        elif isinstance(source, ArchiveSource):
            digest = _sources.fetch_archive(source, self.store, self.mirrors, offline=self.offline)
            archive = work.parent / "archive"
            if not self.store.export(digest, archive):
                raise SourceError(f"{origin}: the stored archive is corrupt; it was removed, run again", reason="corrupt-entry")
            _sources.extract_archive(archive, dest, strip=source.strip, origin=f"{origin} ({source.url})")
            archive.unlink()
        elif isinstance(source, FileSource) and source.path is not None:
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.project_root / source.path, dest)
        patches = getattr(source, "patches", ())
        _sources.apply_patches(dest, [self.project_root / p for p in patches], origin)

    def _root_file_system(self, staging: Staging) -> Path:
        """The pinned root, written out once per executor (its actions only read it)."""
        action, item = staging.action, staging.action.rootfs
        assert item is not None and staging.rootfs_tree is not None
        if not bwrap_available():
            raise BuildError(
                f"{action.name}: runs in a pinned root file system, which needs bubblewrap, and it cannot run here",
                hint="install bubblewrap (apt-get install bubblewrap) and allow unprivileged user namespaces",
                reason="no-sandbox",
            )
        with self._lock:
            found = self._roots.get(staging.rootfs_tree)
            if found is None:
                found = Path(tempfile.mkdtemp(prefix="rootfs-", dir=self.scratch_root))
                try:
                    self._stage_outputs(item, staging.dependency_results[item.action], found, action)
                    if not (found / "bin").exists() and not (found / "usr").is_dir():
                        raise BuildError(
                            f"{action.name}: rootfs '{item.label}' does not look like a root file system "
                            "(no /bin, no /usr)",
                            hint="name the output directory that holds the tree (e.g. path = \"rootfs\")",
                            reason="bad-rootfs",
                        )
                except BaseException:
                    _remove_tree(found)
                    raise
                self._roots[staging.rootfs_tree] = found
            return found

    # --- running -----------------------------------------------------------

    def _wrapper_dir(self, toolchain: Toolchain) -> Path:
        with self._lock:
            found = self._wrappers.get(toolchain.name)
            if found is None:
                prefix = "tools-" + file_name(toolchain.name, "-", limit=NAME_MAX - 14)  # (mkdtemp adds 8)
                found = Path(tempfile.mkdtemp(prefix=prefix, dir=self.scratch_root))
                write_wrappers(toolchain, found, LOGICAL_WORKDIR)
                self._wrappers[toolchain.name] = found
            return found

    def close(self) -> None:
        for directory in (*self._wrappers.values(), *self._roots.values()):
            _remove_tree(directory)
        self._wrappers.clear()
        self._roots.clear()

    def _execute(
        self, staging: Staging, scratch: Path, work: Path, log: Path, cancel: threading.Event, root: Path | None
    ) -> None:
        action = staging.action
        toolchain = None if root else staging.toolchain  # a pinned root brings its own tools
        path = [str(self._wrapper_dir(toolchain))] if toolchain and needs_wrappers(toolchain) else []
        path += list(toolchain.search_path) if toolchain else list(ROOT_PATH) if root else []
        home = scratch / "home"
        tmp = scratch / "tmp"
        home.mkdir()
        tmp.mkdir()
        sandboxed = self.sandbox or root is not None
        logical = LOGICAL_WORKDIR if sandboxed else str(work)
        merged = {**dict(toolchain.env), **action_env(action)} if toolchain else action_env(action)
        env = {k: v.replace(WORK_VAR, logical) for k, v in merged.items()}
        env.update({"PATH": os.pathsep.join(path), "HOME": str(home),
                    "TMPDIR": "/tmp" if sandboxed else str(tmp), "UKBUILD_WORK": logical})
        argv = [a.replace(WORK_VAR, logical) for a in action.argv]
        cwd = work / action.workdir
        cwd.mkdir(parents=True, exist_ok=True)
        for output in action.outputs:
            (work / output.rstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        if root is not None:
            argv = wrap(argv, work, workdir=action.workdir, writable=[home], network=action.network, root=root)
            cwd = work
        elif self.sandbox:
            # What the action runs must stay visible if it lives under /tmp: the toolchain,
            # and for ukbuild's own programs the interpreter's venv and ukbuild itself.
            visible = [Path(p) for p in path] + [Path(sys.executable).parent.parent, Path(__file__).parent.parent]
            visible += [Path(toolchain.prefix)] if toolchain and toolchain.prefix else []
            argv = wrap(argv, work, workdir=action.workdir, writable=[home], readonly=visible, network=action.network)
            cwd = work
        with open(log, "wb") as out:
            for attempt in range(EXEC_TRIES):
                try:
                    proc = subprocess.Popen(
                        argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out,
                        stderr=subprocess.STDOUT, start_new_session=True,
                    )
                    break
                except FileNotFoundError as exc:
                    hint = (f"the {toolchain.backend} toolchain found has no '{argv[0]}': `ukbuild backends` shows "
                            "what was found and where it looked" if toolchain and toolchain.backend else
                            f"add '{argv[0]}' to the toolchain's tools, or fix the command ({action.origin})")
                    raise BuildError(
                        f"{action.name}: program '{argv[0]}' not found on the toolchain's PATH",
                        detail="PATH=" + env["PATH"], hint=hint, reason="tool-not-found",
                    ) from exc
                except OSError as exc:
                    # ETXTBSY: a process forked by another thread still holds a just-written
                    # script open until it execs; it goes away in microseconds.
                    if exc.errno == errno.ETXTBSY and attempt + 1 < EXEC_TRIES:
                        time.sleep(0.01 * (attempt + 1))
                        continue
                    raise BuildError(
                        f"{action.name}: cannot run '{argv[0]}': {exc.strerror}",
                        hint="make it executable (a script needs chmod +x and a #! line), or run it "
                        f'through its interpreter: command = ["sh", "{argv[0]}"] ({action.origin})',
                        reason="cannot-execute",
                    ) from exc
            status = _wait(proc, cancel)
        if status is None:
            raise Cancelled(f"{action.name}: cancelled")
        if status != 0:
            raise BuildError(
                f"{action.name}: command {ended(status)}",
                detail=_tail(log),
                hint=f"full log: {log}",
                reason="action-failed",
            )

    # --- capturing -----------------------------------------------------------

    def _check(self, action: Action, work: Path, log: Path) -> None:
        for output, name in action.checks:
            check = self.checks.get(name)
            if check is None:
                raise BuildError(
                    f"{action.name}: no check named '{name}' (is its backend installed?)",
                    reason="unknown-check",
                )
            path = work / output.rstrip("/")
            try:
                check(path)
            except UkbuildError as exc:
                raise BuildError(
                    f"{action.name}: {output}: {exc.message}",
                    detail="\n".join(filter(None, [exc.detail, _tail(log)])),
                    hint=exc.hint or f"full log: {log}",
                    reason=exc.reason,
                ) from exc

    def _produced(self, action: Action, work: Path) -> list[tuple[str, Path, os.stat_result | None]]:
        """Each declared output with its ``lstat`` (None: missing), of the kind declared:
        nothing here opens an output, so a named pipe is an error rather than a read that
        never returns."""
        found: list[tuple[str, Path, os.stat_result | None]] = []
        for output in action.outputs:
            path = work / output
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                found.append((output, path, None))
                continue
            mode = st.st_mode
            if output.endswith("/"):
                if not stat.S_ISDIR(mode):
                    raise BuildError(f"{action.name}: output '{output}' is not a directory", reason="wrong-output-kind")
            elif stat.S_ISDIR(mode):
                raise BuildError(
                    f"{action.name}: output '{output}' is a directory",
                    hint=f"declare it as '{output}/' to capture a directory", reason="wrong-output-kind",
                )
            elif not stat.S_ISREG(mode) and not stat.S_ISLNK(mode):
                raise special_file(
                    f"{action.name}: output {output}", mode,
                    hint="have the command write a regular file there, or declare another output",
                )
            found.append((output, path, st))
        return found

    def _capture(
        self, action: Action, work: Path, log: Path, produced: list[tuple[str, Path, os.stat_result]]
    ) -> ActionResult:
        files, dirs, links = [], [], []
        for output, path, st in produced:
            rel = output.rstrip("/")
            if stat.S_ISDIR(st.st_mode):
                try:
                    entries = scan(path, lambda p, _st: self.store.put_file(Path(p)))
                except BuildError as exc:  # a special file: name it as the action sees it
                    message = exc.message.replace(f"{work}/", "", 1)
                    raise BuildError(f"{action.name}: output {message}", hint=exc.hint, reason=exc.reason) from exc
                root_digest, tree, _ = tree_message(entries)
                tree_digest = self.store.put_bytes(tree.encode())
                dirs.append(OutputDirectory(rel, tree_digest, root_digest))
            elif stat.S_ISLNK(st.st_mode):
                links.append(OutputSymlink(rel, os.readlink(path)))
            else:
                files.append(OutputFile(rel, self.store.put_file(path), bool(st.st_mode & 0o111)))
        log_digest = self.store.put_file(log)
        return ActionResult(tuple(files), tuple(dirs), tuple(links), 0, log_digest, None)


class LostOutput(Exception):
    """A stored output of ``producer`` is gone or corrupt: the producer must run again."""

    def __init__(self, producer: str) -> None:
        super().__init__(producer)
        self.producer = producer


def _all_present(
    action: Action, produced: list[tuple[str, Path, os.stat_result | None]], log: Path
) -> list[tuple[str, Path, os.stat_result]]:
    """``produced``, once every declared output is there; else the error naming the first missing."""
    for output, _, st in produced:
        if st is None:
            raise missing_output(action, output, log)
    return [(output, path, st) for output, path, st in produced if st is not None]


def missing_output(action: Action, output: str, log: Path) -> BuildError:
    """The error for a declared output the command did not write (run here or remotely)."""
    return BuildError(
        f"{action.name}: declared output '{output}' was not produced",
        detail=_tail(log),
        hint=f"check the command writes {output} relative to the scratch root; full log: {log}",
        reason="missing-output",
    )


def output_entries(result: ActionResult, store: Store) -> dict[str, FileEntry | LinkEntry | DirEntry] | None:
    """Everything an action produced as one flat tree (``None`` if a tree blob is lost)."""
    entries: dict[str, FileEntry | LinkEntry | DirEntry] = {}
    for f in result.output_files:
        entries[f.path] = FileEntry(f.digest, f.executable)
    for link in result.output_symlinks:
        entries[link.path] = LinkEntry(link.target)
    for d in result.output_directories:
        tree = store.read_tree(d.tree_digest)
        if tree is None:
            return None
        entries[d.path] = DirEntry()
        for rel, entry in flatten_tree(tree).items():
            entries[f"{d.path}/{rel}"] = entry
    return entries


def _wait(proc: subprocess.Popen[bytes], cancel: threading.Event) -> int | None:
    """The exit status, or None after killing the process group on cancellation.

    Waits on a pidfd, so the exit is seen at once (``Popen.wait(timeout)`` polls with
    sleeps of up to 50 ms); ``cancel`` is checked every 50 ms meanwhile.
    """
    try:
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        pidfd = None
    try:
        while True:
            try:
                if pidfd is None:
                    return proc.wait(timeout=0.05)
                if select.select([pidfd], [], [], 0.05)[0]:
                    return proc.wait()
                if cancel.is_set():
                    _kill_group(proc)
                    return None
            except subprocess.TimeoutExpired:
                if cancel.is_set():
                    _kill_group(proc)
                    return None
            except KeyboardInterrupt:
                _kill_group(proc)
                raise
    finally:
        if pidfd is not None:
            os.close(pidfd)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    for sig, grace in ((signal.SIGTERM, 2.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return
            time.sleep(0.02)


#: Control characters other than newline and tab, as escapes: a log may hold anything
#: (binary output, terminal escape sequences), and its tail is printed to a terminal.
_VISIBLE = {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0)) if c not in (0x09, 0x0A)} | {0x0D: "\\r"}


def _tail(log: Path) -> str:
    """The end of a log for an error: at most ``LOG_TAIL_LINES`` lines and ``LOG_TAIL_BYTES``
    bytes, control characters and bytes that are not UTF-8 escaped.  A line cut by the byte
    cap starts with ``… (N bytes cut)``, N counting everything in the log before it."""
    try:
        with open(log, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            offset = f.seek(max(0, size - LOG_TAIL_BYTES - 2))  # (+ the last newline, + the byte before)
            data = f.read(size - offset).removesuffix(b"\n")
    except OSError:
        return ""
    keep = LOG_TAIL_BYTES
    while True:  # escapes make the text longer than its bytes: show fewer until it fits
        start = max(1 if offset else 0, len(data) - keep)
        lines = data[start:].split(b"\n")
        mid_line = start > 0 and data[start - 1] != 0x0A
        if len(lines) > LOG_TAIL_LINES:
            lines, mid_line = lines[-LOG_TAIL_LINES:], False
        shown = b"\n".join(lines)
        if mid_line:
            shown = shown.lstrip(bytes(range(0x80, 0xC0)))  # no half character
        text = shown.decode(errors="backslashreplace").translate(_VISIBLE)
        if len(text.encode()) <= LOG_TAIL_BYTES or keep <= 256:
            break
        keep //= 2
    return f"… ({offset + len(data) - len(shown)} bytes cut) {text}" if mid_line else text


def _check_free(target: Path, action: Action) -> None:
    if os.path.lexists(target):
        raise BuildError(
            f"{action.name}: two inputs are staged at the same path {target.name!r}",
            hint="stage one of them elsewhere with { action = …, at = \"dir\" }",
            reason="input-conflict",
        )


def _remove_tree(path: Path) -> None:
    def unprotect(func, p, _exc):  # type: ignore[no-untyped-def]
        try:
            os.chmod(os.path.dirname(p), 0o755)
            os.chmod(p, 0o755)
            func(p)
        except OSError:
            pass

    if sys.version_info >= (3, 12):
        shutil.rmtree(path, onexc=unprotect)
    else:
        shutil.rmtree(path, onerror=unprotect)
