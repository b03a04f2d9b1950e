#!/usr/bin/env bash
# Run the test suite on another Python (3.10, 3.12, 3.13, ...) from pyenv, without PyTorch.
#
#   bash scripts/test_python.sh 3.13 [pytest arguments]
#
# No CPU build of PyTorch is at hand for these interpreters here (PyPI's pulls several GB of
# CUDA), so the package is installed with every dependency but torch, and the tests that need
# torch skip themselves (tests/conftest.py). Where a CPU wheel for that Python is available,
# set WITH_TORCH=1 to install it and run everything. The virtual environment is kept in
# $LIFTPOSE_VENVS (default ~/.cache/napari-liftpose/venvs) and reused.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION="${1:?usage: scripts/test_python.sh 3.X [pytest arguments]}"
shift

PYTHON=""
for candidate in "$HOME"/.pyenv/versions/"$VERSION".*/bin/python "$(command -v "python$VERSION" || true)"; do
    if [ -x "$candidate" ]; then PYTHON="$candidate"; break; fi
done
if [ -z "$PYTHON" ]; then
    echo "no Python $VERSION found (pyenv or python$VERSION on PATH)" >&2
    exit 2
fi

VENV="${LIFTPOSE_VENVS:-$HOME/.cache/napari-liftpose/venvs}/py$VERSION"
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip

# Every dependency and test extra, torch left out (markers are evaluated by the target's pip).
REQUIREMENTS="$VENV/requirements.txt"
"$VENV/bin/python" - "$REQUIREMENTS" "${WITH_TORCH:-0}" <<'EOF'
import re
import sys

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pyproject read without tomllib (plain lists only)
    tomllib = None

text = open("pyproject.toml", encoding="utf-8").read()
if tomllib is not None:
    project = tomllib.loads(text)["project"]
    requirements = project["dependencies"] + project["optional-dependencies"]["testing"]
else:
    def block(name):
        match = re.search(rf"^{name} = \[(.*?)^\]", text, re.S | re.M)
        return re.findall(r'^\s*"(.+?)",?\s*(?:#.*)?$', match.group(1), re.M)

    requirements = block("dependencies") + block("testing")
keep_torch = sys.argv[2] == "1"
kept = [r for r in requirements if keep_torch or not re.match(r"torch\b", r)]
open(sys.argv[1], "w", encoding="utf-8").write("\n".join(kept) + "\n")
EOF
"$VENV/bin/python" -m pip install -q -r "$REQUIREMENTS"
"$VENV/bin/python" -m pip install -q --no-deps --force-reinstall .
echo "Python $("$VENV/bin/python" -c 'import sys; print(sys.version.split()[0])'):" \
    "$("$VENV/bin/python" -c 'import importlib.util as u; print("with" if u.find_spec("torch") else "without")') PyTorch"
export PYTHONDONTWRITEBYTECODE=1
exec xvfb-run -a -s "-screen 0 1280x1024x24" "$VENV/bin/python" -m pytest -p no:cacheprovider "$@"
