"""The Rumprun backend: cross builds with a Rumprun toolchain, ``rumprun-bake``, QEMU runs."""
