"""Turning a :class:`~ukbuild.model.Package` recipe into the action that builds it."""

from __future__ import annotations

import shlex

from .model import Action, OutputInput, Package, SourceInput

#: The fixed prefix packages are configured for; what they install is relocated by DESTDIR.
PREFIX = "/usr"
STEP_VERSION = 1


def install_dir(name: str) -> str:
    return f"pkg/{name}"


def package_action(pkg: Package) -> Action:
    """One action: stage source and dependency sysroot, run the steps, collect ``pkg/NAME/``.

    The steps run in order under ``sh -e`` from the source directory; each
    is echoed to the log first, so a failure shows which step broke.
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
        **dict(pkg.env),
    }
    script = "\n".join(f"echo '+ '{shlex.quote(step)}\n{step}" for step in pkg.steps)
    script = f'mkdir -p "$DESTDIR"\n{script}\n'
    inputs = [SourceInput(pkg.name, pkg.source, "src")]
    inputs += [OutputInput(dep, "sysroot", install_dir(dep)) for dep in pkg.depends]
    return Action(
        name=pkg.name,
        argv=["sh", "-ec", script],
        outputs=[install_dir(pkg.name) + "/"],
        inputs=inputs,
        env=env,
        toolchain=pkg.toolchain,
        workdir="src",
        step="core/package",
        step_version=STEP_VERSION,
        origin=pkg.origin,
    )
