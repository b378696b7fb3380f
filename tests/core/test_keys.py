"""Key documents, canonical JSON and the REAPI encodings they rest on."""

from __future__ import annotations

import hashlib

import pytest

from ukbuild._reapi import ActionResult, Digest, Directory, DirectoryNode, FileNode, OutputDirectory, OutputFile, SymlinkNode, Tree
from ukbuild._trees import DirEntry, FileEntry, LinkEntry, flatten_tree, merkle, tree_message
from ukbuild.keys import canonical_json, diff_documents, digest_of, key_document

BASE = dict(
    step="core/run",
    step_version=1,
    config={},
    inputs={"path:src/main.c": "sha256:" + "ab" * 32 + "/10"},
    command=["cc", "-c", "src/main.c", "-o", "obj/main.o"],
    env={"LC_ALL": "C", "SOURCE_DATE_EPOCH": "0", "TZ": "UTC"},
    outputs=["obj/main.o"],
    workdir="",
    platform={"build": "x86_64-linux-gnu", "host": "x86_64-linux-gnu", "target": "x86_64-linux-gnu"},
    toolchain={"name": "host", "tools": {"cc": {"version": "cc 12", "digest": "sha256:" + "cd" * 32 + "/5"}}},
    salt="",
)
DOC = key_document(**BASE)


class TestCanonicalJson:
    def test_sorted_compact_utf8(self) -> None:
        """Keys are sorted, separators compact and non-ASCII kept as UTF-8 (RFC 8785 form)."""
        assert canonical_json({"b": 1, "a": ["é", True, None]}) == '{"a":["é",true,null],"b":1}'.encode()

    def test_floats_rejected(self) -> None:
        """Floats have no canonical form across languages, so keys refuse them."""
        with pytest.raises(TypeError):
            canonical_json({"a": [1.5]})


class TestGoldenKeys:
    def test_key_document_digest_is_pinned(self) -> None:
        """A change to the key document's shape changes every key: it must bump KEY_VERSION."""
        assert str(digest_of(DOC)) == GOLDEN_KEY

    def test_outputs_are_a_set(self) -> None:
        """Output order and duplicates do not change the key."""
        other = key_document(**{**BASE, "outputs": ["obj/main.o", "obj/main.o"]})
        assert digest_of(other) == digest_of(DOC)

    def test_diff_names_exactly_the_changed_leaf(self) -> None:
        """explain relies on diff_documents naming only the leaves that differ."""
        changed = dict(DOC, inputs={"path:src/main.c": "sha256:" + "ef" * 32 + "/11"})
        assert diff_documents(DOC, changed) == [
            ("inputs.path:src/main.c", "sha256:" + "ab" * 32 + "/10", "sha256:" + "ef" * 32 + "/11")
        ]


GOLDEN_KEY = "sha256:d3f7a67db049a3d195b052406fac5c0cef4455c2fc87b506b964fa88f22955e5/562"


class TestReapiEncoding:
    def test_empty_directory_is_the_empty_blob(self) -> None:
        """REAPI's well-known empty Directory digest is sha256 of zero bytes."""
        assert Digest.of(Directory().encode()).hash == hashlib.sha256(b"").hexdigest()

    def test_directory_bytes_match_protobuf(self) -> None:
        """Field order and proto3 defaults as protobuf's SerializeToString writes them."""
        d = Digest("a" * 64, 3)
        data = Directory((FileNode("f", d, True),), (DirectoryNode("d", d),), (SymlinkNode("l", "t"),)).encode()
        digest_bytes = b"\x0a\x40" + b"a" * 64 + b"\x10\x03"
        file_node = b"\x0a\x01f" + b"\x12" + bytes([len(digest_bytes)]) + digest_bytes + b"\x20\x01"
        dir_node = b"\x0a\x01d" + b"\x12" + bytes([len(digest_bytes)]) + digest_bytes
        link_node = b"\x0a\x01l\x12\x01t"
        expected = (
            b"\x0a" + bytes([len(file_node)]) + file_node
            + b"\x12" + bytes([len(dir_node)]) + dir_node
            + b"\x1a" + bytes([len(link_node)]) + link_node
        )
        assert data == expected

    def test_action_result_round_trip(self) -> None:
        d = Digest("b" * 64, 70000)
        result = ActionResult((OutputFile("bin/x", d, True),), (OutputDirectory("pkg", d, d),), (), 0, d, None)
        assert ActionResult.decode(result.encode()) == result

    def test_tree_round_trip(self) -> None:
        """An output directory survives tree_message -> flatten_tree unchanged."""
        d = Digest("c" * 64, 1)
        entries = {"a": DirEntry(), "a/b": FileEntry(d, True), "a/c": LinkEntry("b"), "e": DirEntry()}
        _root, tree, _ = tree_message(entries)
        assert flatten_tree(Tree.decode(tree.encode())) == entries

    def test_tree_children_are_found_by_the_digest_of_their_bytes(self) -> None:
        """A producer may serialise a child Directory in another field order; its parent names
        the digest of those bytes, which a re-encoding would not reproduce."""
        from ukbuild._reapi import _field_bytes  # noqa: PLC0415

        file, link = FileNode("f", Digest("d" * 64, 1)), SymlinkNode("l", "f")
        child = Directory((file,), (), (link,))
        reordered = Directory(symlinks=(link,)).encode() + Directory(files=(file,)).encode()  # fields concatenate
        assert reordered != child.encode() and Directory.decode(reordered) == child
        root = Directory((), (DirectoryNode("sub", Digest.of(reordered)),), ())
        tree = Tree.decode(_field_bytes(1, root.encode()) + _field_bytes(2, reordered))
        assert flatten_tree(tree) == {"sub": DirEntry(), "sub/f": FileEntry(Digest("d" * 64, 1)), "sub/l": LinkEntry("f")}

    def test_merkle_root_depends_on_content_not_order(self) -> None:
        d1, d2 = Digest("1" * 64, 1), Digest("2" * 64, 1)
        a = merkle({"x/1": FileEntry(d1), "x/2": FileEntry(d2)})[0]
        b = merkle({"x/2": FileEntry(d2), "x/1": FileEntry(d1)})[0]
        c = merkle({"x/1": FileEntry(d2), "x/2": FileEntry(d1)})[0]
        assert a == b != c
