"""The ``ukbuild`` command: parse arguments, call the API, format what it returns.

Exit codes: 0 success, 1 build failure, 2 configuration or usage error,
130 interrupted, 143 (129) terminated by SIGTERM (SIGHUP), 141 standard output
closed by its reader (as for SIGPIPE).
Known errors print ``error: …`` with detail and hint; only bugs show a
traceback.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing and argparse are imported only when needed: ~10 ms of every no-op
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Sequence
    from pathlib import Path
    from typing import TextIO

    from ._store import Store


def _parser() -> argparse.ArgumentParser:
    import argparse  # noqa: PLC0415

    parser = argparse.ArgumentParser(prog="ukbuild", description="Build unikernel images from a content-addressed graph.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for ukbuild errors too")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def project_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("-C", dest="directory", default=".", help="project directory (default: .)")
        p.add_argument("-f", dest="file", help="project file (default: DIR/ukbuild.toml)")
        p.add_argument("-o", "--out-dir", help="where outputs are written (default: DIR/out)")
        p.add_argument("--cache-dir", help="artefact cache (default: $UKBUILD_CACHE_DIR or ~/.cache/ukbuild)")
        p.add_argument("--state-dir", help="journal, no-op record and logs (default: OUT/.ukbuild)")

    b = sub.add_parser("build", help="build targets (default: the project's defaults)")
    project_args(b)
    b.add_argument("targets", nargs="*", metavar="TARGET")
    b.add_argument("-j", "--jobs", type=_jobs, help="parallel actions (default: cores; max(32, 8 x cores) with --remote-executor)")
    b.add_argument("-k", "--keep-going", action="store_true", help="go on with independent actions after a failure")
    b.add_argument("--json", action="store_true", help="write newline-delimited JSON events to stdout")
    b.add_argument("--no-cache", action="store_true", help="neither read nor write the artefact cache")
    b.add_argument("--override", action="append", default=[], metavar="PKG=PATH",
                   help="build PKG from a local tree or archive instead of its pinned source")
    b.add_argument("--mirror", action="append", default=[], metavar="DIR|URL", help="look for archives here first")
    b.add_argument("--keep-scratch", action="store_true", help="keep each action's scratch dir")
    b.add_argument("--scratch-dir", help="where actions run (default: $TMPDIR/ukbuild-UID)")
    b.add_argument("--sandbox", action="store_true",
                   help="run actions under bubblewrap: no network, no writes outside their scratch dir")
    b.add_argument("--offline", action="store_true",
                   help="fetch nothing: archives only from the cache or local mirrors; steps marked "
                   "network = true only as cache hits")
    b.add_argument("--depfile", metavar="FILE", help="write a Make depfile: the first output depends on every input read")
    b.add_argument("--remote-cache", metavar="URL", default=os.environ.get("UKBUILD_REMOTE_CACHE"),
                   help="shared cache: http(s)://… (bazel-remote protocol) or grpc(s)://… (REAPI); "
                   "credentials from UKBUILD_REMOTE_USERNAME/UKBUILD_REMOTE_PASSWORD")
    b.add_argument("--remote-instance", metavar="NAME", help="REAPI instance name")
    b.add_argument("--remote-push", action="store_true", help="upload results (default: read only)")
    b.add_argument("--remote-timeout", type=float, metavar="SECONDS", help="per request (default 10)")
    b.add_argument("--remote-executor", metavar="URL", default=os.environ.get("UKBUILD_REMOTE_EXECUTOR"),
                   help="run actions on a REAPI execution service, grpc(s)://HOST:PORT (-j defaults to "
                   "max(32, 8 x cores)); same instance, credentials and timeout options as --remote-cache")

    g = sub.add_parser("graph", help="print the action graph (Graphviz dot)")
    project_args(g)
    g.add_argument("targets", nargs="*", metavar="TARGET")

    e = sub.add_parser("explain", help="show what changed in a target's key since its previous build")
    project_args(e)
    e.add_argument("target", metavar="TARGET")
    e.add_argument("--json", action="store_true")
    e.add_argument("--override", action="append", default=[], metavar="PKG=PATH")

    r = sub.add_parser("run", help="build a unikernel and boot it (QEMU); exits with the guest's status")
    project_args(r)
    r.add_argument("target", metavar="UNIKERNEL")
    r.add_argument("--drive", action="append", default=[], metavar="IMAGE",
                   help="attach a virtio disk: a data image of the project by name, or an image file (repeatable)")
    r.usage = "ukbuild run [options] UNIKERNEL [-- ARGS …]  (ARGS are appended to its command line)"

    ps = sub.add_parser("push", help="build an OCI image and push it to a registry")
    project_args(ps)
    ps.add_argument("image", metavar="IMAGE", help="an [image.NAME] of format oci")
    ps.add_argument("reference", metavar="REF", help="host[:port]/repository[:tag]")
    ps.add_argument("--insecure", action="store_true", help="plain HTTP (only to a loopback registry)")
    ps.add_argument("--ca-file", help="trust this CA certificate for the registry's TLS")

    bk = sub.add_parser("backends", help="installed backends and whether their toolchains are found")
    bk.add_argument("--json", action="store_true", help="one JSON document (schema: backends-v1)")

    c = sub.add_parser("cache", help="inspect and maintain the artefact cache")
    c.add_argument("--cache-dir", help="artefact cache (default: $UKBUILD_CACHE_DIR or ~/.cache/ukbuild)")
    csub = c.add_subparsers(dest="cache_command", required=True, metavar="ACTION")
    csub.add_parser("stats", help="entries and sizes")
    gc = csub.add_parser("gc", help="evict least recently used entries")
    gc.add_argument("--max-size", help="evict down to this size (e.g. 5G; default: 80%% of the quota)")
    v = csub.add_parser("verify", help="check every entry; non-zero exit if anything is wrong")
    v.add_argument("--repair", action="store_true", help="remove what is broken so the next build rebuilds it")
    return parser


def _jobs(text: str) -> int:
    """``-j``'s value: a whole number of parallel actions, at least 1."""
    import argparse  # noqa: PLC0415

    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number of parallel actions, 1 or more")
    return int(text)


def _parse(argv: list[str]) -> argparse.Namespace:
    """argparse's reading of ``argv``; for ``run``, the words after ``--`` are the guest's
    arguments, and ukbuild's options may come before or after UNIKERNEL."""
    guest: list[str] = []
    command = next((word for word in argv if not word.startswith("-")), None)
    if command == "run" and "--" in argv:
        cut = argv.index("--")
        argv, guest = argv[:cut], argv[cut + 1 :]
    parser = _parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        hint = (f"; the guest's arguments go after --: ukbuild run {args.target} -- {' '.join(unknown)}"
                if args.command == "run" and not unknown[0].startswith("-") else "")
        parser.error(f"unrecognized arguments: {' '.join(unknown)}{hint}")
    if args.command == "run":
        args.args = guest
    return args


def _overrides(values: list[str]) -> dict[str, str]:
    from .errors import ConfigError  # noqa: PLC0415

    result = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or not name or not path:
            raise ConfigError(f"--override {value}: expected PKG=PATH", reason="bad-override")
        result[name] = os.path.abspath(path)
    return result


#: ``build`` options the plain parser below takes, by spelling: (dest, takes a value).
_BUILD_OPTIONS = {
    "-C": ("directory", True), "-f": ("file", True), "-o": ("out_dir", True), "--out-dir": ("out_dir", True),
    "--cache-dir": ("cache_dir", True), "--state-dir": ("state_dir", True), "-j": ("jobs", True),
    "--jobs": ("jobs", True), "-k": ("keep_going", False), "--keep-going": ("keep_going", False),
    "--json": ("json", False),
}


def _build_args(argv: list[str]) -> argparse.Namespace | None:
    """``argv`` parsed as argparse would, for the common ``build`` command lines only, else None.

    Building the argparse parser costs more than a 1k-action no-op check; this takes the
    options above, each spelled whole (``-j 2``, ``-j2``, ``--jobs=2``), and the targets as
    one run of words.  Anything else (help, other options, abbreviations, a value starting
    with ``-``) goes to argparse, which gives the same result or the usage error.
    """
    if not argv or argv[0] != "build":
        return None
    values: dict[str, object] = {
        "command": "build", "debug": False, "directory": ".", "file": None, "out_dir": None, "cache_dir": None,
        "state_dir": None, "jobs": None, "keep_going": False, "json": False, "no_cache": False,
        "override": [], "mirror": [], "keep_scratch": False, "scratch_dir": None, "sandbox": False,
        "offline": False, "depfile": None, "remote_cache": os.environ.get("UKBUILD_REMOTE_CACHE"), "remote_instance": None,
        "remote_push": False, "remote_timeout": None, "remote_executor": os.environ.get("UKBUILD_REMOTE_EXECUTOR"),
    }
    targets: list[str] = []
    after_targets = False  # an option came after the targets: no more targets
    i = 1
    while i < len(argv):
        word = argv[i]
        i += 1
        if not word.startswith("-") or word == "-":
            if after_targets:
                return None  # targets on both sides of an option: argparse refuses such lines
            targets.append(word)
            continue
        after_targets = bool(targets)
        name, eq, value = word.partition("=") if word.startswith("--") else (word[:2], "", word[2:])
        option = _BUILD_OPTIONS.get(name)
        if option is None or "=" in value:
            return None
        dest, takes_value = option
        if not takes_value:
            if eq or value:
                return None
            values[dest] = True
            continue
        if not eq and not value:
            if i == len(argv):
                return None
            value = argv[i]
            i += 1
        if value.startswith("-") or (name.startswith("--") and eq and not value):
            return None
        if dest == "jobs":
            if not value.isdigit() or not value.isascii() or int(value) < 1:
                return None
            values[dest] = int(value)
        else:
            values[dest] = value
    from types import SimpleNamespace  # noqa: PLC0415

    return SimpleNamespace(**values, targets=targets)  # type: ignore[return-value]


def _project_file(args: argparse.Namespace) -> str:
    return args.file or os.path.join(args.directory, "ukbuild.toml")


def main(argv: Sequence[str] | None = None, *, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    return _main(argv, stdout or sys.stdout, stderr or sys.stderr)[0]


def _main(argv: Sequence[str] | None, out: TextIO, err: TextIO) -> tuple[int, bool]:
    """(exit code, whether the no-op fast path answered)."""
    args = _build_args(sys.argv[1:] if argv is None else list(argv))
    if args is None:
        try:
            args = _parse(sys.argv[1:] if argv is None else list(argv))
        except SystemExit as exc:
            return (int(exc.code or 0) if exc.code != 2 else 2), False
    if args.command in ("build", "run") and _may_name_app(args):  # its services, compose and k8s files
        from .app.cli import app_file  # noqa: PLC0415

        file = app_file(args)
        if file is not None:
            from .app.cli import dispatch as app_dispatch  # noqa: PLC0415

            return _full(args, out, err, lambda: app_dispatch(args, file, out, err)), False
    if args.command == "build":
        code = _fast_noop(args, out, err)
        if code is not None:
            return code, True
    return _full(args, out, err), False


def _may_name_app(args: argparse.Namespace) -> bool:
    """A cheap test before importing ``ukbuild.app``: a ``.toml`` argument, or an app.toml without ukbuild.toml."""
    named = [*(args.targets if args.command == "build" else [args.target]), getattr(args, "file", None) or ""]
    if any(n.endswith(".toml") for n in named):
        return True
    return not os.path.exists(os.path.join(args.directory, "ukbuild.toml")) and os.path.exists(
        os.path.join(args.directory, "app.toml"))


def _full(args: argparse.Namespace, out: TextIO, err: TextIO, body: Callable[[], int | None] | None = None) -> int:
    from .errors import UkbuildError  # noqa: PLC0415

    try:
        return body() if body is not None else _dispatch(args, out, err)  # type: ignore[return-value]
    except UkbuildError as exc:
        if args.debug:
            raise
        print(f"error: {exc.message}", file=err)
        if exc.detail:
            print("\n".join("  " + line for line in exc.detail.splitlines()), file=err)
        if exc.hint:
            print(f"hint: {exc.hint}", file=err)
        return exc.exit_code
    except KeyboardInterrupt as exc:
        signum = exc.signum if isinstance(exc, _Terminated) else 2
        print(f"error: {'interrupted' if signum == 2 else 'terminated'}", file=err)
        return 128 + signum


class _Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP (``timeout``, ``make``, a CI runner, ``docker stop``, a closed
    terminal): the build stops as on Ctrl-C — commands killed, nothing partial kept."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _terminate(signum: int, _frame: object) -> None:
    raise _Terminated(signum)


def run() -> None:
    """Console-script entry point.

    After a fast no-op answer it exits without the interpreter's tear-down
    (freeing the loaded state takes longer than the check itself).  The cyclic
    garbage collector runs 30 times less often than by default: a build makes
    few cycles, and the collections of imports and decoded trees cost 7–20 ms
    of a build.
    """
    import gc  # noqa: PLC0415
    import signal  # noqa: PLC0415

    gc.set_threshold(20_000, 10, 10)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(signum) == signal.SIG_DFL:  # (nohup's ignored SIGHUP stays ignored)
            signal.signal(signum, _terminate)
    try:
        code, fast = _main(None, sys.stdout, sys.stderr)
        sys.stdout.flush()
    except BrokenPipeError:  # the reader went away (`ukbuild graph | head`): stop quietly, as cat does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # for the interpreter's last flush
        code, fast = 141, False
    if fast:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def _fast_noop(args: argparse.Namespace, out: TextIO, err: TextIO) -> int | None:
    """Answer an unchanged rebuild from the recorded state, importing nothing heavy
    (or, when only some actions' inputs changed, rebuild just what they reach)."""
    if args.no_cache or args.remote_push or (args.depfile and not os.path.isfile(args.depfile)):
        return None
    from . import _noop  # noqa: PLC0415

    file = os.path.abspath(_project_file(args))
    out_dir = os.path.abspath(args.out_dir or os.path.join(os.path.dirname(file), "out"))
    try:
        overrides = _overrides(args.override)
    except Exception:  # noqa: BLE001 - the full path reports it properly
        return None
    state = _noop.state_dir(out_dir, os.path.abspath(args.state_dir) if args.state_dir else None)
    req = _noop.request(file, args.targets, out_dir, overrides)
    summary = _noop.check(state, req)
    if summary is None:  # some files changed: maybe only inputs of a few actions
        from ._incremental import from_cli  # noqa: PLC0415

        return _full(args, out, err, lambda: from_cli(args, out, err, state=state, request=req, overrides=overrides))
    actions = summary["actions"]
    if args.json:
        from .events import EventBus, to_json_line  # noqa: PLC0415

        bus = EventBus()
        bus.subscribe(lambda e: out.write(to_json_line(e)))
        from ._cachedir import default_cache_dir  # noqa: PLC0415

        bus.emit("build-started", project=summary["project"], targets=summary["targets"],
                 jobs=args.jobs or _default_jobs(args), out_dir=out_dir,
                 cache_dir=os.path.abspath(args.cache_dir or default_cache_dir()))
        for name, key in sorted(actions.items()):
            bus.emit("action-cached", action=name, key=key, via="journal")
        bus.emit("build-finished", ok=True, executed=0, cached=len(actions), failed=0, skipped=0, seconds=0,
                 outputs=summary["outputs"], overrides=overrides)
    else:
        out.write(f"ukbuild: up to date: {len(actions)} actions, 0 executed, {len(actions)} cached\n")
        out.write(f"outputs: {out_dir}\n")
    return 0


def _dispatch(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from pathlib import Path  # noqa: PLC0415

    from . import api  # noqa: PLC0415

    if args.command == "cache":
        return _cache(args, out, err)
    if args.command == "backends":
        return _backends(args.json, out)
    project = api.load_project(_project_file(args))
    if args.command == "graph":
        return _graph(project, args.targets, out)
    options = api.BuildOptions(
        out_dir=Path(args.out_dir).absolute() if args.out_dir else None,
        cache_dir=Path(args.cache_dir).absolute() if args.cache_dir else None,
        overrides=_overrides(getattr(args, "override", [])),
        state_dir=Path(args.state_dir).absolute() if args.state_dir else None,
        **({} if args.command in ("explain", "run", "push") else {
            "jobs": args.jobs or _default_jobs(args), "keep_going": args.keep_going, "use_cache": not args.no_cache,
            "mirrors": tuple(args.mirror), "keep_scratch": args.keep_scratch,
            "remote": _remote(args, args.remote_cache, push=args.remote_push),
            "remote_executor": _remote(args, args.remote_executor, push=True),
            "scratch_dir": Path(args.scratch_dir).absolute() if args.scratch_dir else None,
            "sandbox": args.sandbox, "offline": args.offline,
        }),
    )
    if args.command == "explain":
        return _explain(project, args.target, options, args.json, out)
    if args.command == "push":
        from .publish import credentials_from_env, push_image  # noqa: PLC0415

        report = push_image(project, args.image, args.reference, options=options,
                            credentials=credentials_from_env(os.environ), insecure=args.insecure,
                            ca_file=args.ca_file)
        out.write(f"pushed {report.reference}@{report.digest}: {len(report.uploaded)} blobs uploaded, "
                  f"{len(report.skipped)} already there\n")
        for tag in report.referrers_fallback_tags:
            out.write(f"  referrers: {tag}\n")
        return 0
    if args.command == "run":

        def show(chunk: bytes) -> None:
            out.write(chunk.decode(errors="replace"))
            out.flush()

        return api.run(project, args.target, args.args, options, drives=args.drive, console=show).status
    if args.depfile and os.path.isdir(args.depfile):
        from .errors import ConfigError  # noqa: PLC0415

        raise ConfigError(f"--depfile {args.depfile}: is a directory", hint="name the file to write, e.g. out.d",
                          reason="bad-value")
    build = api.Build(project, args.targets, options)
    from ._progress import attach  # noqa: PLC0415

    attach(build, out, err, json_mode=args.json)
    try:
        result = build.run()
    except KeyboardInterrupt:
        build.cancel()
        raise
    if not result.ok:
        return 1
    if args.depfile:
        first = next((o for t in build.targets for o in project.actions[t].outputs), None)
        if first is not None:
            _write_depfile(Path(args.depfile), result.out_dir / first.rstrip("/"), result.inputs)
    if not args.json:
        print(f"outputs: {result.out_dir}", file=out)
        for target in build.targets:
            for path in project.actions[target].outputs:
                print(f"  {path}", file=out)
    return 0


def _default_jobs(args: argparse.Namespace) -> int:
    """Local cores; many more when a remote executor runs the actions."""
    cores = os.cpu_count() or 1
    return max(32, 8 * cores) if args.remote_executor else cores


def _remote(args: argparse.Namespace, url: str | None, *, push: bool):  # type: ignore[no-untyped-def]
    if not url:
        return None
    from .remote import RemoteConfig  # noqa: PLC0415

    table: dict[str, object] = {"url": url, "push": push}
    if args.remote_instance:
        table["instance"] = args.remote_instance
    if args.remote_timeout is not None:
        table["timeout"] = args.remote_timeout
    return RemoteConfig.from_mapping(table, os.environ)


def _write_depfile(path, target, inputs) -> None:  # type: ignore[no-untyped-def]
    """``target: input …`` in Make syntax, paths relative to the current directory."""
    from .errors import ConfigError  # noqa: PLC0415

    def escape(p: str) -> str:
        return os.path.relpath(p).replace("$", "$$").replace(" ", "\\ ").replace("#", "\\#")

    lines = [f"{escape(str(target))}:"] + [f" {escape(i)}" for i in inputs]
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(" \\\n".join(lines) + "\n")
        os.replace(tmp, path)
    except OSError as exc:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise ConfigError(f"--depfile {path}: cannot write it: {exc.strerror}",
                          hint="name a file in a directory this user can write", reason="bad-value") from exc


def _graph(project, targets: list[str], out: TextIO) -> int:  # type: ignore[no-untyped-def]
    from ._graph import closure, order  # noqa: PLC0415
    from .api import _resolve_targets  # noqa: PLC0415

    def quoted(name: str) -> str:
        """A DOT quoted ID: names of foreach actions hold file names, which may hold '"', '\\'
        (which would escape the closing quote) or a newline."""
        return '"' + name.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'

    names = order(project.actions, closure(project.actions, _resolve_targets(project, targets)))
    out.write(f"digraph {quoted(project.name)} {{\n  rankdir=LR;\n")
    for name in names:
        out.write(f"  {quoted(name)};\n")
        for dep in sorted(set(project.actions[name].dependencies)):
            out.write(f"  {quoted(dep)} -> {quoted(name)};\n")
    out.write("}\n")
    return 0


def _explain(project, target: str, options, as_json: bool, out: TextIO) -> int:  # type: ignore[no-untyped-def]
    import json  # noqa: PLC0415

    from .api import explain  # noqa: PLC0415

    for item in explain(project, target, options):
        if as_json:
            out.write(json.dumps({
                "action": item.action, "key": str(item.key) if item.key else None, "status": item.status,
                "previous": str(item.previous) if item.previous else None, "blocked_by": item.blocked_by,
                "note": item.note, "changes": [{"field": f, "old": o, "new": n} for f, o, n in item.changes],
            }, sort_keys=True) + "\n")
            continue
        if item.status == "blocked":
            out.write(f"{item.action}: depends on {item.blocked_by}, which must run first; explain that\n")
            continue
        state = "cached" if item.status == "cached" else "will run"
        out.write(f"{item.action}: {state}, key {item.key}\n")
        if item.note:
            out.write(f"  ({item.note})\n")
        elif not item.changes:
            out.write(f"  unchanged since key {item.previous}\n")
        for field, old, new in item.changes:
            out.write(f"  {field}: {_short(old)} -> {_short(new)}\n")
    return 0


def _backends(as_json: bool, out: TextIO) -> int:
    import json  # noqa: PLC0415

    from .api import detect_backends  # noqa: PLC0415

    found = detect_backends()
    if as_json:
        out.write(json.dumps({"version": 1, "backends": [{
            "name": d.backend, "found": d.found, "version": d.version, "reason": d.reason,
            "env_var": d.env_var, "searched": list(d.searched), "targets": dict(d.targets),
            "prefix": d.toolchain.prefix if d.toolchain else None,
        } for d in found]}, indent=2, sort_keys=True) + "\n")
        return 0
    for d in found:
        if d.found:
            where = f" at {d.toolchain.prefix}" if d.toolchain and d.toolchain.prefix else ""
            out.write(f"{d.backend}: found{where}: {d.version}\n")
        else:
            fix = f"; set {d.env_var} to its install prefix" if d.env_var else ""
            out.write(f"{d.backend}: not found: {d.reason}{fix}\n")
        if d.targets:
            out.write("  targets: " + ", ".join(f"{t} ({'yes' if ok else 'no'})" for t, ok in sorted(d.targets.items())) + "\n")
    if not found:
        out.write("no backends installed\n")
    return 0


def _short(value: object) -> str:
    import json  # noqa: PLC0415

    return "(absent)" if value is None else value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _cache(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from pathlib import Path  # noqa: PLC0415

    from ._cachedir import default_cache_dir  # noqa: PLC0415
    from ._store import Store  # noqa: PLC0415
    from .errors import ConfigError  # noqa: PLC0415

    root = Path(args.cache_dir or default_cache_dir()).absolute()
    if os.path.lexists(root) and not root.is_dir():
        raise ConfigError(f"cache {root}: is a file, not a directory",
                          hint="point --cache-dir or UKBUILD_CACHE_DIR at the cache's directory", reason="bad-directory")
    if not root.exists():  # (a Store would create one)
        out.write(f"cache {root}: there is no cache there yet\n")
        return 0
    with Store(root, warn=lambda m: print(f"warning: {m}", file=err)) as store:  # (closing drops a spill area)
        return _cache_command(args, store, root, out)


def _cache_command(args: argparse.Namespace, store: Store, root: Path, out: TextIO) -> int:
    from ._store import GC_GRACE_SECONDS, parse_size  # noqa: PLC0415
    from .errors import ConfigError  # noqa: PLC0415

    if args.cache_command == "stats":
        s = store.stats()
        out.write(f"cache: {root}\nblobs: {s.blobs} ({_human(s.blob_bytes)})\n"
                  f"action results: {s.actions} ({_human(s.action_bytes)})\ntemp files: {s.temp_files}\n")
        return 0
    if args.cache_command == "gc":
        try:
            target = parse_size(args.max_size) if args.max_size else None
        except ValueError as exc:
            raise ConfigError(f"--max-size: {exc}", reason="bad-value") from exc
        done = store.gc(target)
        if done is None:
            out.write("another process is collecting garbage; skipped\n")
        else:
            out.write(f"removed {done[0]} entries, freed {_human(done[1])}\n")
            left = store.stats()
            if target is not None and left.blob_bytes + left.action_bytes > target:
                out.write(f"{_human(left.blob_bytes + left.action_bytes)} left: entries used in the last "
                          f"{GC_GRACE_SECONDS // 60} minutes are kept, as running builds may need them\n")
        return 0
    problems = store.verify(repair=args.repair)
    for problem in problems:
        out.write(f"{problem}\n")
    verb = "removed" if args.repair else "found"
    out.write(f"{verb} {len(problems)} problem(s) in {root}\n" if problems else f"cache {root} is clean\n")
    return 1 if problems else 0


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.1f} {unit}" if unit != "B" else f"{size} B"
        value /= 1024
    return f"{size} B"
