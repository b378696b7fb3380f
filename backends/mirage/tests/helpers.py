"""Helpers of the MirageOS backend tests: lock files, projects, build outcomes."""

from __future__ import annotations

import gzip
import io
import json
import shutil
import tarfile
from collections.abc import Callable, Mapping, Sequence
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


def solo5_lines(console: bytes) -> list[str]:
    """The console from the first Solo5 line to the exit line (SeaBIOS and SYSLINUX print before it;
    the runner stops QEMU at the exit line, and `Solo5: Halted` may or may not have arrived by then)."""
    text = console.decode("utf-8", "replace").replace("\r\n", "\n")
    lines = text[text.index("Solo5: Bindings version"):].splitlines()
    return lines[:-1] if lines[-1] == "Solo5: Halted" else lines


def read_image(layout: Path) -> tuple[dict, dict, dict[str, bytes]]:  # type: ignore[type-arg]
    """The manifest, config and first layer's files (path → bytes) of a one-image OCI layout."""

    def blob(digest: str) -> bytes:
        algorithm, hexdigest = digest.split(":")
        return (layout / "blobs" / algorithm / hexdigest).read_bytes()

    index = json.loads((layout / "index.json").read_text())
    manifest = json.loads(blob(index["manifests"][0]["digest"]))
    config = json.loads(blob(manifest["config"]["digest"]))
    files = {}
    with tarfile.open(fileobj=io.BytesIO(decompress_layer_bytes(manifest["layers"][0], blob))) as tar:
        for member in tar.getmembers():
            if member.isfile():
                files[member.name] = tar.extractfile(member).read()  # type: ignore[union-attr]
    return manifest, config, files


def decompress_layer_bytes(descriptor: dict, blob: Callable[[str], bytes]) -> bytes:  # type: ignore[type-arg]
    data = blob(descriptor["digest"])
    return gzip.decompress(data) if descriptor["mediaType"].endswith("+gzip") else data
