"""What a user installs: a complete sdist with its LICENSE, and a demo that says what is missing."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
#: Folders the sdist must ship whole (the package, its tests, docs, benchmarks, scripts).
SHIPPED = ("src", "tests", "docs", "benchmarks", "scripts")
SHIPPED_SUFFIXES = {".py", ".yaml", ".md", ".png", ".sh"}


def source_files() -> set[str]:
    """The checkout's files under SHIPPED (caches and build output aside)."""
    found = set()
    for top in SHIPPED:
        for path in (REPO / top).rglob("*"):
            rel = path.relative_to(REPO)
            if (
                path.is_file()
                and path.suffix in SHIPPED_SUFFIXES
                and not any(p == "__pycache__" or p.endswith(".egg-info") for p in rel.parts)
            ):
                found.add(rel.as_posix())
    return found


@pytest.fixture(scope="module")
def sdist(tmp_path_factory) -> set[str]:
    """The names in a freshly built sdist, relative to its top folder."""
    pytest.importorskip("build")
    pytest.importorskip("setuptools")  # built without isolation: offline, as fast as can be
    if not (REPO / "pyproject.toml").is_file() or not (REPO / "MANIFEST.in").is_file():
        pytest.skip("not a source checkout")
    out = tmp_path_factory.mktemp("sdist")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--sdist",
            "--no-isolation",
            "--outdir",
            str(out),
            str(REPO),
        ],
        capture_output=True,
        text=True,
        cwd=out,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    (archive,) = out.glob("napari_liftpose-*.tar.gz")
    with tarfile.open(archive) as tar:
        names = [m.name for m in tar.getmembers() if m.isfile()]
    return {name.split("/", 1)[1] for name in names}


def test_the_sdist_ships_every_test_doc_benchmark_and_script(sdist):
    missing = sorted(source_files() - sdist)
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
