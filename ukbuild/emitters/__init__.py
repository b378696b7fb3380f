"""Image emitters: the program that image actions run (``python -m ukbuild.emitters``).

Each image is an action in the graph like any other — staged inputs, a
command, declared outputs, a key — so images are cached and rebuilt exactly
when their kernel, options or bootloader files change.  The command is
``ukbuild-emit FORMAT …``, a launcher the executor puts on the action's PATH.
"""
