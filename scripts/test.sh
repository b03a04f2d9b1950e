#!/usr/bin/env bash
# Lint, then run the whole test suite under a virtual X server (napari needs OpenGL to draw).
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check src tests benchmarks
exec xvfb-run -a -s "-screen 0 1280x1024x24" .venv/bin/python -m pytest "$@"
