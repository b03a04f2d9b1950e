"""What a user installs: a complete sdist with its LICENSE, and a demo that says what is missing."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
#: Folders the sdist must ship whole (the package, its tests, docs, benchmarks, scripts).
SHIPPED = ("src", "tests", "docs", "benchmarks", "scripts")


def source_files(top: str) -> set[str]:
    """The checkout's files under ``top`` (caches and build output aside), relative to REPO."""
    found = set()
    for path in (REPO / top).rglob("*"):
        rel = path.relative_to(REPO)
        if (
            path.is_file()
            and path.suffix not in {".pyc", ".pyo"}
            and not any(p == "__pycache__" or p.endswith(".egg-info") for p in rel.parts)
        ):
            found.add(rel.as_posix())
    return found


def build(kind: str, out: Path) -> Path:
    """Build the sdist or the wheel of the checkout into ``out``, offline (no isolation)."""
    pytest.importorskip("build")
    pytest.importorskip("setuptools")
    if not (REPO / "pyproject.toml").is_file() or not (REPO / "MANIFEST.in").is_file():
        pytest.skip("not a source checkout")
    command = [sys.executable, "-m", "build", f"--{kind}", "--no-isolation", "--outdir", str(out)]
    done = subprocess.run([*command, str(REPO)], capture_output=True, text=True, cwd=out)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    (archive,) = out.glob("napari_liftpose-*.tar.gz" if kind == "sdist" else "*.whl")
    return archive


@pytest.fixture(scope="module")
def sdist(tmp_path_factory) -> set[str]:
    """The names in a freshly built sdist, relative to its top folder."""
    archive = build("sdist", tmp_path_factory.mktemp("sdist"))
    with tarfile.open(archive) as tar:
        names = [m.name for m in tar.getmembers() if m.isfile()]
    return {name.split("/", 1)[1] for name in names}


def test_the_wheel_holds_every_file_of_the_package(tmp_path):
    """Data files beside the code (napari.yaml, body models, built-in lifters) included."""
    with zipfile.ZipFile(build("wheel", tmp_path)) as wheel:
        names = set(wheel.namelist())
    package = {n.removeprefix("src/") for n in source_files("src/napari_liftpose")}
    missing = sorted(package - names)
    assert not missing, f"missing from the wheel: {missing[:20]}"


def test_the_sdist_ships_every_test_doc_benchmark_and_script(sdist):
    missing = sorted(set().union(*map(source_files, SHIPPED)) - sdist)
    assert not missing, f"missing from the sdist: {missing[:20]}"
    for name in ("LICENSE", "README.md", "pyproject.toml", "tests/conftest.py", ".ci/run"):
        assert name in sdist
    assert not [n for n in sdist if "__pycache__" in n or n.endswith(".pyc")]


def test_the_license_is_the_declared_bsd_3():
    text = (REPO / "LICENSE").read_text()
    assert text.startswith("BSD 3-Clause License")
    assert "Neither the name of the copyright holder" in text
    assert 'license = "BSD-3-Clause"' in (REPO / "pyproject.toml").read_text()


@pytest.mark.skipif(
    importlib.util.find_spec("PySide6") is not None, reason="PySide6 is installed here"
)
def test_demo_without_a_qt_binding_says_what_to_install(tmp_path):
    """QT_API names PySide6, which is not installed: qtpy finds no binding, as after a bare
    ``pip install napari-liftpose``. The demo says what to install before doing any work."""
    env = {**os.environ, "QT_API": "pyside6", "DISPLAY": ":99", "OMP_NUM_THREADS": "1"}
    env.pop("FORCE_QT_API", None)
    folder = tmp_path / "demo"
    done = subprocess.run(
        [sys.executable, "-m", "napari_liftpose.cli", "demo", "-o", str(folder)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1, done.stderr
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert lines[0].startswith("error: napari-liftpose demo: napari needs a Qt binding")
    assert "pip install 'napari-liftpose[all]'" in lines[0] and "--headless" in lines[0]
    assert not folder.exists()  # nothing built, nothing trained
    assert done.stdout == ""
