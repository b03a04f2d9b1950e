"""napari-liftpose's own HDF5 layout for poses (2D or 3D), used by the CLI and the exporters.

Datasets ``points`` ``(frames, individuals, keypoints, 2|3)``, ``confidence``, ``keypoints``,
``individuals``, ``edges``; attributes ``format = "napari-liftpose"``, ``units``, ``fps``.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from napari_liftpose.io._hdf5 import decode, is_hdf5, open_hdf5
from napari_liftpose.io.atomic import atomic_path
from napari_liftpose.io.errors import PoseFileError
from napari_liftpose.poses import Poses

__all__ = ["is_liftpose_h5_file", "read_liftpose_h5", "write_liftpose_h5"]

FORMAT_TAG = "napari-liftpose"


def is_liftpose_h5_file(path: str | Path) -> bool:
    """True for an HDF5 file tagged ``format = "napari-liftpose"``."""
    path = Path(path)
    if path.suffix.lower() not in (".h5", ".hdf5") or not is_hdf5(path):
        return False
    try:
        with h5py.File(path, "r") as f:
            return f.attrs.get("format") == FORMAT_TAG
    except (OSError, ValueError):
        return False


def read_liftpose_h5(path: str | Path) -> Poses:
    """Read poses written by :func:`write_liftpose_h5`."""
    path = Path(path)
    with open_hdf5(path) as f:
        if "points" not in f or "keypoints" not in f:
            raise PoseFileError(path, "missing 'points' or 'keypoints' dataset")
        fps = f.attrs.get("fps")
        return Poses(
            coords=f["points"][:],
            confidence=f["confidence"][:] if "confidence" in f else None,
            keypoints=decode(f["keypoints"][:]),
            individuals=decode(f["individuals"][:]) if "individuals" in f else None,
            edges=f["edges"][:] if "edges" in f else None,
            fps=float(fps) if fps is not None and np.isfinite(fps) else None,
            units=str(f.attrs.get("units", "px")),
            source=str(path),
            source_format="liftpose_h5",
        )


def write_liftpose_h5(poses: Poses, path: str | Path) -> Path:
    """Write ``poses`` to HDF5 atomically; returns the path written."""
    path = Path(path)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.attrs["format"] = FORMAT_TAG
        f.attrs["units"] = poses.units
        f.attrs["fps"] = np.nan if poses.fps is None else poses.fps
        f.create_dataset("points", data=poses.coords, compression="gzip")
        f.create_dataset("confidence", data=poses.confidence, compression="gzip")
        f.create_dataset("keypoints", data=np.asarray(poses.keypoints, dtype="S"))
        f.create_dataset("individuals", data=np.asarray(poses.individuals, dtype="S"))
        f.create_dataset("edges", data=poses.edges)
    return path
