#!/usr/bin/env bash
# Build the sdist and the wheel, install the wheel (not editable) with its dependencies into a fresh
# virtualenv, and use it from a folder outside the source tree (.ci/wheel_smoke.py says what is checked).
# A package file missing from the wheel (the digit pad's page, py.typed, the LICENSE) fails here, where the
# tests, run from the editable install, would not notice.
#
#   bash .ci/wheel_check.sh   # with the dev virtualenv active (it has `build`); .ci/run runs it
#
# Cost, measured on 2 busy cores (load ~10): ~2 min, nearly all of it pip unpacking torch into the new
# virtualenv (taken from this machine's local files, no network), ~5.5 GB in a temp folder removed at the end.
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
"$work/venv/bin/pip" install --quiet --no-compile "${wheel[0]}"

mkdir "$work/outside"
cd "$work/outside"   # no source tree here: `import ignite_mnist` can only find the installed wheel
env -u PYTHONPATH -u IGNITE_MNIST_DATA_DIR "$work/venv/bin/python" "$repo/.ci/wheel_smoke.py" "${wheel[0]}" "$work/data"
echo "wheel check: passed"
