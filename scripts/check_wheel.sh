#!/usr/bin/env bash
# What a user gets from `pip install`: build the wheel, install it with its Qt extra into a
# fresh virtual environment (PyTorch as scripts/install_torch.sh chooses), and run the demo
# headless from outside the checkout. Fails unless the demo writes its model and metrics.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$PWD"
PYTHON="${PYTHON:-python3}"
TMP="$(mktemp -d "${TMPDIR:-/tmp}/liftpose-wheel.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT

.venv/bin/python -m build --wheel --no-isolation --outdir "$TMP/dist" . >"$TMP/build.log" 2>&1 \
    || { cat "$TMP/build.log" >&2; exit 1; }
"$PYTHON" -m venv "$TMP/venv"
"$TMP/venv/bin/python" -m pip install -q --upgrade pip
bash "$REPO/scripts/install_torch.sh" "$TMP/venv/bin/python"
wheel="$(ls "$TMP"/dist/napari_liftpose-*.whl)"
"$TMP/venv/bin/python" -m pip install -q "$wheel[all]"
echo "installed $(basename "$wheel")[all]; Qt binding: $("$TMP/venv/bin/python" -c 'import qtpy; print(qtpy.API_NAME)')"

cd "$TMP"  # not the checkout: the installed package, not src/, must be what runs
OMP_NUM_THREADS=1 "$TMP/venv/bin/napari-liftpose" demo --headless --epochs 3 -o demo
for f in insect_lifter.safetensors walk_3d_lifted.npz metrics.json; do
    [ -s "demo/$f" ] || { echo "the demo did not write $f" >&2; exit 1; }
done
echo "wheel check: demo --headless ran from a fresh venv"
