#!/usr/bin/env bash
# Set up BuildGrid 0.9.1 (a REAPI CAS + ActionCache server) in its own venv for the remote tests.
#   tests/remote/setup_buildgrid.sh VENV_DIR
# BuildGrid 0.9.1 needs Python >= 3.13, which the machine image has through pyenv.
# Idempotent: a venv whose bgd already reports the pinned version is left alone.
set -euo pipefail
VERSION=0.9.1
venv=${1:?usage: setup_buildgrid.sh VENV_DIR}

if [ -x "$venv/bin/bgd" ] && "$venv/bin/python" -c \
    "import importlib.metadata as m, sys; sys.exit(m.version('buildgrid') != '$VERSION')" 2>/dev/null; then
  exit 0
fi

python=${BUILDGRID_PYTHON:-}
if [ -z "$python" ]; then
  if command -v pyenv >/dev/null && prefix=$(pyenv prefix 3.13.0 2>/dev/null); then
    python="$prefix/bin/python3.13"
  else
    python=$(command -v python3.13 || true)
  fi
fi
if [ -z "$python" ] || [ ! -x "$python" ]; then
  echo "setup_buildgrid: no Python 3.13 (pyenv install 3.13.0, or set BUILDGRID_PYTHON)" >&2
  exit 1
fi

rm -rf "$venv"
"$python" -m venv "$venv"
log="$venv/pip.log"
for attempt in 1 2 3; do
  if "$venv/bin/python" -m pip install --disable-pip-version-check "buildgrid==$VERSION" > "$log" 2>&1; then
    exit 0
  fi
  echo "setup_buildgrid: pip failed (attempt $attempt), retrying" >&2
  sleep 5
done
tail -20 "$log" >&2
echo "setup_buildgrid: pip install buildgrid==$VERSION failed; full log in $log" >&2
exit 1
