"""ukbuild: content-addressed builds of unikernel images."""
