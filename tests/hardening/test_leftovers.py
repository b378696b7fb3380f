"""What a killed build leaves behind is cleaned up by the next one."""

from __future__ import annotations

from pathlib import Path

from tests.core.helpers import ukbuild
from tests.hardening.helpers import output_files, write_project


def test_dead_writers_temp_file_beside_an_up_to_date_output_is_removed(tmp_path: Path, private_tmpdir: Path) -> None:
    """A build killed while replacing an output leaves ``.NAME.ukbuild-tmp``; when the next build
    finds the output itself already current, it still removes the partial temp file."""
    project = write_project(tmp_path / "p", small=2, large=1)
    cache = tmp_path / "cache"
    assert ukbuild("build", "-C", project, "--cache-dir", cache).code == 0
    reference = output_files(project / "out")
    partial = project / "out" / "b" / ".0.bin.ukbuild-tmp"
    partial.write_bytes(b"half of a file")
    (project / "out" / ".ukbuild" / "noop").unlink()
    assert ukbuild("build", "-C", project, "--cache-dir", cache).code == 0
    assert not partial.exists()
    assert output_files(project / "out") == reference
