#!/usr/bin/env bash
# Set up napari-liftpose on a fresh Debian/Ubuntu machine: system libraries for Qt/OpenGL under
# Xvfb, a virtual environment in .venv, PyTorch (the CUDA build where an NVIDIA GPU is present,
# the CPU build everywhere else; scripts/install_torch.sh says which), then the package with
# its Qt binding and test extras.
set -euo pipefail
cd "$(dirname "$0")/.."

if command -v apt-get >/dev/null 2>&1; then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends \
        xvfb xauth libgl1 libegl1 libgl1-mesa-dri libglib2.0-0 libfontconfig1 libdbus-1-3 \
        libxkbcommon-x11-0 libxcb-icccm4 libxcb-keysyms1 libxcb-xinerama0 libxcb-randr0 \
        libxcb-render-util0 libxcb-shape0 libxcb-cursor0 libxcb-image0 libxcb-xfixes0 \
        libxcb-xkb1 libxrender1 libxi6 >/dev/null
fi

PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# PyTorch first: left to pip, `torch` would be PyPI's CUDA build (several GB) even with no GPU.
bash scripts/install_torch.sh .venv/bin/python
.venv/bin/python -m pip install -q -e ".[all,testing]"
echo "napari-liftpose installed in .venv"
