"""``ukbuild-app``: the program app actions run (in their scratch directory).

    ukbuild-app base-layer --rootfs DIR --out PREFIX [--package NAME=VERSION …]
    ukbuild-app layer --tree DIR --out PREFIX
    ukbuild-app launcher-image (--base PREFIX | --base-image LAYOUT --base-tag T) [--layer PREFIX …] --tree DIR
                               --out DIR --name NAME [--tag T] [--text PATH=CONTENT …] [--label K=V …]
    ukbuild-app mariadb-datadir --seed FILE [--seed FILE …] --out DIR [--engine Aria]

Exit status 2 with an ``error:`` line for bad input.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from ukbuild._tool import name_value_pairs, run_tool, source_date_epoch


def base_layer(args: argparse.Namespace) -> None:
    from .launcher import write_base_layer

    write_base_layer(Path(args.rootfs), Path(args.out), epoch=source_date_epoch(), packages=dict(name_value_pairs(args.package, "--package")))


def launcher_image(args: argparse.Namespace) -> None:
    from ukbuild.oci import layout, model, tar

    from .launcher import LAUNCH_SCRIPT, read_layer

    epoch = source_date_epoch()
    if args.base_image:
        base_layers, meta = _base_image(Path(args.base_image), args.base_tag)
    else:
        base, meta = read_layer(Path(args.base))
        base_layers = [base]
    layers = [*base_layers, *(read_layer(Path(prefix))[0] for prefix in args.layer)]
    entries = tar.entries_from_tree(Path(args.tree)) if Path(args.tree).is_dir() else []
    entries.append(tar.TarEntry.file("ukbuild/launch", LAUNCH_SCRIPT.encode(), 0o755))
    for path, content in name_value_pairs(args.text, "--text"):
        entries.append(tar.TarEntry.file(path, content.encode()))
    app_layer = tar.make_layer(entries, compression="gzip", mtime=epoch)
    labels = dict(name_value_pairs(args.label, "--label"))
    labels.update({f"dev.ukbuild.launcher.package.{k}": v for k, v in sorted(meta.get("packages", {}).items())})
    annotations = model.standard_annotations(created=epoch, title=args.name)
    image = model.image_manifest(
        [*layers, app_layer], platform=model.Platform.parse("linux/amd64"),
        config=model.ImageConfig(entrypoint=["/ukbuild/launch"], labels=labels, working_dir="/ukbuild"),
        created=epoch, annotations=annotations,
    )
    layout.write_oci_layout(args.out, {args.tag: image})


def layer(args: argparse.Namespace) -> None:
    from ukbuild.oci import tar

    from .launcher import write_layer

    write_layer(tar.entries_from_tree(Path(args.tree)), Path(args.out), epoch=source_date_epoch())


def _base_image(layout: Path, tag: str) -> tuple[list, dict]:
    """The layers of a user-named base image (linux/amd64), every blob verified."""
    from ukbuild.errors import EmitError
    from ukbuild.oci import layout as oci_layout
    from ukbuild.oci import model, tar

    image = oci_layout.read_oci_layout(layout, tag)
    if isinstance(image, model.Index):
        image = next((m for m in image.manifests if m.platform is not None
                      and (m.platform.os, m.platform.architecture) == ("linux", "amd64")), None)  # type: ignore[assignment]
        if image is None:
            raise EmitError(f"{layout}:{tag} has no linux/amd64 image", reason="bad-layout")
    assert isinstance(image, model.Manifest)
    diff_ids = json.loads(image.config.data)["rootfs"]["diff_ids"]
    layers = [tar.Layer(blob, diff_id) for blob, diff_id in zip(image.layers, diff_ids, strict=True)]
    return layers, {"packages": {}}


def mariadb_datadir(args: argparse.Namespace) -> None:
    """Bootstrap a MariaDB data directory with this host's server tools, then load the seed SQL.

    ``mariadb-install-db`` writes the system tables and ``mariadbd
    --bootstrap`` runs the seed (after ``FLUSH PRIVILEGES``, so that it may
    create users and grant them rights), both with no option files, InnoDB off (a
    Rumprun MariaDB runs with ``--innodb=OFF``: InnoDB hangs there at
    start-up) and ``--default-storage-engine`` as given (Aria or MyISAM).
    Not reproducible, and documented in docs/apps.md: each table's ``.frm``
    and index header carry a creation time and a table-definition UUID, and
    the Aria log records LSNs and times; a cached result is reused as it is.
    """
    out = Path(args.out).absolute()
    work = out.parent / ".mariadb-work"
    work.mkdir()
    user = _user()
    engine = f"--default-storage-engine={args.engine}"
    env = {**os.environ, "TZ": "UTC"}
    _run(["mariadb-install-db", "--no-defaults", f"--datadir={out}", "--auth-root-authentication-method=normal",
          "--skip-test-db", "--skip-name-resolve", f"--user={user}", "--innodb=OFF", engine, f"--tmpdir={work}"],
         env, work)
    seed = "\n".join(Path(p).read_text(encoding="utf-8") for p in args.seed)
    _run(["mariadbd", "--no-defaults", "--bootstrap", f"--datadir={out}", f"--user={user}", "--innodb=OFF", engine,
          "--skip-log-bin", f"--tmpdir={work}", f"--log-error={work / 'err.log'}"], env, work,
         stdin=f"FLUSH PRIVILEGES;\nSET SESSION default_storage_engine={args.engine};\n{seed}\n")
    import shutil

    shutil.rmtree(work)


def _user() -> str:
    import pwd

    return pwd.getpwuid(os.getuid()).pw_name


def _run(argv: list[str], env: dict[str, str], work: Path, stdin: str | None = None) -> None:
    try:
        proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, env=env, timeout=300)
    except OSError as exc:
        raise SystemExit(f"error: cannot run {argv[0]}: {exc.strerror}\nhint: apt-get install mariadb-server") from exc
    if proc.returncode != 0:
        log = (work / "err.log").read_text(errors="replace") if (work / "err.log").exists() else ""
        sys.stderr.write(proc.stdout + proc.stderr + log)
        raise SystemExit(f"error: {argv[0]} failed with status {proc.returncode}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="ukbuild-app")
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("base-layer")
    b.add_argument("--rootfs", required=True)
    b.add_argument("--out", required=True)
    b.add_argument("--package", action="append", default=[])
    li = sub.add_parser("launcher-image")
    li.add_argument("--base", help="the base layer made by base-layer (PREFIX.tar.gz, PREFIX.json)")
    li.add_argument("--base-image", help="or an OCI layout whose image is the base")
    li.add_argument("--base-tag", default="latest")
    li.add_argument("--layer", action="append", default=[], help="a layer made by `layer` (PREFIX), on top of the base")
    li.add_argument("--tree", required=True)
    li.add_argument("--out", required=True)
    li.add_argument("--name", required=True)
    li.add_argument("--tag", default="latest")
    li.add_argument("--text", action="append", default=[])
    li.add_argument("--label", action="append", default=[])
    la = sub.add_parser("layer")
    la.add_argument("--tree", required=True)
    la.add_argument("--out", required=True)
    m = sub.add_parser("mariadb-datadir")
    m.add_argument("--seed", action="append", required=True)
    m.add_argument("--out", required=True)
    m.add_argument("--engine", default="Aria")
    args = p.parse_args(argv)
    command = {"base-layer": base_layer, "layer": layer, "launcher-image": launcher_image,
               "mariadb-datadir": mariadb_datadir}
    return run_tool(lambda: command[args.command](args))


if __name__ == "__main__":
    sys.exit(main())
