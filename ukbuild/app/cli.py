"""``ukbuild build APP`` and ``ukbuild run APP``: the CLI side of apps, thin over :mod:`ukbuild.app`."""

from __future__ import annotations

import argparse
import os
import signal
from pathlib import Path
from typing import TextIO

from .model import is_app_file

DEFAULT_NAME = "app.toml"


def app_file(args: argparse.Namespace) -> Path | None:
    """The app file a ``build`` or ``run`` command names, or None for a project command.

    ``ukbuild build APP`` / ``ukbuild run APP`` with APP an app file; ``-f
    APP``; or ``-C DIR`` where DIR has an ``app.toml`` and no ``ukbuild.toml``.
    """
    candidates = []
    if args.command == "build" and len(args.targets) == 1:
        candidates.append(args.targets[0])
    if args.command == "run":
        candidates.append(args.target)
    if getattr(args, "file", None):
        candidates.append(args.file)
    for candidate in candidates:
        path = Path(candidate)
        if not path.is_absolute() and not path.exists():
            path = Path(args.directory) / candidate
        if path.suffix == ".toml" and is_app_file(path):
            return path
    directory = Path(args.directory)
    if not args.file and not (directory / "ukbuild.toml").exists() and is_app_file(directory / DEFAULT_NAME):
        if args.command == "build" and not args.targets:
            return directory / DEFAULT_NAME
    return None


def dispatch(args: argparse.Namespace, file: Path, out: TextIO, err: TextIO) -> int:
    from ukbuild import api
    from ukbuild.cli import _overrides

    from . import build_app, load_app, plan_services
    from .run import exit_status, run_app

    app = load_app(file)
    options = api.BuildOptions(
        out_dir=Path(args.out_dir).absolute() if args.out_dir else None,
        cache_dir=Path(args.cache_dir).absolute() if args.cache_dir else None,
        **({"jobs": args.jobs} if getattr(args, "jobs", None) else {}),
        **({"keep_going": args.keep_going, "use_cache": not args.no_cache, "overrides": _overrides(args.override),
            "mirrors": tuple(args.mirror)} if args.command == "build" else {}),
    )
    json_mode = getattr(args, "json", False)

    def attach(scope: str, build: object) -> None:
        from ukbuild._progress import attach as progress

        if not json_mode:
            err.write(f"{scope}:\n")
        progress(build, out, err, json_mode=json_mode)  # type: ignore[arg-type]

    built = build_app(app, options, on_build=attach)
    if args.command == "build":
        if not json_mode:
            print(f"app {app.name}: {built.count('executed')} executed, {built.count('cached')} cached", file=out)
            print(f"outputs: {built.out_dir}", file=out)
            for name, path in sorted({**built.launchers, **{f"{k} (urunc)": v for k, v in built.urunc.items()}}.items()):
                print(f"  {name}: {os.path.relpath(path, built.out_dir)}", file=out)
            for path in built.manifests:
                print(f"  {os.path.relpath(path, built.out_dir)}", file=out)
        return 0
    plans = plan_services(app)

    pending: dict[str, bytes] = {}

    def show(service: str, chunk: bytes) -> None:
        """Each complete console line, prefixed with its service."""
        data = pending.get(service, b"") + chunk
        *lines, pending[service] = data.split(b"\n")
        out.write("".join(f"{service} | {line.decode(errors='replace').rstrip(chr(13))}\n" for line in lines))
        out.flush()

    def terminate(_sig: int, _frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        for name, port in sorted((n, p) for n, s in app.services.items() for p in s.ports):
            print(f"{name}: 127.0.0.1:{port.host} -> {app.services[name].address}:{port.guest}", file=err)
        statuses = run_app(app, built, plans, console=show)
    finally:
        signal.signal(signal.SIGTERM, previous)
    for name, status in statuses.items():
        print(f"{name}: QEMU exited with status {status}", file=err)
    return exit_status(statuses)


