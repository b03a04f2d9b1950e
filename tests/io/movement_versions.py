"""movement's dimension names across its versions, for tests that compare with movement.

movement 0.17 renamed the dimensions ``keypoints`` and ``individuals`` to ``keypoint`` and
``individual``; napari-liftpose writes movement 0.17's (singular) layout and reads both.
"""

from __future__ import annotations

import re
from importlib import metadata

import pytest

_PLURAL = {"keypoint": "keypoints", "individual": "individuals"}


def movement_version() -> tuple[int, int] | None:
    """``(major, minor)`` of the installed movement, or None when it is not installed."""
    try:
        match = re.match(r"(\d+)\.(\d+)", metadata.version("movement"))
    except metadata.PackageNotFoundError:
        return None
    return (int(match[1]), int(match[2])) if match else None


def plural_dims(ds):
    """``ds`` with movement >= 0.17's singular dimension names renamed to the plural ones."""
    return ds.rename({old: new for old, new in _PLURAL.items() if old in ds.dims})


#: For tests where movement opens a file written here: movement <= 0.16 expects plural names
#: (on Python 3.11 the newest movement is 0.15; 3.12+ get 0.17).
PLURAL_MOVEMENT = pytest.mark.xfail(
    (0, 0) < (movement_version() or (0, 0)) < (0, 17),
    reason="files are written in movement 0.17's layout (keypoint, individual); movement "
    "<= 0.16 names the dimensions keypoints, individuals",
    strict=True,
)


def in_installed_layout(ds):
    """``ds`` (written here, 0.17 layout) renamed as the installed movement names dimensions."""
    if (0, 0) < (movement_version() or (0, 0)) < (0, 17):
        return plural_dims(ds)
    return ds
