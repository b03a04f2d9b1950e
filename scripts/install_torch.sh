#!/usr/bin/env bash
# Install PyTorch into the environment of the Python given (default .venv/bin/python): the CUDA
# build where an NVIDIA GPU answers `nvidia-smi`, the CPU build everywhere else (PyPI's default
# Linux wheel pulls several GB of CUDA libraries that a laptop without a GPU cannot use).
#
#   LIFTPOSE_TORCH=cpu|cuda  chooses instead of detecting; an installed torch is kept as it is.
#   LIFTPOSE_TORCH_DRY_RUN=1 prints the pip command instead of running it (for the tests).
set -euo pipefail
PY="${1:-.venv/bin/python}"

run() {
    if [ -n "${LIFTPOSE_TORCH_DRY_RUN:-}" ]; then echo "would run: $*"; else "$@"; fi
}

if "$PY" -c "import torch" >/dev/null 2>&1; then
    echo "PyTorch $("$PY" -c 'import torch; print(torch.__version__)') already installed: kept"
    exit 0
fi

want="${LIFTPOSE_TORCH:-}"
why="chosen with LIFTPOSE_TORCH=$want"
if [ -z "$want" ]; then
    why="no NVIDIA GPU found"
    if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
        want=cuda
    else
        want=cpu
    fi
fi

# A CPU wheel for this Python in a local wheel folder (pip's find-links), if one is configured.
local_cpu_wheel() {
    local tag dirs dir wheel
    tag="$("$PY" -c 'import sys; print("cp%d%d" % sys.version_info[:2])')"
    dirs="${PIP_FIND_LINKS:-} $("$PY" -m pip config get global.find-links 2>/dev/null || true)"
    for dir in $dirs; do
        dir="${dir#file://}"
        [ -d "$dir" ] || continue
        # the newest in the first folder that has one (no `| head`: under pipefail, a writer cut
        # off by head fails the whole script with SIGPIPE, as a folder listed twice did)
        wheel="$(find "$dir" -maxdepth 1 -name "torch-*+cpu-$tag-$tag-*.whl" | sort -V | tail -n 1)"
        if [ -n "$wheel" ]; then
            echo "$wheel"
            return 0
        fi
    done
}

case "$want" in
cuda)
    gpu="$(nvidia-smi -L 2>/dev/null | head -n 1 || true)"
    echo "PyTorch: CUDA build (NVIDIA GPU: ${gpu:-chosen with LIFTPOSE_TORCH=cuda})"
    run "$PY" -m pip install -q torch  # PyPI's Linux wheel is the CUDA build
    ;;
cpu)
    wheel="$(local_cpu_wheel)"
    if [ -n "$wheel" ]; then
        echo "PyTorch: CPU build ($why), from $wheel"
        run "$PY" -m pip install -q "$wheel"
    else
        echo "PyTorch: CPU build ($why), from https://download.pytorch.org/whl/cpu"
        run "$PY" -m pip install -q torch --index-url https://download.pytorch.org/whl/cpu
    fi
    ;;
*)
    echo "LIFTPOSE_TORCH must be cpu or cuda, not '$want'" >&2
    exit 2
    ;;
esac
