#!/usr/bin/env bash
# Set up napari-liftpose on a fresh Debian/Ubuntu machine: system libraries for Qt/OpenGL under
# Xvfb, a virtual environment in .venv, the CPU build of PyTorch, then the package with test extras.
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
# The CPU build first: an unpinned torch would pull several GB of CUDA packages.
# Where no local CPU wheel is configured, take it from PyTorch's CPU index.
.venv/bin/python -m pip install -q torch==2.13.0 2>/dev/null \
    || .venv/bin/python -m pip install -q torch --index-url https://download.pytorch.org/whl/cpu
.venv/bin/python -m pip install -q -e ".[testing]"
echo "napari-liftpose installed in .venv"
