"""``lifting/`` and ``io/`` stay usable without a GUI: they never import napari, Qt or argparse."""

import subprocess
import sys
from pathlib import Path

import pytest

UI = ("napari", "qtpy", "PyQt5", "PySide2", "PyQt6", "PySide6", "magicgui", "vispy")
PACKAGES = ("napari_liftpose.io", "napari_liftpose.lifting")


@pytest.mark.parametrize("package", PACKAGES)
def test_importing_loads_no_ui_module(package):
    """In a fresh interpreter (this one has napari loaded by other tests), import only ``package``."""
    code = (
        f"import sys, {package}; "
        "import pkgutil, importlib; "
        f"[importlib.import_module(m.name) for m in pkgutil.iter_modules({package}.__path__, "
        f"'{package}.')]; "
        f"bad = [m for m in {UI!r} if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("package", PACKAGES)
def test_source_never_imports_ui_or_argparse(package):
    """``argparse`` is loaded by torch itself, so the source is checked, not ``sys.modules``."""
    folder = Path(__file__).resolve().parents[2] / "src" / Path(*package.split("."))
    files = sorted(folder.glob("*.py"))
    assert len(files) > 3, folder
    for path in files:
        text = path.read_text()
        for banned in ("import napari\n", "from napari ", "qtpy", "import argparse", "magicgui"):
            assert banned not in text, (path, banned)


def test_lifting_source_never_prints():
    folder = Path(__file__).resolve().parents[2] / "src" / "napari_liftpose" / "lifting"
    for path in folder.glob("*.py"):
        assert "print(" not in path.read_text(), path
