"""ukbuild's MirageOS 4 and Solo5 backend (see README.md)."""
