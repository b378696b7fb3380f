"""Fuzzing the project loader and the stored-message decoders with hypothesis.

The loader may only raise ConfigError, and its message starts with the project file (then the
line and field where there is one); the decoders may only raise StoreError or ValueError.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from tests.hardening.conftest import long_run
from ukbuild._project import load_project
from ukbuild._reapi import (
    ActionResult,
    Digest,
    Directory,
    DirectoryNode,
    FileNode,
    OutputDirectory,
    OutputFile,
    OutputSymlink,
    SymlinkNode,
    Tree,
)
from ukbuild._store import _sealed, _unsealed
from ukbuild.errors import ConfigError, StoreError

SEED = 8
SCHEMA = {
    "project": ["name", "default"],
    "toolchain": ["tools"],
    "action": ["command", "outputs", "inputs", "deps", "env", "toolchain", "workdir", "foreach", "salt"],
    "package": ["version", "source", "depends", "toolchain", "steps", "env"],
}
SOURCE_KEYS = ["url", "sha256", "strip", "patches", "path"]
DEP_KEYS = ["action", "at", "path"]
VALID = """\
[project]
name = "fuzz"
default = ["link"]

[action.compile]
foreach = "src/*.c"
command = ["cc", "-c", "{in}", "-o", "obj/{stem}.o"]
inputs = ["{in}"]
outputs = ["obj/{stem}.o"]

[action.link]
command = ["cc", "-o", "bin/app", "obj/a.o"]
deps = ["compile", { action = "compile", at = "x", path = "obj" }]
outputs = ["bin/app"]

[package.lib]
source = { url = "https://example.org/lib.tar.gz", sha256 = "%s", strip = 1 }
steps = ["make"]
env = { CFLAGS = "-O2" }
""" % ("0" * 64)

# Text that exercises paths, placeholders and escapes.
text = st.one_of(
    st.sampled_from(["", "a", "src/*.c", "../x", "/abs", "a\x00b", "{in}", "{in.x}", "{in[0]}", "{stem!z}",
                     "{", "}", "{{}}", "dir/", ".", "host", "compile", "link", "lib", "0" * 64, "x" * 300]),
    st.text(st.characters(min_codepoint=1, max_codepoint=0xFFFF, exclude_categories=("Cs",)), max_size=12),
)
scalars = st.one_of(text, st.integers(-(2**63), 2**63 - 1), st.booleans(), st.floats(allow_nan=False, allow_infinity=False))


def values(keys: list[str]) -> st.SearchStrategy[object]:
    leaf = st.one_of(scalars, st.lists(scalars, max_size=4), st.lists(text, max_size=4))
    nested = st.dictionaries(st.one_of(st.sampled_from(SOURCE_KEYS + DEP_KEYS), text), leaf, max_size=4)
    return st.dictionaries(st.one_of(st.sampled_from(keys), text), st.one_of(leaf, nested, st.lists(st.one_of(text, nested), max_size=3)), max_size=6)


documents = st.dictionaries(
    st.one_of(st.sampled_from(sorted(SCHEMA)), text),
    st.one_of(
        scalars,
        st.dictionaries(st.one_of(st.sampled_from(["name", "default", "fuzz", "compile", "link", "lib", "host"]), text),
                        st.one_of(scalars, st.lists(text, max_size=3), values(sorted({k for ks in SCHEMA.values() for k in ks}))),
                        max_size=4),
    ),
    max_size=5,
)


def toml(value: object) -> str:
    """A TOML value (inline tables and arrays; strings escaped as JSON, which TOML accepts)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value) if isinstance(value, int) or value != int(value) or abs(value) > 1e15 else repr(float(value))
    if isinstance(value, str):
        return json.dumps(value).replace("\x7f", "\\u007f")
    if isinstance(value, list):
        return "[" + ", ".join(toml(v) for v in value) + "]"
    assert isinstance(value, dict)
    return "{ " + ", ".join(f"{json.dumps(k)} = {toml(v)}" for k, v in value.items()) + " }"


def render(doc: dict[str, object]) -> str:
    """Scalars first, then tables as [headers] with key = value lines, as people write them."""
    lines = [f"{json.dumps(k)} = {toml(v)}" for k, v in doc.items() if not isinstance(v, dict)]
    for top, body in doc.items():
        if isinstance(body, dict):
            for name, inner in body.items():
                if isinstance(inner, dict):
                    lines.append(f"[{json.dumps(top)}.{json.dumps(name)}]")
                    lines += [f"{json.dumps(k)} = {toml(v)}" for k, v in inner.items()]
                else:
                    lines.append(f"[{json.dumps(top)}]\n{json.dumps(name)} = {toml(inner)}")
    return "\n".join(lines) + "\n"


def examples(request: pytest.FixtureRequest, fast: int) -> settings:
    return settings(max_examples=fast * 10 if long_run(request.config) else fast, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def check_load(file: Path, content: str | bytes) -> None:
    """Load ``content`` as the project file: a project or a ConfigError naming the file."""
    if isinstance(content, bytes):
        file.write_bytes(content)
    else:
        file.write_text(content, encoding="utf-8")
    try:
        load_project(file)
    except ConfigError as exc:
        assert re.match(re.escape(str(file)) + r"(:\d+)?: .", exc.message, re.DOTALL), exc.message


@pytest.fixture
def project_file(tmp_path: Path) -> Path:
    (tmp_path / "src").mkdir()
    for name in ("a.c", "b.c"):
        (tmp_path / "src" / name).write_text("int x;\n")
    return tmp_path.resolve() / "ukbuild.toml"


def test_valid_sample_loads(project_file: Path) -> None:
    project_file.write_text(VALID)
    assert sorted(load_project(project_file).actions) == ["compile[a]", "compile[b]", "lib", "link"]


def test_structured_documents(request: pytest.FixtureRequest, project_file: Path) -> None:
    """Documents shaped like projects (known and unknown tables and fields, values of every type)."""

    @seed(SEED)
    @examples(request, 300)
    @given(documents)
    def run(doc: dict[str, object]) -> None:
        check_load(project_file, render(doc))

    run()


def test_mutated_text(request: pytest.FixtureRequest, project_file: Path) -> None:
    """A valid project with bytes deleted, replaced or inserted: syntax and semantic errors alike."""

    @seed(SEED)
    @examples(request, 300)
    @given(st.lists(st.tuples(st.integers(0, len(VALID)), st.integers(0, 8), st.binary(max_size=8)), min_size=1, max_size=4))
    def run(edits: list[tuple[int, int, bytes]]) -> None:
        data = VALID.encode()
        for at, cut, insert in edits:
            data = data[:at] + insert + data[at + cut :]
        check_load(project_file, data)

    run()


@pytest.mark.parametrize(
    ("content", "where"),
    [
        ("a = " + "[" * 50_000 + "]" * 50_000 + "\n", "nested too deeply"),
        ('[project]\nname = "p"\n[action.a]\nforeach = "src/*.c"\ncommand = ["{in.x}"]\noutputs = ["o"]\n', "action.a.command"),
        ('[project]\nname = "p"\n[action.a]\nforeach = "src/*.c"\ncommand = ["c"]\noutputs = ["{in[x]}"]\n', "action.a.outputs"),
    ],
)
def test_inputs_that_escaped_as_tracebacks(project_file: Path, content: str, where: str) -> None:
    """Found while writing the fuzzer: deep nesting (RecursionError in tomllib), attribute and
    index placeholders (AttributeError, TypeError from format_map) are ConfigErrors."""
    project_file.write_text(content)
    with pytest.raises(ConfigError, match=re.escape(str(project_file))) as info:
        load_project(project_file)
    assert where in info.value.message


# --- decoders ------------------------------------------------------------------

digests = st.builds(Digest, st.text("0123456789abcdef", min_size=64, max_size=64), st.integers(0, 2**40))
names = st.text(max_size=8)
directories = st.builds(
    Directory,
    st.lists(st.builds(FileNode, names, digests, st.booleans()), max_size=3).map(tuple),
    st.lists(st.builds(DirectoryNode, names, digests), max_size=2).map(tuple),
    st.lists(st.builds(SymlinkNode, names, names), max_size=2).map(tuple),
)
results = st.builds(
    ActionResult,
    st.lists(st.builds(OutputFile, names, digests, st.booleans()), max_size=3).map(tuple),
    st.lists(st.builds(OutputDirectory, names, digests, digests), max_size=2).map(tuple),
    st.lists(st.builds(OutputSymlink, names, names), max_size=2).map(tuple),
    st.integers(0, 255),
    st.none() | digests,
    st.none() | digests,
)


def mutate(data: bytes, edits: list[tuple[int, int, bytes]]) -> bytes:
    for at, cut, insert in edits:
        at %= len(data) + 1
        data = data[:at] + insert + data[at + cut :]
    return data


edits = st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 4), st.binary(max_size=4)), max_size=4)


def test_decoders_raise_only_store_or_value_errors(request: pytest.FixtureRequest) -> None:
    """Valid encodings round-trip; mutated and random bytes raise StoreError or ValueError only."""

    @seed(SEED)
    @examples(request, 500)
    @given(results, directories, edits, st.binary(max_size=64))
    def run(result: ActionResult, directory: Directory, changes: list[tuple[int, int, bytes]], noise: bytes) -> None:
        assert ActionResult.decode(result.encode()) == result
        assert _unsealed(_sealed(result.encode())) == result
        tree = Tree(directory, (directory,))
        assert Tree.decode(tree.encode()) == Tree(
            Directory.decode(directory.encode()), (Directory.decode(directory.encode()),)
        )
        for data in (mutate(result.encode(), changes), mutate(_sealed(result.encode()), changes), noise):
            try:
                ActionResult.decode(data)
            except StoreError:
                pass
            try:
                _unsealed(data)
            except StoreError:
                pass
        for data in (mutate(directory.encode(), changes), mutate(tree.encode(), changes), noise):
            for decode in (Directory.decode, Tree.decode):
                try:
                    decode(data)
                except ValueError:
                    pass

    run()
