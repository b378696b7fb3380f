"""ukbuild_build: one ukbuild build as one hermetic Bazel action."""

def _relative(file, root):
    """FILE's path relative to the directory ROOT (both by short_path)."""
    prefix = root + "/" if root else ""
    if not file.short_path.startswith(prefix):
        fail("%s is not under the project directory %s" % (file.short_path, root or "."))
    return file.short_path[len(prefix):]

def _ukbuild_build_impl(ctx):
    project = ctx.file.project
    root = project.short_path.rpartition("/")[0]
    out_dir = ctx.label.name
    outs = []
    for rel in ctx.attr.outs:
        if not rel or rel.startswith("/") or ".." in rel.split("/") or " " in rel:
            fail("outs: %r: expected a relative path of ukbuild's output dir, without spaces" % rel)
        outs.append(ctx.actions.declare_file(out_dir + "/" + rel))
    if not outs:
        fail("outs: declare at least one of ukbuild's outputs (e.g. kernel/hello.elf)")

    args = ctx.actions.args()
    args.add(outs[0].path[:-len(ctx.attr.outs[0])].rstrip("/"))
    args.add(project)
    for src in ctx.files.srcs:
        args.add("--file", "%s=%s" % (_relative(src, root), src.path))
    for rel in ctx.attr.outs:
        args.add("--output", rel)
    args.add("--")
    args.add_all(ctx.attr.targets)

    ctx.actions.run(
        executable = ctx.executable._ukbuild,
        arguments = [args],
        inputs = [project] + ctx.files.srcs,
        outputs = outs,
        mnemonic = "Ukbuild",
        progress_message = "Building %s with ukbuild" % ctx.label,
        # Takes UKBUILD_PYTHON from --action_env, and PATH pinned by
        # --incompatible_strict_action_env; the wrapper replaces the rest.
        use_default_shell_env = True,
        execution_requirements = {
            "block-network": "",
            # ukbuild's outputs are cheap to rebuild but its own cache is off:
            # Bazel's caches (local and --remote_cache) are the cache here.
        },
    )
    return [DefaultInfo(files = depset(outs))]

ukbuild_build = rule(
    implementation = _ukbuild_build_impl,
    doc = """Runs `ukbuild build TARGETS` on a project and exposes the named outputs.

Only `project` and `srcs` are visible to ukbuild; the outputs are
`<name>/<rel>` for each `rel` in `outs` (paths in ukbuild's output dir).""",
    attrs = {
        "project": attr.label(allow_single_file = [".toml"], mandatory = True, doc = "the ukbuild.toml"),
        "srcs": attr.label_list(allow_files = True, doc = "every file the project reads, under the project file's directory"),
        "targets": attr.string_list(doc = "ukbuild targets to build (default: the project's defaults)"),
        "outs": attr.string_list(mandatory = True, doc = "outputs, relative to ukbuild's output dir"),
        "_ukbuild": attr.label(default = "//tools:ukbuild.sh", executable = True, allow_single_file = True, cfg = "exec"),
    },
)
