"""Shared fixtures: the real recordings in ``LIFTPOSE_TEST_DATA`` (default ``../shared/data``)."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("LIFTPOSE_TEST_DATA", REPO.parent / "shared" / "data"))


# -- without PyTorch, what needs it skips ------------------------------------------------------
# On a Python with no CPU build of PyTorch at hand (scripts/test_python.sh), the tests that need
# it skip instead of failing: an ``import torch`` from this package or from a test module (at
# collection or inside a test) raises pytest's skip. Other libraries probing for torch with
# ``try: import torch`` get the usual ImportError.
HAVE_TORCH = importlib.util.find_spec("torch") is not None
_OURS = ("napari_liftpose", "tests", "conftest", "test_")


class _SkipWithoutTorch:
    """A ``sys.meta_path`` finder that turns our ``import torch`` into a skip."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        if name != "torch" and not name.startswith("torch."):
            return None
        frame = sys._getframe(1)
        while frame is not None and frame.f_globals.get("__name__", "").startswith(
            ("importlib", "_frozen_importlib")
        ):
            frame = frame.f_back
        importer = frame.f_globals.get("__name__", "") if frame is not None else ""
        if importer.startswith(_OURS):
            raise pytest.skip.Exception(
                f"needs PyTorch, not installed for Python {sys.version.split()[0]}",
                allow_module_level=True,
            )
        return None


if not HAVE_TORCH:
    sys.meta_path.insert(0, _SkipWithoutTorch())

#: What the command line says, in a subprocess, when it needs torch (cli/_common.py): its start
#: and its end, as pytest may shorten the middle of a long value in its report.
_CLI_WITHOUT_TORCH = ("needs torch, which is not installed", "whl/cpu for the CPU build)")


def _skip_if_the_cli_lacked_torch(item, report) -> None:
    """A test that failed only because a ``napari-liftpose`` subprocess had no torch: skipped."""
    if HAVE_TORCH or not report.failed:
        return
    text = str(report.longrepr)
    if not any(marker in text for marker in _CLI_WITHOUT_TORCH):
        return
    path, line, _ = item.location
    report.outcome = "skipped"
    report.longrepr = (
        path,
        (line or 0) + 1,
        f"Skipped: needs PyTorch, not installed for Python "
        f"{sys.version.split()[0]} (the command line said so)",
    )


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """Folder of real recordings; tests using it skip when it is absent."""
    if not DATA_DIR.is_dir():
        pytest.skip(f"test data not found at {DATA_DIR} (set LIFTPOSE_TEST_DATA)")
    return DATA_DIR


# -- every test that trains a network is marked slow -------------------------------------------
# ``train`` starts its network with ``training.init_weights``; that name is wrapped (the real
# function still runs) so that a test which trains in-process (directly, through the CLI's
# ``main``, the widget, or a fixture it uses) fails unless marked ``slow``. Calls refused before
# a network exists (bad inputs) do not count. Training in a subprocess (``run_cli("train")``)
# is not seen: mark those by hand.
_TRAININGS = [0]


def _count_trainings() -> None:
    import functools

    import napari_liftpose.lifting.training as training

    real = training.init_weights

    @functools.wraps(real)
    def init_weights(*args, **kwargs):
        _TRAININGS[0] += 1
        return real(*args, **kwargs)

    training.init_weights = init_weights


if HAVE_TORCH:
    _count_trainings()
_BEFORE = pytest.StashKey[int]()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
    item.stash[_BEFORE] = _TRAININGS[0]
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    _skip_if_the_cli_lacked_torch(item, report)
    if call.when != "call" or not report.passed or item.get_closest_marker("slow"):
        return
    if _TRAININGS[0] > item.stash.get(_BEFORE, _TRAININGS[0]):
        report.outcome = "failed"
        report.longrepr = (
            f"{item.nodeid} trains a network (or uses a fixture that does) but is not marked "
            "@pytest.mark.slow"
        )
