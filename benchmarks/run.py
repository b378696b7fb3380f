"""Run ukbuild's core benchmarks against their baselines: ``python benchmarks/run.py``.

Each benchmark measures ukbuild and its baseline in the same run, on the
same data, and compares the ratio with a target; the exit status is 1 when
any target is missed.  See docs/performance.md.
"""

from __future__ import annotations

import argparse
import sys
import time

import bench_hash
import bench_noop
import bench_restore
from _common import UKBUILD, Row

BENCHMARKS = {"noop": bench_noop.bench, "restore": bench_restore.bench, "hash": bench_hash.bench}


def table(rows: list[Row]) -> str:
    header = ("benchmark", "ukbuild", "baseline", "ratio", "target", "result")
    cells = [header] + [
        (r.name, r.ukbuild, r.baseline, f"{r.ratio:.2f}x", r.target_text,
         {True: "pass", False: "FAIL", None: "-"}[r.passed])
        for r in rows
    ]
    widths = [max(len(c[i]) for c in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(BENCHMARKS), action="append", help="run only this benchmark (repeatable)")
    parser.add_argument("--quick", action="store_true", help="smaller data, for a smoke run (figures not representative)")
    args = parser.parse_args()
    if not UKBUILD.exists():
        parser.error(f"{UKBUILD} not found: create the venv (or set UKBUILD_BENCH_UKBUILD)")
    start = time.monotonic()
    rows: list[Row] = []
    for name, bench in BENCHMARKS.items():
        if not args.only or name in args.only:
            rows += bench(args.quick)
    print(table(rows))
    print(f"\n{time.strftime('%Y-%m-%d')}, {time.monotonic() - start:.0f} s{', --quick' if args.quick else ''}")
    missed = [r.name for r in rows if r.passed is False]
    if missed:
        print("missed targets: " + "; ".join(missed))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
