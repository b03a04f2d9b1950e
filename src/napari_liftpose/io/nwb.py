"""NWB files with the ndx-pose extension (``.nwb``): export and read back.

Work in progress: the public API is fixed, the bodies follow.
"""

from __future__ import annotations

from pathlib import Path

from napari_liftpose.io._hdf5 import is_hdf5
from napari_liftpose.poses import Poses

__all__ = ["is_nwb_file", "read_nwb", "write_nwb"]


def is_nwb_file(path: str | Path) -> bool:
    """True for a ``.nwb`` HDF5 file (cheap: suffix and signature)."""
    path = Path(path)
    return path.suffix.lower() == ".nwb" and is_hdf5(path)


def read_nwb(path: str | Path, **kwargs) -> Poses:
    """Read the ndx-pose poses of an NWB file."""
    raise NotImplementedError


def write_nwb(poses: Poses, path: str | Path) -> Path:
    """Write ``poses`` to an NWB file with ndx-pose; returns the path written."""
    raise NotImplementedError
