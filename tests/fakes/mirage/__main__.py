"""``python -m tests.fakes.mirage ROOT``: install the fake toolchain under ROOT."""

from __future__ import annotations

import argparse
from pathlib import Path

from tests.fakes.mirage._install import install_fake_mirage


def main() -> None:
    """Install and print the switch's bin directory to put on PATH."""
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.mirage", description=__doc__)
    parser.add_argument("root", type=Path, help="where the opam root and source archives go")
    fake = install_fake_mirage(parser.parse_args().root)
    print(fake.bin_dir)


if __name__ == "__main__":
    main()
