"""A minimal FFSv1 (little-endian) reader for tests: Debian has no FFS tool that reads
images (no fsck_ffs, no ufs kernel module on the CI machine), so the layout is read
back here from the on-disk structures of NetBSD's ``<ufs/ffs/fs.h>`` and ``<ufs/ufs/dinode.h>``.

Direct blocks only (files up to 12 blocks), which is all the tests write.
"""

from __future__ import annotations

import struct
from pathlib import Path

import attrs

SBLOCK = 8192
MAGIC = 0x011954
ROOT_INODE = 2


@attrs.frozen
class Inode:
    mode: int
    uid: int
    gid: int
    size: int
    mtime: int
    blocks: tuple[int, ...]


class Ffs:
    def __init__(self, path: Path) -> None:
        self.data = path.read_bytes()
        sb = self.data[SBLOCK : SBLOCK + 2048]

        def i32(offset: int) -> int:
            return struct.unpack_from("<i", sb, offset)[0]

        assert i32(1372) == MAGIC, "not an FFSv1 little-endian superblock"
        self.iblkno, self.cgoffset, self.cgmask = i32(16), i32(24), i32(28)
        self.bsize, self.fsize, self.ipg, self.fpg = i32(48), i32(52), i32(184), i32(188)
        self.pointers = sb[824:856]

    def inode(self, number: int) -> Inode:
        cg, index = divmod(number, self.ipg)
        cgstart = cg * self.fpg + self.cgoffset * (cg & ~self.cgmask)
        offset = (cgstart + self.iblkno) * self.fsize + index * 128
        raw = self.data[offset : offset + 128]
        mode, _nlink = struct.unpack_from("<HH", raw, 0)
        (size,) = struct.unpack_from("<Q", raw, 8)
        (mtime,) = struct.unpack_from("<i", raw, 24)
        blocks = struct.unpack_from("<12i", raw, 40)
        uid, gid = struct.unpack_from("<II", raw, 112)
        return Inode(mode, uid, gid, size, mtime, blocks)

    def content(self, inode: Inode) -> bytes:
        if inode.mode & 0o170000 == 0o120000 and inode.size < 60:  # a short symlink lives in the inode
            return b"".join(struct.pack("<i", b) for b in inode.blocks)[: inode.size]
        out = bytearray()
        for block in inode.blocks:
            if len(out) >= inode.size:
                break
            out += self.data[block * self.fsize : block * self.fsize + self.bsize]
        assert len(out) >= inode.size, "file larger than its direct blocks"
        return bytes(out[: inode.size])

    def listing(self, number: int = ROOT_INODE, prefix: str = "") -> dict[str, tuple[Inode, bytes]]:
        """Every path below directory ``number`` → (inode, content)."""
        out: dict[str, tuple[Inode, bytes]] = {}
        data = self.content(self.inode(number))
        pos = 0
        while pos < len(data):
            ino, reclen, _type, namlen = struct.unpack_from("<IHBB", data, pos)
            name = data[pos + 8 : pos + 8 + namlen].decode()
            pos += reclen
            if ino == 0 or name in (".", ".."):
                continue
            inode = self.inode(ino)
            path = prefix + name
            out[path] = (inode, self.content(inode))
            if inode.mode & 0o170000 == 0o040000:
                out.update(self.listing(ino, path + "/"))
        return out
