"""Helpers of the MirageOS backend tests: lock files, projects, build outcomes."""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

from ukbuild import api
from ukbuild.model import Project as Loaded
from ukbuild.plugins import Backend
from ukbuild_mirage.plugin import MirageBackend

REPO = Path(__file__).resolve().parents[3]
TESTDATA = REPO / "tests" / "fakes" / "mirage" / "testdata"
Entry = tuple[str, str, str]


def lock_text(uk: str, dirs: Sequence[Entry]) -> str:
    """A lock file in opam-monorepo's layout, pinning ``dirs``."""
    lines = ['opam-version: "2.0"', 'synopsis: "opam-monorepo generated lockfile"', "depends: ["]
    lines += [f'  "{d}" {{= "1.0" & ?vendor}}' for _u, d, _h in dirs] + ['  "ocaml" {= "5.4.1"}', "]"]
    lines.append("x-opam-monorepo-duniverse-dirs: [")
    for url, d, h in dirs:
        lines += ["  [", f'    "{url}"', f'    "{d}"', "    [", f'      "{h}"', "    ]", "  ]"]
    lines += ["]", f'x-opam-monorepo-root-packages: [ "{uk}" ]', 'x-opam-monorepo-version: "0.3"', ""]
    return "\n".join(lines)


BACKENDS: Mapping[str, Backend] = {"mirage": MirageBackend()}


class Project:
    """A project directory with unikernel directories copied from testdata and a ukbuild.toml."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.cache = root.parent / "cache"
        root.mkdir(parents=True, exist_ok=True)

    def copy(self, example: str, as_name: str | None = None) -> Path:
        dest = self.root / (as_name or example)
        shutil.copytree(TESTDATA / example, dest, dirs_exist_ok=True)
        return dest

    def write(self, unikernels: str, default: Sequence[str] = ()) -> None:
        targets = ", ".join(f'"{d}"' for d in default)
        (self.root / "ukbuild.toml").write_text(
            f'[project]\nname = "m"\ndefault = [{targets}]\n\n[toolchain.mirage]\nbackend = "mirage"\n\n'
            + unikernels)

    def load(self) -> Loaded:
        return api.load_project(self.root, backends=BACKENDS)

    def build(self, *targets: str, out: str = "out") -> api.BuildResult:
        options = api.BuildOptions(cache_dir=self.cache, out_dir=self.root / out, jobs=2)
        return api.Build(self.load(), targets, options, backends=BACKENDS).run()


def statuses(result: api.BuildResult) -> dict[str, str]:
    return {name: outcome.status for name, outcome in result.outcomes.items()}


def keys(result: api.BuildResult) -> dict[str, str]:
    return {name: str(outcome.key) for name, outcome in result.outcomes.items()}

