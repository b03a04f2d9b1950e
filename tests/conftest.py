"""Shared fixtures: the real recordings in ``LIFTPOSE_TEST_DATA`` (default ``../shared/data``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("LIFTPOSE_TEST_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """Folder of real recordings; tests using it skip when it is absent."""
    if not DATA_DIR.is_dir():
        pytest.skip(f"test data not found at {DATA_DIR} (set LIFTPOSE_TEST_DATA)")
    return DATA_DIR
