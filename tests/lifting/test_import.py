import subprocess
import sys


def test_lifting_imports_neither_napari_nor_qt():
    code = (
        "import sys, napari_liftpose.lifting; "
        "bad = [m for m in ('napari', 'qtpy', 'PyQt5', 'PySide2', 'PyQt6', 'PySide6')"
        ""
        " if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_lifting_source_never_prints_or_imports_ui():
    from pathlib import Path

    import napari_liftpose.lifting as lifting

    for path in Path(lifting.__file__).parent.glob("*.py"):
        text = path.read_text()
        assert "print(" not in text, path
        for banned in ("import napari\n", "from napari ", "qtpy", "argparse"):
            assert banned not in text, (path, banned)
