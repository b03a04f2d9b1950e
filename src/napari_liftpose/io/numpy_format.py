"""NumPy files: ``.npz`` with named arrays, and bare ``.npy`` arrays.

``.npz`` layout (written by :func:`write_npz`, read by :func:`read_npz`):

- ``points``: ``(frames, individuals, keypoints, 2|3)``; ``(frames, keypoints, 2|3)`` is read as
  one individual. ``points3d`` / ``points2d`` are accepted as the key too.
- ``keypoints``: names; optional ``confidence`` ``(frames, individuals, keypoints)``, ``edges``
  ``(n, 2)``, ``individuals``, ``fps``, ``units``.
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from napari_liftpose.io.atomic import atomic_path
from napari_liftpose.io.errors import PoseFileError
from napari_liftpose.poses import Poses

__all__ = ["is_npz_file", "is_npy_file", "read_npz", "read_npy", "write_npz"]

_POINT_KEYS = ("points", "points3d", "points2d")


def is_npz_file(path: str | Path) -> bool:
    """True for a ``.npz`` zip archive."""
    path = Path(path)
    return path.suffix.lower() == ".npz" and zipfile.is_zipfile(path)


def is_npy_file(path: str | Path) -> bool:
    """True for a ``.npy`` file with the NumPy magic bytes."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            return path.suffix.lower() == ".npy" and f.read(6) == b"\x93NUMPY"
    except OSError:
        return False


def _with_individual_axis(points: np.ndarray, path: Path) -> np.ndarray:
    if points.ndim == 3:
        points = points[:, None]
    if points.ndim != 4 or points.shape[-1] not in (2, 3):
        raise PoseFileError(
            path,
            f"points: expected shape (frames[, individuals], keypoints, 2|3), got {points.shape}",
        )
    return points


def read_npz(path: str | Path) -> Poses:
    """Read poses from a ``.npz`` archive (layout in the module docstring)."""
    path = Path(path)
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise PoseFileError(path, f"not a readable .npz archive: {err}") from None
    with archive:
        key = next((k for k in _POINT_KEYS if k in archive.files), None)
        if key is None:
            raise PoseFileError(path, f"no 'points' array (found {sorted(archive.files)})")
        points = _with_individual_axis(archive[key].astype(np.float64), path)
        if "keypoints" not in archive.files:
            raise PoseFileError(path, "no 'keypoints' array of names")
        confidence = archive["confidence"] if "confidence" in archive.files else None
        if confidence is not None and confidence.ndim == 2:
            confidence = confidence[:, None]
        fields = {
            "edges": archive["edges"] if "edges" in archive.files else None,
            "individuals": (
                [str(v) for v in archive["individuals"]] if "individuals" in archive.files else None
            ),
            "fps": float(archive["fps"]) if "fps" in archive.files else None,
            "units": str(archive["units"]) if "units" in archive.files else _units(points),
        }
        keypoints = [str(v) for v in archive["keypoints"]]
    try:
        return Poses(
            coords=points,
            keypoints=keypoints,
            confidence=confidence,
            source=str(path),
            source_format="npz",
            **fields,
        )
    except ValueError as err:
        raise PoseFileError(path, str(err)) from None


def _units(points: np.ndarray) -> str:
    return "px" if points.shape[-1] == 2 else "mm"


def read_npy(path: str | Path, keypoints: Sequence[str] | None = None) -> Poses:
    """Read a bare ``(frames[, individuals], keypoints, 2|3)`` array; names come from ``keypoints``.

    Without ``keypoints`` the names are ``keypoint_0, keypoint_1, ...``.
    """
    path = Path(path)
    try:
        points = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise PoseFileError(path, f"not a readable .npy array: {err}") from None
    points = _with_individual_axis(np.asarray(points, dtype=np.float64), path)
    if keypoints is None:
        keypoints = [f"keypoint_{i}" for i in range(points.shape[2])]
    try:
        return Poses(
            coords=points,
            keypoints=keypoints,
            units=_units(points),
            source=str(path),
            source_format="npy",
        )
    except ValueError as err:
        raise PoseFileError(path, str(err)) from None


def write_npz(poses: Poses, path: str | Path) -> Path:
    """Write ``poses`` to a ``.npz`` archive atomically and verified; returns the path written.

    Every member is read back and compared before the archive replaces ``path``; a write
    error (a full disk) raises :class:`PoseFileError` and keeps the old file.
    """
    path = Path(path)
    arrays = {
        "points": poses.coords,
        "confidence": poses.confidence,
        "keypoints": np.asarray(poses.keypoints, dtype=str),
        "edges": poses.edges,
        "individuals": np.asarray(poses.individuals, dtype=str),
        "units": np.asarray(poses.units),
    }
    if poses.fps is not None:
        arrays["fps"] = np.asarray(poses.fps)
    with atomic_path(path, verify=lambda tmp: _verify_npz(tmp, arrays)) as tmp:
        with open(tmp, "xb") as f:
            np.savez(f, **arrays)
    return path


def _verify_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Re-read a written archive: the same members, each with the same dtype, shape and bytes.

    Reading every member also checks the zip CRCs, so a damaged archive cannot pass.
    """
    with np.load(path, allow_pickle=False) as archive:
        if sorted(archive.files) != sorted(arrays):
            raise ValueError(f"members: expected {sorted(arrays)}, got {sorted(archive.files)}")
        for key, expected in arrays.items():
            expected = np.asarray(expected)
            found = archive[key]
            if found.dtype != expected.dtype or found.shape != expected.shape:
                raise ValueError(
                    f"{key}: expected {expected.dtype} {expected.shape}, "
                    f"got {found.dtype} {found.shape}"
                )
            if found.tobytes() != np.ascontiguousarray(expected).tobytes():
                raise ValueError(f"{key}: the values differ from those written")
