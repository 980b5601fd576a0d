#!/usr/bin/env bash
# Build the sdist and the wheel, install the wheel (not editable) with its dependencies into a fresh
# virtualenv, and use it from a folder outside the source tree (.ci/wheel_smoke.py says what is checked).
# A package file missing from the wheel (the digit pad's page, py.typed, the LICENSE) fails here, where the
# tests, run from the editable install, would not notice.
#
#   bash .ci/wheel_check.sh   # with the dev virtualenv active (it has `build`); .ci/run runs it
#
# Cost (docs/contributing.md): 4-5 min on 2 shared cores at load 7.5-12, about 72 s of CPU; most of it is disk:
# pip unpacking torch and its CUDA libraries (~5.4 GB, from this machine's local files) into the temp folder
# that is removed at the end. The dependencies are installed as the wheel declares them, so a missing one
# fails here too.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/ignite-mnist-wheel.XXXXXX")"
trap 'rm -rf "$work"' EXIT

python -m build --outdir "$work/dist" "$repo" >"$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
wheel=("$work"/dist/*.whl)
echo "wheel check: built $(cd "$work/dist" && echo *)"

# The dataset: a small generated one in the MNIST layout, by the tests' own generator (this Python, the repo's).
(cd "$repo" && python -c "import sys; from pathlib import Path; from tests.conftest import make_idx_dataset; \
make_idx_dataset(Path(sys.argv[1]))" "$work/data")

python -m venv "$work/venv"
"$work/venv/bin/pip" install --no-compile "${wheel[0]}" >"$work/pip.log" 2>&1 || { cat "$work/pip.log"; exit 1; }
echo "wheel check: installed into a fresh virtualenv with its dependencies"

mkdir "$work/outside"
cd "$work/outside"   # no source tree here: `import ignite_mnist` can only find the installed wheel
env -u PYTHONPATH -u IGNITE_MNIST_DATA_DIR "$work/venv/bin/python" "$repo/.ci/wheel_smoke.py" "${wheel[0]}" "$work/data"
echo "wheel check: passed"
