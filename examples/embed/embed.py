"""Embedding ukbuild as the build engine of another tool.

Runs two builds of the example project at once (different output dirs, one
shared cache), and a third that it cancels as soon as its first action starts.
Prints one JSON line per build with what happened; exits non-zero if anything
went other than planned.

    python examples/embed/embed.py PROJECT_DIR WORK_DIR
"""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

import ukbuild


def main(project_dir: str, work_dir: str) -> int:
    work = Path(work_dir)
    project = ukbuild.load_project(project_dir)
    results: dict[str, object] = {}

    def build(name: str, cancel_early: bool = False) -> None:
        options = ukbuild.BuildOptions(out_dir=work / name, cache_dir=work / "cache", state_dir=work / f"{name}.state")
        handle = ukbuild.Build(project, [], options)
        events: list[str] = []

        def on_event(event: dict) -> None:
            events.append(event["event"])
            if cancel_early and event["event"] == "action-started":
                handle.cancel()

        handle.subscribe(on_event)
        try:
            result = handle.run()
            results[name] = {"ok": result.ok, "outputs": dict(result.outputs), "events": len(events)}
        except ukbuild.Cancelled as exc:
            results[name] = {"cancelled": True, "reason": exc.reason}

    threads = [threading.Thread(target=build, args=(n,)) for n in ("a", "b")]
    threads.append(threading.Thread(target=build, args=("c", True)))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for name in sorted(results):
        print(json.dumps({"build": name, **results[name]}, sort_keys=True))  # type: ignore[dict-item]
    a, b, c = (results.get(n, {}) for n in ("a", "b", "c"))
    planned = a.get("ok") and b.get("ok") and a["outputs"] == b["outputs"] and c.get("cancelled")  # type: ignore[index,union-attr]
    return 0 if planned else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
