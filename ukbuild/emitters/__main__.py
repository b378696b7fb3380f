"""``ukbuild-emit FORMAT --kernel K --out O …``: write one image from a staged kernel.

Runs inside an action's scratch directory; every path is relative to it.
Exit status 2 and an ``error:`` line for bad input, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ukbuild.errors import UkbuildError

FORMATS = ("raw", "iso", "oci", "oci-archive", "docker-archive")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ukbuild-emit")
    p.add_argument("format", choices=FORMATS)
    p.add_argument("--kernel", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--cmdline", default="")
    p.add_argument("--label", default="UKBOOT")
    p.add_argument("--size-mib", type=int)
    p.add_argument("--file", action="append", default=[], metavar="NAME=PATH", help="extra file in the image")
    p.add_argument("--name", default="unikernel", help="image title / repository name")
    p.add_argument("--tag", default="latest")
    p.add_argument("--compression", default="gzip", choices=("gzip", "zstd", "none"))
    p.add_argument("--urunc", metavar="GUEST:MONITOR", help="add urunc keys for this guest and monitor")
    p.add_argument("--bake", help="the kernel's bake config (lets urunc pairs be checked)")
    p.add_argument("--kraftkit", action="store_true", help="add a KraftKit (qemu/x86_64) entry")
    p.add_argument("--annotation", action="append", default=[], metavar="KEY=VALUE")
    return p


def _pairs(values: list[str], what: str) -> list[tuple[str, str]]:
    pairs = []
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key:
            raise SystemExit(f"error: {what} {value!r}: expected NAME=VALUE")
        pairs.append((key, rest))
    return pairs


def _epoch() -> int:
    return int(os.environ.get("SOURCE_DATE_EPOCH", "0"))


def emit(args: argparse.Namespace) -> None:
    kernel = Path(args.kernel).read_bytes()
    files = [(name, Path(path).read_bytes()) for name, path in _pairs(args.file, "--file")]
    if args.format in ("raw", "iso"):
        from ukbuild.disk.output import DEFAULT_EPOCH  # noqa: PLC0415

        epoch = max(_epoch(), DEFAULT_EPOCH)  # FAT and ISO dates start in 1980
        if args.format == "raw":
            from ukbuild.disk.rawdisk import write_raw_disk  # noqa: PLC0415

            write_raw_disk(args.out, kernel, cmdline=args.cmdline, size_mib=args.size_mib,
                           label=args.label, extra_files=files, epoch=epoch)
        else:
            from ukbuild.disk.iso import write_iso  # noqa: PLC0415

            write_iso(args.out, kernel, cmdline=args.cmdline, label=args.label, extra_files=files, epoch=epoch)
        return
    _emit_oci(args, kernel, files)


def _emit_oci(args: argparse.Namespace, kernel: bytes, files: list[tuple[str, bytes]]) -> None:
    from ukbuild.oci import layout, model, tar  # noqa: PLC0415

    epoch = _epoch()
    annotations = dict(_pairs(args.annotation, "--annotation"))
    annotations.update(model.standard_annotations(created=epoch, title=args.name))
    cmd = [args.cmdline] if args.cmdline else []  # verbatim: one argument, as the kernel gets it
    if args.urunc:
        from ukbuild.oci.urunc import UruncSpec, urunc_image  # noqa: PLC0415

        guest, _, monitor = args.urunc.partition(":")
        image = urunc_image(
            UruncSpec(unikernel_type=guest, hypervisor=monitor, bake=args.bake), kernel,
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
        from ukbuild.oci.kraftkit import kraftkit_manifest  # noqa: PLC0415

        kraft = kraftkit_manifest(kernel, cmd=cmd, mtime=epoch, created=epoch)
        tagged = model.image_index([image, kraft])
    if args.format == "oci":
        layout.write_oci_layout(args.out, {args.tag: tagged})
    elif args.format == "oci-archive":
        layout.write_oci_archive(args.out, {args.tag: tagged}, mtime=epoch)
    else:
        if not isinstance(tagged, model.Manifest):
            raise SystemExit("error: a docker archive holds one image: drop --kraftkit")
        layout.write_docker_archive(args.out, {f"{args.name}:{args.tag}": tagged}, mtime=epoch)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        emit(args)
    except UkbuildError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.detail:
            print(exc.detail, file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
