"""Turning a :class:`~ukbuild.model.Package` recipe into the actions that build it."""

from __future__ import annotations

import shlex

from .model import Action, ExternalInput, Input, OutputInput, Package, SourceInput

#: The fixed prefix packages are configured for; what they install is relocated by DESTDIR.
PREFIX = "/usr"
STEP_VERSION = 1
#: Where a package's native stage is staged in its cross build (``$NATIVE``).
NATIVE_DIR = "native"
#: Where stub sources are staged and compiled (``$UKBUILD_STUBS``, on the ``-L`` path).
STUBS_DIR = "stubs"
#: The CMake preload file holding the configure answers (``cmake -C $UKBUILD_CMAKE_ANSWERS``).
CMAKE_ANSWERS = "answers.cmake"


def install_dir(name: str) -> str:
    return f"pkg/{name}"


def native_name(name: str) -> str:
    """The action of a package's native stage."""
    return f"{name}.native"


def package_actions(pkg: Package) -> list[Action]:
    """The package's native stage (if any), then the action building the package itself."""
    actions = [_native_action(pkg)] if pkg.native is not None else []
    return [*actions, package_action(pkg)]


def _script(steps: tuple[str, ...], prelude: str = "") -> str:
    script = "\n".join(f"echo '+ '{shlex.quote(step)}\n{step}" for step in steps)
    return f'mkdir -p "$DESTDIR"\n{prelude}{script}\n'


def package_action(pkg: Package) -> Action:
    """One action: stage source and dependency sysroot, run the steps, collect ``pkg/NAME/``.

    The steps run in order under ``sh -e`` from the source directory; each
    is echoed to the log first, so a failure shows which step broke.  A
    recipe's extra features add to the environment and to the script's
    prelude only when used, so the keys of plain recipes do not change.
    """
    work = "${UKBUILD_WORK}"
    sysroot = f"{work}/sysroot"
    env = {
        "DESTDIR": f"{work}/{install_dir(pkg.name)}",
        "PREFIX": PREFIX,
        "SYSROOT": sysroot,
        "PKG_CONFIG_SYSROOT_DIR": sysroot,
        "PKG_CONFIG_LIBDIR": f"{sysroot}{PREFIX}/lib/pkgconfig:{sysroot}{PREFIX}/share/pkgconfig",
        "CPPFLAGS": f"-I{sysroot}{PREFIX}/include",
        "LDFLAGS": f"-L{sysroot}{PREFIX}/lib",
    }
    prelude = ""
    inputs: list[Input] = [SourceInput(pkg.name, pkg.source, "src")]
    inputs += [OutputInput(dep, "sysroot", install_dir(dep)) for dep in pkg.depends]
    if pkg.configure_answers:
        env.update(pkg.configure_answers)
        env["UKBUILD_CMAKE_ANSWERS"] = f"{work}/{CMAKE_ANSWERS}"
        lines = "".join(f"set({k} {_cmake_quote(v)} CACHE STRING \"configure answer\" FORCE)\n"
                        for k, v in pkg.configure_answers)
        prelude += f"cat > \"$UKBUILD_CMAKE_ANSWERS\" <<'UKBUILD_EOF'\n{lines}UKBUILD_EOF\n"
    if pkg.stubs:
        env["UKBUILD_STUBS"] = f"{work}/{STUBS_DIR}"
        env["LDFLAGS"] += f" -L{work}/{STUBS_DIR}"
        inputs += [ExternalInput(path, f"{STUBS_DIR}/{name}", f"stub:{pkg.name}/{name}") for name, path in pkg.stubs]
        prelude += _STUB_PRELUDE
    if pkg.targets:
        env["UKBUILD_TARGETS"] = " ".join(pkg.targets)
    if pkg.native is not None:
        env["NATIVE"] = f"{work}/{NATIVE_DIR}"
        inputs.append(OutputInput(native_name(pkg.name), NATIVE_DIR, install_dir(native_name(pkg.name))))
    env.update(pkg.env)
    return Action(
        name=pkg.name,
        argv=["sh", "-ec", _script(pkg.steps, prelude)],
        outputs=[install_dir(pkg.name) + "/"],
        inputs=inputs,
        env=env,
        toolchain=pkg.toolchain,
        workdir="src",
        step="core/package",
        step_version=STEP_VERSION,
        origin=pkg.origin,
    )


#: Each stubs/X.c (or .cc) becomes stubs/X.o and stubs/libX.a: link the object, or -lX.
_STUB_PRELUDE = """\
for stub in "$UKBUILD_STUBS"/*.c "$UKBUILD_STUBS"/*.cc; do
  [ -f "$stub" ] || continue
  base=${stub%.*}; name=${base##*/}
  echo "+ stub $name"
  case $stub in *.cc) ${CXX:-c++} $CXXFLAGS -c "$stub" -o "$base.o" ;; *) ${CC:-cc} $CFLAGS -c "$stub" -o "$base.o" ;; esac
  ${AR:-ar} rc "$UKBUILD_STUBS/lib$name.a" "$base.o"
done
"""


def _cmake_quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _native_action(pkg: Package) -> Action:
    assert pkg.native is not None
    name = native_name(pkg.name)
    env = {"DESTDIR": f"${{UKBUILD_WORK}}/{install_dir(name)}", "PREFIX": PREFIX, **dict(pkg.native.env)}
    return Action(
        name=name,
        argv=["sh", "-ec", _script(pkg.native.steps)],
        outputs=[install_dir(name) + "/"],
        inputs=[SourceInput(pkg.name, pkg.source, "src")],
        env=env,
        toolchain=pkg.native.toolchain,
        workdir="src",
        step="core/package-native",
        step_version=STEP_VERSION,
        origin=pkg.origin,
    )
