"""Run ukbuild's benchmarks against the tools users would pick instead: ``python benchmarks/run.py``.

Each benchmark measures ukbuild and its baseline in the same run, on the
same data, and reports the ratio (medians of interleaved runs), its
target, and its change against the ratio recorded in ``baseline.json``.
The exit status is 1 when any target is missed or any ratio is more than
20% worse than the recorded one.  ``--record`` writes this run's ratios to
``baseline.json`` (merged: rows this run did not produce keep their
recorded value).  See docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import UKBUILD, VENV_PYTHON, Row

BASELINE = HERE / "baseline.json"
TOLERANCE = 0.20
NAMES = ("graph", "cold", "restore", "hash", "images", "remote", "app")


def table(rows: list[Row]) -> str:
    header = ("benchmark", "ukbuild", "baseline", "ratio", "target", "result", "recorded", "change")
    cells = [header]
    for r in rows:
        change = r.change
        verdict = {True: "pass", False: "FAIL", None: "-"}[r.passed]
        if r.regressed(TOLERANCE):
            verdict += ", REGRESSED" if r.passed is not None else "REGRESSED"
        cells.append((
            r.name, r.ukbuild, r.baseline, f"{r.ratio:.2f}x", r.target_text, verdict,
            "-" if r.recorded is None else f"{r.recorded:.2f}x",
            "-" if change is None else f"{change * 100:+.0f}%",
        ))
    widths = [max(len(c[i]) for c in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def load_baseline() -> dict:
    if not BASELINE.exists():
        return {"ratios": {}}
    return json.loads(BASELINE.read_text())


def record(rows: list[Row], previous: dict, when: str, machine: str, quick: bool) -> None:
    ratios = dict(previous.get("ratios", {}))
    ratios.update({r.key: round(r.ratio, 4) for r in rows})
    doc = {
        "about": "ratios recorded by `python benchmarks/run.py --record`; change = how much worse than this",
        "recorded": when, "machine": machine, "quick": quick,
        "ratios": dict(sorted(ratios.items())),
    }
    BASELINE.write_text(json.dumps(doc, indent=2) + "\n")


def machine() -> str:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores ({cpu}), {platform.system()} {platform.release()}, Python {platform.python_version()}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=NAMES, action="append", help="run only this benchmark (repeatable)")
    parser.add_argument("--quick", action="store_true", help="smaller data, for a smoke run (figures not representative; "
                        "its rows have their own names, so they are not compared with a full run's)")
    parser.add_argument("--long", action="store_true", help="add the 50k-action graph (about 10 more minutes)")
    parser.add_argument("--record", action="store_true", help=f"write this run's ratios to {BASELINE.name}")
    parser.add_argument("--tolerance", type=float, default=TOLERANCE, help="allowed regression (default 0.20: 20%%)")
    args = parser.parse_args()
    if not UKBUILD.exists():
        parser.error(f"{UKBUILD} not found: create the venv (or set UKBUILD_BENCH_UKBUILD)")

    # images runs ukbuild's writers in-process: import the benchmarks here, under the venv's interpreter.
    import bench_app
    import bench_cold
    import bench_graph
    import bench_hash
    import bench_remote
    import bench_restore
    import images

    benchmarks = {
        "graph": lambda quick: bench_graph.bench(quick, args.long),
        "cold": bench_cold.bench,
        "restore": bench_restore.bench,
        "hash": bench_hash.bench,
        "images": images.bench,
        "remote": bench_remote.bench,
        "app": bench_app.bench,
    }
    baseline = load_baseline()
    start = time.monotonic()
    rows: list[Row] = []
    for name, bench in benchmarks.items():
        if not args.only or name in args.only:
            started = time.monotonic()
            rows += bench(args.quick)
            print(f"[{name}: {time.monotonic() - started:.0f} s]", file=sys.stderr, flush=True)
    for row in rows:
        assert row.key, row.name
        if args.quick:
            row.key = "quick:" + row.key
        row.recorded = baseline.get("ratios", {}).get(row.key)
    when = time.strftime("%Y-%m-%d")
    print(table(rows))
    flags = "".join(f", --{f}" for f in ("quick", "long") if getattr(args, f))
    print(f"\n{when}, {machine()}, {time.monotonic() - start:.0f} s{flags}")
    if baseline.get("recorded"):
        print(f"recorded baseline: {baseline['recorded']}, {baseline.get('machine', '?')}")
    missed = [r.name for r in rows if r.passed is False]
    regressed = [r.name for r in rows if r.regressed(args.tolerance)]
    if missed:
        print("missed targets: " + "; ".join(missed))
    if regressed:
        print(f"regressed more than {args.tolerance:.0%} from the recorded baseline: " + "; ".join(regressed))
    if args.record:
        record(rows, baseline, when, machine(), args.quick)
        print(f"recorded {len(rows)} ratios in {BASELINE}")
    return 1 if missed or regressed else 0


if __name__ == "__main__":
    try:
        import ukbuild  # noqa: F401
    except ImportError:
        if VENV_PYTHON.exists() and not os.environ.get("UKBUILD_BENCH_REEXEC"):
            os.environ["UKBUILD_BENCH_REEXEC"] = "1"
            os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), __file__, *sys.argv[1:]])
        raise
    sys.exit(main())
