#!/bin/sh
# Run one ukbuild build as a hermetic Bazel action.
#
#   ukbuild.sh OUT_DIR PROJECT_FILE [--file REL=PATH]... [--output REL]... [--] [TARGET]...
#
# PROJECT_FILE and every --file are declared inputs.  They are copied (not
# linked: ukbuild resolves the project file's symlinks, and would otherwise
# see the source tree behind Bazel's sandbox) into a scratch project dir, at
# REL relative to the project file.  ukbuild builds TARGETs there with its
# cache off and every path it writes inside the scratch dir; then each
# --output REL is copied to OUT_DIR/REL, which are the action's declared
# outputs.  The scratch dir sits next to OUT_DIR inside the execroot and is
# removed on exit, so nothing is written outside the sandbox or under $HOME.
# ukbuild's output is shown only when it fails.
set -eu

die() { echo "ukbuild.sh: $*" >&2; exit 2; }

[ $# -ge 2 ] || die "usage: ukbuild.sh OUT_DIR PROJECT_FILE [--file REL=PATH]... [--output REL]... [--] [TARGET]..."
out=$1
project=$2
shift 2

case "${UKBUILD_PYTHON:-}" in
    /*) ;;
    "") die "UKBUILD_PYTHON is not set: pass --action_env=UKBUILD_PYTHON=/path/to/venv/bin/python (an interpreter with ukbuild installed)" ;;
    *) die "UKBUILD_PYTHON=$UKBUILD_PYTHON: expected an absolute path" ;;
esac
[ -x "$UKBUILD_PYTHON" ] || die "UKBUILD_PYTHON=$UKBUILD_PYTHON: not an executable"

here=$(pwd)
case "$out" in /*) ;; *) out=$here/$out ;; esac
scratch=$out.ukbuild-tmp
rm -rf "$scratch"
trap 'rm -rf "$scratch"' EXIT INT TERM
mkdir -p "$scratch/project" "$scratch/home" "$scratch/tmp" "$scratch/cache" "$scratch/out" "$out"
cp "$project" "$scratch/project/ukbuild.toml"

outputs=""
while [ $# -gt 0 ]; do
    case "$1" in
        --file)
            rel=${2%%=*}
            src=${2#*=}
            case "$rel" in /*|..|../*|*/../*|*/..) die "--file $2: REL must stay inside the project" ;; esac
            mkdir -p "$scratch/project/$(dirname "$rel")"
            cp "$src" "$scratch/project/$rel"
            shift 2 ;;
        --output)
            outputs="$outputs $2"
            shift 2 ;;
        --)
            shift
            break ;;
        *)
            break ;;
    esac
done

# A fixed environment: nothing of the caller's leaks in, HOME and TMPDIR (the
# root of ukbuild's per-action scratch dirs) are inside the sandbox, Python
# writes no bytecode next to ukbuild's sources and ignores ~/.local.
env -i \
    PATH=/usr/bin:/bin \
    HOME="$scratch/home" \
    TMPDIR="$scratch/tmp" \
    LC_ALL=C \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONNOUSERSITE=1 \
    "$UKBUILD_PYTHON" -m ukbuild build \
    -C "$scratch/project" -o "$scratch/out" --no-cache --cache-dir "$scratch/cache" "$@" \
    >"$scratch/log" 2>&1 || { status=$?; cat "$scratch/log" >&2; exit "$status"; }

for rel in $outputs; do
    [ -f "$scratch/out/$rel" ] || die "ukbuild did not produce declared output $rel (built: $(cd "$scratch/out" && find . -type f ! -path './.ukbuild/*' | sort | tr '\n' ' '))"
    mkdir -p "$out/$(dirname "$rel")"
    cp "$scratch/out/$rel" "$out/$rel"
done
