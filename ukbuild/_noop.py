"""The no-op fast path: answer "nothing changed" without loading the project.

After a successful build, the stat data of every file that went into it
(project file, inputs, tool binaries, patches) and of every output written
is recorded next to the outputs — as the build read each one (stat'ed before
it was parsed or hashed) or wrote it, never as it is when the build ends, so
an edit made during the build is seen by the next one.  If none of them
changed and the request is the same, the build is up to date — found with one
``stat`` per file and no imports beyond the standard library, as ninja does
with its log.
"""

from __future__ import annotations

import marshal
import os
import struct

TYPE_CHECKING = False  # (no typing or collections imports on the no-op path)
if TYPE_CHECKING:
    from collections.abc import Mapping

from ._version import __version__

STATE_DIR = ".ukbuild"
FORMAT = 5
#: Stat data, packed: (mtime ns, ctime ns, size, inode) per path, in one bytes object
#: (loading 4 integer objects per path cost a twentieth of a 10k-action no-op).
_STAT = struct.Struct("4q")
StatKey = tuple[int, int, int, int]  # (one path's, unpacked)
#: A path that was missing when recorded (no file has size -1): still missing is unchanged.
_MISSING = (0, 0, -1, 0)
#: A path whose state the build cannot vouch for (it changed while the build read it):
#: never matches, so the next build looks at it again.
UNKNOWN = (0, 0, -2, 0)


def state_dir(out_dir: str, explicit: str | None = None) -> str:
    """Where a build's local state lives: ``explicit``, or ``.ukbuild`` beside the outputs."""
    return explicit or os.path.join(out_dir, STATE_DIR)


def request(project_file: str, targets: list[str], out_dir: str, overrides: dict[str, str]) -> list[object]:
    """What identifies a build request (everything else that matters is a tracked file)."""
    # PATH: backends may find toolchains on it (actions never see it).
    env = sorted((k, v) for k, v in os.environ.items()
                 if (k.startswith("UKBUILD_") and k != "UKBUILD_CACHE_DIR") or k == "PATH")
    return [FORMAT, __version__, os.path.realpath(project_file), sorted(targets),
            os.path.realpath(out_dir), sorted(overrides.items()), env]


def stat_of(path: str) -> StatKey | None:
    """A path's stat data as the record keeps it (None: missing)."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino)


#: What the last failed :func:`check` saw, for :func:`changes` to go on from:
#: (state dir, request, record, index of the first changed path).
_last: tuple[str, list[object], dict, int] | None = None  # type: ignore[type-arg]


def check(state: str, req: list[object]) -> dict | None:  # type: ignore[type-arg]
    """The recorded summary if the last build of ``req`` is still up to date, else None."""
    global _last
    _last = None
    try:
        with open(os.path.join(state, "noop"), "rb") as f:
            data = marshal.loads(f.read())  # one read: marshal.load() on a file reads item by item
    except (OSError, EOFError, ValueError, TypeError):
        return None
    if not isinstance(data, dict) or data.get("request") != req or not _same_environ(data):
        return None
    lstat = os.lstat
    index = 0
    try:
        for path, (mtime, ctime, size, ino) in zip(data["paths"], _STAT.iter_unpack(data["stats"]), strict=True):
            try:
                st = lstat(path)
            except OSError:
                if size != -1:  # gone (or never there, which stays unchanged)
                    _last = (state, req, data, index)
                    return None
                index += 1
                continue
            if st.st_mtime_ns != mtime or st.st_ctime_ns != ctime or st.st_size != size or st.st_ino != ino:
                _last = (state, req, data, index)
                return None
            index += 1
    except (TypeError, ValueError):
        _last = (state, req, data, index)
        return None
    return data["summary"]


def _same_environ(data: dict) -> bool:  # type: ignore[type-arg]
    """Whether the variables toolchain detection read have the values it read."""
    recorded = data.get("environ")
    if not recorded:
        return True
    environ = os.environ
    if "" in recorded:  # detection listed the whole environment
        return {k: v for k, v in recorded.items() if k} == dict(environ)
    return all(environ.get(name) == value for name, value in recorded.items())


def changes(state: str, req: list[object]) -> tuple[dict, list[str], dict] | None:  # type: ignore[type-arg]
    """For the incremental path: (the record, the paths whose stat changed, their stat
    now), or None when there is no record of the same request.  Goes on from where a
    failed :func:`check` of the same state and request stopped."""
    global _last
    last, _last = _last, None
    if last is not None and last[0] == state and last[1] is req:
        data, start = last[2], last[3]
    else:
        try:
            with open(os.path.join(state, "noop"), "rb") as f:
                data = marshal.loads(f.read())
        except (OSError, EOFError, ValueError, TypeError):
            return None
        if not isinstance(data, dict) or data.get("request") != req or not _same_environ(data):
            return None
        start = 0
    paths = data["paths"]
    try:
        stats = stats_of(data)
    except (struct.error, TypeError):
        return None
    if len(paths) != len(stats):
        return None
    changed: list[str] = []
    now: dict[str, StatKey | None] = {}
    for i in range(start, len(paths)):
        path = paths[i]
        found = stat_of(path)
        if found != stats[i]:
            changed.append(path)
            now[path] = found
    return data, changed, now


def stats_of(data: dict) -> list[StatKey | None]:  # type: ignore[type-arg]
    """A record's stat data, path by path (None: missing when recorded; :data:`UNKNOWN`
    never matches a path's stat)."""
    return [None if s == _MISSING else s for s in _STAT.iter_unpack(data["stats"])]


def record(
    state: str,
    req: list[object],
    paths: list[str],
    summary: dict,  # type: ignore[type-arg]
    *,
    stats: dict[str, StatKey | None] | None = None,
    environ: Mapping[str, str | None] | None = None,
) -> str | None:
    """Write the record; ``stats`` gives paths' stat data taken when the build read or
    wrote them (None: missing then; :data:`UNKNOWN`: changed while the build read it).
    Paths without are stat'ed now, which is right only for what cannot have changed
    since the build read it.  Returns the record's token (the incremental record names
    it), or None when it could not be written.  ``environ``: the variables toolchain
    detection read → their values then (None: unset), which must be the same for
    :func:`check` to answer."""
    paths = sorted(set(paths))
    if stats is None:
        found = [stat_of(p) for p in paths]
    else:
        found = [stats[p] if p in stats else stat_of(p) for p in paths]
    packed = b"".join(_STAT.pack(*(s or _MISSING)) for s in found)
    token = os.urandom(8).hex()
    target = os.path.join(state, "noop")
    tmp = f"{target}.{os.getpid()}.tmp"
    try:
        os.makedirs(state, exist_ok=True)
        with open(tmp, "wb") as f:
            marshal.dump({"request": req, "paths": paths, "stats": packed, "summary": summary, "token": token,
                          "environ": dict(environ or {})}, f)
        os.replace(tmp, target)
    except OSError:
        if os.path.exists(tmp):
            os.unlink(tmp)
        return None
    return token


def forget(state: str) -> None:
    try:
        os.unlink(os.path.join(state, "noop"))
    except OSError:
        pass
