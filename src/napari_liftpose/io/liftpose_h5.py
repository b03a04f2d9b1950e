"""napari-liftpose's own HDF5 layout for poses (2D or 3D), used by the CLI and the exporters.

Datasets ``points`` ``(frames, individuals, keypoints, 2|3)``, ``confidence``, ``keypoints``,
``individuals``, ``edges`` and, for lifted 3D, ``uncertainty`` ``(frames, individuals,
keypoints)`` (a radius holding the true point 80% of the time) and ``suspicion`` ``(frames,
individuals)`` in [0, 1] (absent where not computed); attributes ``format = "napari-liftpose"``, ``units``, ``fps`` and,
for lifted 3D, ``frame`` (``"world"``: the calibration's / library's axes, or ``"camera"``).
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from napari_liftpose.io._hdf5 import is_hdf5, open_hdf5, read_dataset
from napari_liftpose.io.atomic import atomic_write_bytes, hdf5_image
from napari_liftpose.io.errors import PoseFileError
from napari_liftpose.poses import Poses, as_fps, as_names, as_numbers, as_text

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
    """Read poses written by :func:`write_liftpose_h5`.

    Raises
    ------
    PoseFileError
        If the file is not readable HDF5, or a dataset or attribute is missing or malformed
        (a group where a dataset belongs, strings where numbers belong, names that are not a
        1-D list, an ``fps`` that is not one positive number...).
    """
    path = Path(path)
    with open_hdf5(path) as f:
        if "points" not in f or "keypoints" not in f:
            raise PoseFileError(path, "missing 'points' or 'keypoints' dataset")
        try:
            present = {
                name: name in f
                for name in ("confidence", "individuals", "edges", "uncertainty", "suspicion")
            }
            fields = {
                "coords": as_numbers(read_dataset(f, "points"), "points"),
                "keypoints": as_names(read_dataset(f, "keypoints"), "keypoints"),
                "confidence": (
                    as_numbers(read_dataset(f, "confidence"), "confidence")
                    if present["confidence"]
                    else None
                ),
                "individuals": (
                    as_names(read_dataset(f, "individuals"), "individuals")
                    if present["individuals"]
                    else None
                ),
                "edges": _edges(read_dataset(f, "edges")) if present["edges"] else None,
                **{
                    name: as_numbers(read_dataset(f, name), name)
                    for name in ("uncertainty", "suspicion")
                    if present[name]
                },
                "fps": as_fps(f.attrs.get("fps")),
                "units": as_text(f.attrs.get("units", "px"), "units attribute"),
                "frame": (
                    as_text(f.attrs["frame"], "frame attribute") if "frame" in f.attrs else None
                ),
            }
        except (ValueError, TypeError, OSError, KeyError) as err:
            raise PoseFileError(path, str(err)) from None
    try:
        return Poses(**fields, source=str(path), source_format="liftpose_h5")
    except ValueError as err:
        raise PoseFileError(path, str(err)) from None


def _edges(edges: np.ndarray) -> np.ndarray:
    if edges.dtype.kind not in "iu":
        raise ValueError(f"edges: expected integer keypoint indices, got {edges.dtype}")
    if edges.size % 2:
        raise ValueError(f"edges: expected pairs of keypoint indices, got shape {edges.shape}")
    return edges.astype(np.int64).reshape(-1, 2)


def write_liftpose_h5(poses: Poses, path: str | Path) -> Path:
    """Write ``poses`` to HDF5 atomically and verified; returns the path written.

    The file is built in memory and written with plain Python I/O (a full disk raises a
    :class:`PoseFileError`, never crashes h5py), then re-opened and checked before the rename.
    """
    path = Path(path)
    datasets = {
        "points": poses.coords,
        "confidence": poses.confidence,
        "keypoints": _utf8(poses.keypoints),
        "individuals": _utf8(poses.individuals),
        "edges": poses.edges,
    }
    for name in ("uncertainty", "suspicion"):
        if getattr(poses, name) is not None:
            datasets[name] = getattr(poses, name)

    def fill(f: h5py.File) -> None:
        f.attrs["format"] = FORMAT_TAG
        f.attrs["units"] = poses.units
        f.attrs["fps"] = np.nan if poses.fps is None else poses.fps
        if poses.frame is not None:
            f.attrs["frame"] = poses.frame
        for name, data in datasets.items():
            gzip = name in ("points", "confidence", "uncertainty", "suspicion")
            f.create_dataset(name, data=data, compression="gzip" if gzip else None)

    def verify(tmp: Path) -> None:
        with h5py.File(tmp, "r") as f:
            if f.attrs.get("format") != FORMAT_TAG:
                raise ValueError(f"format attribute: expected {FORMAT_TAG!r}")
            if poses.frame is not None and f.attrs.get("frame") != poses.frame:
                raise ValueError(f"frame attribute: expected {poses.frame!r}")
            for name, data in datasets.items():
                if name not in f or f[name].shape != np.shape(data):
                    found = f[name].shape if name in f else "missing"
                    raise ValueError(f"{name}: expected shape {np.shape(data)}, got {found}")

    atomic_write_bytes(path, hdf5_image(fill), verify=verify)
    return path


def _utf8(names: list[str]) -> np.ndarray:
    """Names as fixed-length UTF-8 bytes (``decode`` reads them back; non-ASCII names too)."""
    return np.array([str(name).encode("utf-8") for name in names], dtype=bytes)
