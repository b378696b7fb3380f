"""``python -m tests.fakes.rumprun PREFIX``: install the fake toolchain at PREFIX."""

from __future__ import annotations

import argparse
from pathlib import Path

from tests.fakes.rumprun._install import install_fake_rumprun


def main() -> None:
    """Install and print the bin directory to put on PATH."""
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.rumprun", description=__doc__)
    parser.add_argument("prefix", type=Path, help="install prefix (absolute paths get baked in)")
    fake = install_fake_rumprun(parser.parse_args().prefix)
    print(fake.bin_dir)


if __name__ == "__main__":
    main()
