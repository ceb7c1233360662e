#!/bin/sh
# Build the sample wheel with both hooks, install it into a fresh venv, and run it.
#
# Needs only Python 3.11+ with pip (and network access to PyPI). hatch-component-init
# is installed from this checkout, so the wheel is built without build isolation:
# the build uses what this venv has (hatchling, hatch-component-init, componentize-py).
#
#   sh sample_project/run.sh            # PYTHON=python3.12 sh ... to pick an interpreter
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
python=${PYTHON:-python3}
venv="$here/.venv"
py="$venv/bin/python"

echo "==> Creating $venv"
"$python" -m venv "$venv"
"$py" -m pip install --quiet --upgrade pip

echo "==> Installing hatch-component-init (this checkout), componentize-py and build"
"$py" -m pip install --quiet "$repo" "componentize-py==0.25.1" build

echo "==> Building sdist and wheel: componentize-py builds the component, component-init pre-initializes it"
rm -rf "$here/dist"
"$py" -m build --no-isolation --outdir "$here/dist" "$here"

echo "==> Installing the wheel"
"$py" -m pip uninstall --quiet --yes lexicon 2>/dev/null || true
"$py" -m pip install --quiet "$here"/dist/lexicon-*.whl

# The console script, not `python -m lexicon` from here: this directory holds the
# source package, which has no component in it.
# A real first start: Wasmtime's code cache (under HOME, or XDG_CACHE_HOME on Linux) starts empty.
first_start=$(mktemp -d)
trap 'rm -rf "$first_start"' EXIT
echo "==> lexicon listen wrod   (first start, empty Wasmtime cache: loads the precompiled lexicon.cwasm)"
HOME="$first_start/a" XDG_CACHE_HOME="$first_start/a" "$venv/bin/lexicon" listen wrod

echo "==> lexicon --compile listen   (the same first start without it: compiles lexicon.wasm, seconds)"
HOME="$first_start/b" XDG_CACHE_HOME="$first_start/b" "$venv/bin/lexicon" --compile listen

echo "==> lexicon --compare listen"
"$venv/bin/lexicon" --compare listen
