"""Showing a build's events to a person (live on a terminal, plain lines otherwise) or as JSON."""

from __future__ import annotations

from typing import TYPE_CHECKING, TextIO

from .events import Event, to_json_line

if TYPE_CHECKING:
    from ._incremental import Rebuild
    from .api import Build


def attach(build: Build | Rebuild, out: TextIO, err: TextIO, *, json_mode: bool) -> None:
    if json_mode:
        build.subscribe(_JsonLines(build, out, err))
        return
    if err.isatty():
        _attach_live(build, err)
    else:
        build.subscribe(_PlainLines(err))


class _JsonLines:
    """Events as JSON lines on ``out``.  When the reader goes away (``| head``), the build
    is cancelled cleanly, as a Unix tool stops on SIGPIPE, instead of failing in whichever
    thread emitted the next event."""

    def __init__(self, build: Build | Rebuild, out: TextIO, err: TextIO) -> None:
        self.build, self.out, self.err = build, out, err
        self.closed = False

    def __call__(self, e: Event) -> None:
        if self.closed:
            return
        try:
            self.out.write(to_json_line(e))
            self.out.flush()
        except BrokenPipeError:
            self.closed = True
            self.build.cancel()
            try:
                print("warning: the reader of the JSON events went away: cancelling the build", file=self.err)
            except OSError:
                pass  # stderr went with it (`2>&1 | head`)


class _PlainLines:
    """One line per finished action, and failures in full."""

    def __init__(self, err: TextIO) -> None:
        self.err = err
        self.total = 0
        self.done = 0

    def __call__(self, e: Event) -> None:
        kind = e["event"]
        if kind == "build-started":
            self.total = 0
        elif kind in ("action-cached", "action-finished", "action-failed", "action-skipped"):
            self.done += 1
            if kind == "action-cached":
                if e["via"] != "journal":  # (unchanged since the last build: counted, not listed)
                    self._line(f"cached   {e['action']}")
            elif kind == "action-finished":
                self._line(f"built    {e['action']} ({e['seconds']:.2f} s)")
            elif kind == "action-skipped":
                self._line(f"skipped  {e['action']} (after {e['because']} failed)")
            else:
                _failure(self.err, e)
        elif kind == "warning":
            print(f"warning: {e['message']}", file=self.err)
        elif kind == "build-finished":
            _summary(self.err, e)

    def _line(self, text: str) -> None:
        print(f"[{self.done}] {text}", file=self.err)


def _failure(err: TextIO, e: Event) -> None:
    origin = e.get("origin")
    where = f"{origin}: " if origin and origin != "<python>" else ""
    print(f"error: {where}{e['message']}", file=err)
    if e.get("detail"):
        print("\n".join("  | " + line for line in e["detail"].splitlines()), file=err)
    if e.get("hint") and not e["hint"].startswith("full log: "):
        print(f"  hint: {e['hint']}", file=err)
    if e.get("log"):
        print(f"  full log: {e['log']}", file=err)


def _summary(err: TextIO, e: Event) -> None:
    state = "ok" if e["ok"] else "FAILED"
    print(
        f"build {state}: {e['executed']} executed, {e['cached']} cached, {e['failed']} failed, "
        f"{e['skipped']} skipped in {e['seconds']:.2f} s",
        file=err,
    )


def _attach_live(build: Build | Rebuild, err: TextIO) -> None:
    from rich.console import Console  # noqa: PLC0415 - only on a terminal
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn  # noqa: PLC0415

    console = Console(file=err)
    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=True,
    )
    total = getattr(build, "total", None)  # a Rebuild knows it
    if total is None:
        from ._graph import closure  # noqa: PLC0415

        total = len(closure(build.project.actions, build.targets))
    task = progress.add_task("building", total=total)
    running: set[str] = set()

    def on_event(e: Event) -> None:
        kind = e["event"]
        if kind == "build-started":
            progress.start()
        elif kind == "action-started":
            running.add(e["action"])
        elif kind in ("action-cached", "action-finished", "action-failed", "action-skipped"):
            running.discard(e["action"])
            progress.advance(task)
            if kind == "action-finished":
                console.print(f"built  {e['action']} ({e['seconds']:.2f} s)", highlight=False)
            elif kind == "action-failed":
                progress.stop()
                _failure(err, e)
                progress.start()
        elif kind == "warning":
            console.print(f"warning: {e['message']}", highlight=False)
        elif kind == "build-finished":
            progress.stop()
            _summary(err, e)
            return
        progress.update(task, description=", ".join(sorted(running)[:3]) or "building")

    build.subscribe(on_event)
