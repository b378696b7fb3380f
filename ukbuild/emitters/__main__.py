"""``ukbuild-emit FORMAT --kernel K --out O …``: write one image from a staged kernel, or
``ukbuild-emit DATA-FORMAT --out O [--tree DIR] [--file NAME=PATH] …``: a data image
(ext2, iso9660, fat, ffs) from a staged tree and files, with explicit owners and modes.

Runs inside an action's scratch directory; every path is relative to it.
Exit status 2 and an ``error:`` line for bad input, never a traceback; the
output path is then left untouched (every writer renames a finished
temporary into place).  OCI layouts and OCI archives also carry a build
record and an SPDX SBOM as artifacts referring to the image (see
:mod:`ukbuild.emitters.provenance`); a Docker archive cannot hold them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ukbuild._tool import name_value_pairs, run_tool, source_date_epoch

FORMATS = ("raw", "iso", "oci", "oci-archive", "docker-archive")
DATA_FORMATS = ("ext2", "iso9660", "fat", "ffs")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ukbuild-emit")
    p.add_argument("format", choices=FORMATS + DATA_FORMATS)
    p.add_argument("--kernel", help="the staged kernel (every format but the data images)")
    p.add_argument("--out", required=True)
    p.add_argument("--cmdline", default="")
    p.add_argument("--label")
    p.add_argument("--size-mib", type=int)
    p.add_argument("--bootloader", default="syslinux", choices=("syslinux", "grub"), help="raw disks")
    p.add_argument("--tree", help="data images: a staged directory (missing: empty)")
    p.add_argument("--owner", default="0:0", help="data images: UID:GID of every entry")
    p.add_argument("--file-mode", default="0644", help="data images: mode of every file")
    p.add_argument("--dir-mode", default="0755", help="data images: mode of every directory")
    p.add_argument("--mode", action="append", default=[], metavar="PATH=MODE", help="data images: one path's mode")
    p.add_argument("--owner-of", action="append", default=[], metavar="PATH=UID:GID",
                   help="data images: one path's owner")
    p.add_argument("--file", action="append", default=[], metavar="NAME=PATH", help="extra file in the image")
    p.add_argument("--name", default="unikernel", help="image title / repository name")
    p.add_argument("--tag", default="latest")
    p.add_argument("--compression", default="gzip", choices=("gzip", "zstd", "none"))
    p.add_argument("--urunc", metavar="GUEST:MONITOR", help="add urunc keys for this guest and monitor")
    p.add_argument("--bake", help="the kernel's bake config (lets urunc pairs be checked)")
    p.add_argument("--kraftkit", action="store_true", help="add a KraftKit (qemu/x86_64) entry")
    p.add_argument("--solo5-net", help="the kernel's Solo5 network device (urunc solo5NetDev)")
    p.add_argument("--solo5-blk", help="the kernel's Solo5 block device (urunc solo5BlkDev)")
    p.add_argument("--annotation", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--unikernel", help="the unikernel's name (provenance)")
    p.add_argument("--kernel-format", default="unknown", help="the backend's kernel format (provenance)")
    p.add_argument("--record", metavar="FILE", help="closure record staged by the core (provenance)")
    return p


def emit(args: argparse.Namespace) -> None:
    if args.format in DATA_FORMATS:
        _emit_data(args)
        return
    if args.kernel is None:
        raise SystemExit(f"error: {args.format} needs --kernel")
    kernel = Path(args.kernel).read_bytes()
    pairs = name_value_pairs(args.file, "--file")
    files = [(name, Path(path).read_bytes()) for name, path in pairs]
    if args.format in ("raw", "iso"):
        from ukbuild.disk.output import DEFAULT_EPOCH

        epoch = max(source_date_epoch(), DEFAULT_EPOCH)  # FAT and ISO dates start in 1980
        label = args.label or "UKBOOT"
        if args.format == "raw":
            from ukbuild.disk.rawdisk import write_raw_disk

            write_raw_disk(args.out, kernel, cmdline=args.cmdline, size_mib=args.size_mib, label=label,
                           extra_files=files, bootloader=args.bootloader, epoch=epoch)
        else:
            from ukbuild.disk.iso import write_iso

            write_iso(args.out, kernel, cmdline=args.cmdline, label=label, extra_files=files, epoch=epoch)
        return
    _emit_oci(args, kernel, files, [path for _, path in pairs])


def _emit_data(args: argparse.Namespace) -> None:
    """A data image from ``--tree`` and ``--file``, owners and modes as the options say."""
    from ukbuild.disk.dataimage import write_data_image
    from ukbuild.disk.output import DEFAULT_EPOCH
    from ukbuild.disk.tree import DataTree, Owner, parse_mode

    tree = Path(args.tree) if args.tree is not None and Path(args.tree).is_dir() else None
    data_tree = DataTree.build(
        tree=tree,
        files=[(name, Path(path).read_bytes()) for name, path in name_value_pairs(args.file, "--file")],
        owner=Owner.parse(args.owner, where="--owner"),
        file_mode=parse_mode(args.file_mode, where="--file-mode"),
        dir_mode=parse_mode(args.dir_mode, where="--dir-mode"),
        modes={path: parse_mode(mode, where=f"--mode {path}") for path, mode in name_value_pairs(args.mode, "--mode")},
        owners={path: Owner.parse(owner, where=f"--owner-of {path}") for path, owner in name_value_pairs(args.owner_of, "--owner-of")},
    )  # fmt: skip
    epoch = max(source_date_epoch(), DEFAULT_EPOCH)  # FAT dates start in 1980; the same for every format
    write_data_image(args.out, args.format, data_tree, name=args.name, epoch=epoch, size_mib=args.size_mib,
                     label=args.label)


def _closure(path: str | None) -> dict[str, Any] | None:
    if path is None:
        return None
    try:
        value = json.loads(Path(path).read_bytes())
    except ValueError as exc:
        raise SystemExit(f"error: --record {path}: not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise SystemExit(f"error: --record {path}: expected a JSON object")
    return value


def _provenance(
    args: argparse.Namespace, image: Any, kernel: bytes, files: list[tuple[str, bytes]], staged: list[str], epoch: int
) -> list[Any]:
    """The build record and the SBOM as artifacts whose subject is ``image``."""
    from ukbuild.oci import model

    from .provenance import ImageFacts, Material, build_record, spdx_sbom

    options = {k: str(v) for k in ("tag", "compression", "urunc", "bake", "solo5_net", "solo5_blk", "kraftkit")
               if (v := getattr(args, k)) not in (None, False)}
    facts = ImageFacts(
        image=args.name, format=args.format, unikernel=args.unikernel or args.name, kernel_format=args.kernel_format,
        cmdline=args.cmdline, kernel=Material(args.kernel, kernel),
        files=tuple(Material(path, data) for path, (_, data) in zip(staged, files, strict=True)),
        options=options, epoch=epoch, closure=_closure(args.record),
    )
    record = model.Blob.json(model.BUILD_RECORD_TYPE, build_record(facts))
    sbom = model.Blob.json(model.SBOM_SPDX_TYPE, spdx_sbom(facts))
    created = model.standard_annotations(created=epoch)
    return [model.artifact_manifest(image, blob.media_type, [blob], annotations=created) for blob in (record, sbom)]


def _emit_oci(args: argparse.Namespace, kernel: bytes, files: list[tuple[str, bytes]], staged: list[str]) -> None:
    from ukbuild.oci import layout, model, tar

    epoch = source_date_epoch()
    annotations = dict(name_value_pairs(args.annotation, "--annotation"))
    annotations.update(model.standard_annotations(created=epoch, title=args.name))
    cmd = [args.cmdline] if args.cmdline else []  # verbatim: one argument, as the kernel gets it
    if args.urunc:
        from ukbuild.oci.urunc import UruncSpec, urunc_image

        guest, _, monitor = args.urunc.partition(":")
        image = urunc_image(
            UruncSpec(unikernel_type=guest, hypervisor=monitor, bake=args.bake,
                      solo5_net_dev=args.solo5_net, solo5_blk_dev=args.solo5_blk), kernel,
            cmd=cmd, annotations=annotations, compression=args.compression, mtime=epoch, created=epoch,
        )
    else:
        entries = [tar.TarEntry.file("kernel", kernel, 0o755)]
        entries += [tar.TarEntry.file(name, data) for name, data in files]
        layer = tar.make_layer(entries, compression=args.compression, mtime=epoch)
        image = model.image_manifest(
            [layer], platform=model.Platform.parse("linux/amd64"),
            config=model.ImageConfig(cmd=cmd), created=epoch, annotations=annotations,
        )
    tagged: model.Manifest | model.Index = image
    if args.kraftkit:
        from ukbuild.oci.kraftkit import kraftkit_manifest

        kraft = kraftkit_manifest(kernel, cmd=cmd, mtime=epoch, created=epoch)
        tagged = model.image_index([image, kraft])
    if args.format in ("oci", "oci-archive"):
        referrers = _provenance(args, image, kernel, files, staged, epoch)
        if args.format == "oci":
            layout.write_oci_layout(args.out, {args.tag: tagged}, referrers=referrers)
        else:
            layout.write_oci_archive(args.out, {args.tag: tagged}, referrers=referrers, mtime=epoch)
    else:
        if not isinstance(tagged, model.Manifest):
            raise SystemExit("error: a docker archive holds one image: drop --kraftkit")
        layout.write_docker_archive(args.out, {f"{args.name}:{args.tag}": tagged}, mtime=epoch)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return run_tool(lambda: emit(args))


if __name__ == "__main__":
    sys.exit(main())
