"""Planning: a ``[unikernel.NAME]`` table → the actions that build it.

MirageOS 4 (``kind = "mirage"``)::

    NAME.configure       mirage configure -f config.ml -t TARGET KEYS   (input: config.ml only)
    NAME.lock            opam monorepo lock …   (only without a committed lock file; network)
    NAME.pull[DIR]       opam monorepo pull of one duniverse directory (committed lock; network)
    NAME.pull            opam monorepo pull of the whole lock       (generated lock; network)
    NAME.build           dune build --profile release --root . ./dist   (offline)
    NAME                 solo5-elftool query-abi/query-manifest, checked (Solo5 targets;
                         for unix and unikraft the build itself is NAME)

Bare Solo5 C (``kind = "solo5"``): ``NAME.manifest`` (gen-manifest), one
``NAME.compile[…]`` per source, then one link per ABI — ``NAME`` for the first
target, ``NAME.link[ABI]`` for the others — each verified with solo5-elftool.

MirageOS actions run in ``NAME/`` (the unikernel directory staged without
what the tools generate), so the output directory gets ``NAME/dist/…``.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from ukbuild.errors import ConfigError
from ukbuild.model import Action, Input, OutputInput, PathInput
from ukbuild.plugins import UnikernelSpec

from .lockfile import duniverse_dirs
from .targets import TARGETS
from .verify import METADATA, verify_script

STEP_VERSION = 1
#: What mirage configure, opam monorepo and dune write into a unikernel directory: never an input.
GENERATED = frozenset({"Makefile", "dune", "dune.build", "dune.config", "dune-project", "dune-workspace",
                       "_build", "dist", "duniverse", "mirage", "_opam"})
BUILD_ARGV = ("dune", "build", "--profile", "release", "--root", ".", "./dist")
MONOREPO_ENV = (("OPAMVAR_monorepo", "opam-monorepo"),)


def unikernel_dir(spec: UnikernelSpec) -> str:
    return str(PurePosixPath(str(spec.options.get("dir", "."))))


def registered_name(spec: UnikernelSpec) -> str:
    """The ``name`` option, or the name config.ml registers (``register "NAME"``)."""
    if "name" in spec.options:
        return str(spec.options["name"])
    config = Path(spec.project_root) / unikernel_dir(spec) / str(spec.options.get("config", "config.ml"))
    try:
        found = re.search(r'\bregister\s+"([^"]+)"', config.read_text())
    except OSError as exc:
        raise ConfigError(f"{spec.origin}: unikernel.{spec.name}: cannot read {config}: {exc.strerror}",
                          hint="set dir = \"…\" to the directory holding config.ml", reason="missing-input") from exc
    if found is None:
        raise ConfigError(f"{spec.origin}: unikernel.{spec.name}: no register \"NAME\" call found in {config}",
                          hint='set name = "…" to the name config.ml registers', reason="bad-value")
    return found.group(1)


def source_inputs(spec: UnikernelSpec) -> list[Input]:
    """Every file of the unikernel directory except what the MirageOS tools generate,
    staged under ``NAME/`` (the unikernel's name)."""
    base = unikernel_dir(spec)
    root = Path(spec.project_root) / base
    inputs: list[Input] = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = Path(dirpath).relative_to(root)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".")
                             and not (rel_dir == Path(".") and d in GENERATED))
        for filename in sorted(filenames):
            if filename.startswith(".") or (rel_dir == Path(".") and filename in GENERATED):
                continue
            rel = (rel_dir / filename).as_posix()
            inputs.append(PathInput(str(PurePosixPath(base) / rel), f"{spec.name}/{rel}"))
    return inputs


def _action(spec: UnikernelSpec, name: str, step: str, argv: Sequence[str], outputs: Sequence[str],
            inputs: Sequence[Input], **extra: object) -> Action:
    return Action(name=name, argv=argv, outputs=outputs, inputs=inputs, toolchain=spec.toolchain,
                  step=f"mirage/{step}", step_version=STEP_VERSION, origin=spec.origin, **extra)  # type: ignore[arg-type]


def plan_mirage(spec: UnikernelSpec) -> list[Action]:
    """Everything runs in ``NAME/`` (the unikernel directory, staged); duniverse
    directories are pulled at the scratch root, so their keys are the same for
    every unikernel that locks the same entry."""
    opts = spec.options
    target = TARGETS[str(opts["target"])]
    name = registered_name(spec)
    uk = f"{name}-{target.name}"
    work = spec.name
    sources = source_inputs(spec)
    keys = [str(k) for k in opts.get("configure_args", [])]  # type: ignore[union-attr]
    configure = ["mirage", "configure", "-f", str(opts.get("config", "config.ml")), "-t", target.name, *keys]
    if target.abi == "xen":
        # The default .xl names a bridge of the build host's /sys/class/net: drop it, keep .xl.in.
        configure = ["sh", "-c", f'"$@" && rm -f mirage/{shlex.quote(name)}.xl', "sh", *configure]
    generated = [f"{work}/{g}" for g in ("Makefile", "dune", "dune.build", "dune.config", "dune-project",
                                         "dune-workspace", "dist/dune", "mirage/")]
    configured = OutputInput(f"{spec.name}.configure")
    config_file = str(opts.get("config", "config.ml"))
    config_input = PathInput(str(PurePosixPath(unikernel_dir(spec)) / config_file), f"{work}/{config_file}")
    actions = [_action(spec, configured.action, "configure", configure, generated, [config_input], workdir=work)]
    lock_path = f"mirage/{uk}.opam.locked"
    committed = Path(spec.project_root) / unikernel_dir(spec) / str(opts.get("lock", lock_path))
    if committed.is_file():
        for entry in duniverse_dirs(committed.read_text(), str(committed)):
            argv = ["sh", "-c", 'printf "%s" "$1" > duniverse.opam.locked && '
                    "exec opam monorepo pull -l duniverse.opam.locked -r .", "sh", entry.lock_text()]
            actions.append(_action(spec, f"{spec.name}.pull[{entry.dir}]", "pull", argv,
                                   [f"duniverse/{entry.dir}/"], [], env=MONOREPO_ENV, network=True))
        # The build does not read the lock, but it is what the pulls were planned from: as an input
        # it is tracked, so editing it is never mistaken for "up to date".
        lock_file = str(opts.get("lock", lock_path))
        pulls: list[Input] = [OutputInput(a.name, dest=work) for a in actions if a.step == "mirage/pull"]
        pulls.append(PathInput(str(PurePosixPath(unikernel_dir(spec)) / lock_file), f"{work}/{lock_file}"))
    else:
        repos = [str(r) for r in opts.get("opam_repositories", [])]  # type: ignore[union-attr]
        lock = (f"exec opam monorepo lock --require-cross-compile --build-only {shlex.quote(uk)} "
                f"-l {lock_path} --ocaml-version \"$(ocamlfind ocamlopt -version)\"")
        if repos:
            lock += " --opam-repositories " + shlex.quote(",".join(repos))
        actions.append(_action(spec, f"{spec.name}.lock", "lock", ["sh", "-c", lock], [f"{work}/{lock_path}"],
                               [configured], env=MONOREPO_ENV, network=True, workdir=work))
        actions.append(_action(spec, f"{spec.name}.pull", "pull",
                               ["opam", "monorepo", "pull", "-l", lock_path, "-r", "."], [f"{work}/duniverse/"],
                               [OutputInput(f"{spec.name}.lock")], env=MONOREPO_ENV, network=True,
                               workdir=work))
        pulls: list[Input] = [OutputInput(f"{spec.name}.pull")]
    artefact = target.artefact(name)
    build_argv: list[str] = list(BUILD_ARGV)
    if target.abi == "xen":
        xl = f"mirage/{shlex.quote(name)}.xl"
        build_argv = ["sh", "-c", f'cp {xl}.in {xl} && exec "$@"', "sh", *BUILD_ARGV]
    final_build = target.abi is None
    kernel = f"{work}/{artefact}"
    build = _action(spec, spec.name if final_build else f"{spec.name}.build", "build", build_argv, [kernel],
                    [*sources, configured, *pulls], checks=[(kernel, "mirage/executable")], workdir=work)
    actions.append(build)
    if target.abi is not None:
        script = "set -e; " + verify_script(kernel, target.abi, devices(spec))
        actions.append(_action(spec, spec.name, "verify", ["sh", "-c", script],
                               [kernel, kernel + METADATA], [OutputInput(build.name)],
                               checks=[(kernel + METADATA, "mirage/solo5")]))
    return actions


def devices(spec: UnikernelSpec) -> dict[str, str]:
    """The declared Solo5 devices: name → ``net`` or ``block``."""
    return {str(k): str(v) for k, v in dict(spec.options.get("devices", {})).items()}  # type: ignore[call-overload]


def solo5_kernel(name: str, abi: str) -> str:
    return f"solo5/{name}.{abi}"


def plan_solo5(spec: UnikernelSpec) -> list[Action]:
    opts = spec.options
    arch = str(opts.get("arch", "x86_64"))
    cc = f"{arch}-solo5-none-static-cc"
    cflags = [str(f) for f in opts.get("cflags", ["-std=c11", "-Wall", "-O2", "-g"])]  # type: ignore[union-attr]
    include = [str(i).rstrip("/") for i in opts.get("include", [])]  # type: ignore[union-attr]
    include_inputs: list[Input] = [PathInput(d, d) for d in include]
    include_flags = [f for d in include for f in ("-I", d)]
    manifest = str(opts.get("manifest", "manifest.json"))
    obj = f"obj/{spec.name}"
    actions = [_action(spec, f"{spec.name}.manifest", "gen-manifest",
                       ["solo5-elftool", "gen-manifest", manifest, f"{obj}/manifest.c"], [f"{obj}/manifest.c"],
                       [PathInput(manifest, manifest)])]
    units = [(str(s), PathInput(str(s), str(s))) for s in opts["sources"]]  # type: ignore[union-attr]
    objects = []
    for index, (source, item) in enumerate([*units, (f"{obj}/manifest.c", OutputInput(f"{spec.name}.manifest"))]):
        stem = PurePosixPath(source).stem
        label = "manifest" if index == len(units) else f"{index}-{stem}"
        output = f"{obj}/{label}.o"
        actions.append(_action(spec, f"{spec.name}.compile[{label}]", "compile",
                               [cc, *cflags, *include_flags, "-c", source, "-o", output], [output],
                               [item, *include_inputs]))
        objects.append(output)
    compiled = [OutputInput(a.name) for a in actions if a.step == "mirage/compile"]
    abis = [str(t) for t in opts["targets"]]  # type: ignore[union-attr]
    for position, abi in enumerate(abis):
        kernel = solo5_kernel(spec.name, abi)
        link = shlex.join([cc, "-z", f"solo5-abi={abi}", *objects, "-o", kernel])
        actions.append(_action(spec, spec.name if position == 0 else f"{spec.name}.link[{abi}]", "link",
                               ["sh", "-c", f"set -e; {link}; {verify_script(kernel, abi, devices(spec))}"],
                               [kernel, kernel + METADATA], compiled,
                               checks=[(kernel + METADATA, "mirage/solo5")]))
    # The core wants the unikernel's own action last.
    actions.sort(key=lambda a: a.name == spec.name)
    return actions


def plan(spec: UnikernelSpec) -> list[Action]:
    return plan_solo5(spec) if spec.options.get("kind") == "solo5" else plan_mirage(spec)


def kernel_path(spec: UnikernelSpec) -> str:
    """The built kernel, relative to the output directory."""
    if spec.options.get("kind") == "solo5":
        return solo5_kernel(spec.name, str(list(spec.options["targets"])[0]))  # type: ignore[call-overload]
    return f"{spec.name}/" + TARGETS[str(spec.options["target"])].artefact(registered_name(spec))


def solo5_abi(spec: UnikernelSpec) -> str | None:
    if spec.options.get("kind") == "solo5":
        return str(list(spec.options["targets"])[0])  # type: ignore[call-overload]
    return TARGETS[str(spec.options["target"])].abi


