"""NumPy files: ``.npz`` with named arrays, and bare ``.npy`` arrays.

``.npz`` layout (written by :func:`write_npz`, read by :func:`read_npz`):

- ``points``: ``(frames, individuals, keypoints, 2|3)``; ``(frames, keypoints, 2|3)`` is read as
  one individual. ``points3d`` / ``points2d`` are accepted as the key too.
- ``keypoints``: names; optional ``confidence`` ``(frames, individuals, keypoints)``, ``edges``
  ``(n, 2)``, ``individuals``, ``fps``, ``units``, ``frame`` (the axes of lifted 3D: ``"world"``,
  the calibration's / library's, or ``"camera"``; absent where unknown), and for lifted 3D
  ``uncertainty`` ``(frames, individuals, keypoints)`` (a radius holding the true point 80% of
  the time) and ``suspicion`` ``(frames, individuals)`` in [0, 1]; absent where not computed.
"""

from __future__ import annotations

import math
import os
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np

from napari_liftpose.io.atomic import atomic_path
from napari_liftpose.io.errors import PoseFileError
from napari_liftpose.poses import Poses, as_fps, as_names, as_numbers, as_text

__all__ = ["is_npz_file", "is_npy_file", "read_npz", "read_npy", "write_npz"]

_POINT_KEYS = ("points", "points3d", "points2d")
_MEMBERS = (
    "keypoints",
    "confidence",
    "edges",
    "individuals",
    "fps",
    "units",
    "frame",
    "uncertainty",
    "suspicion",
)


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


def _check_npy_header(stream: BinaryIO, available: int, what: str) -> None:
    """Refuse a ``.npy`` stream whose header declares more data than it holds.

    NumPy allocates the declared array before reading it: a few bytes claiming shape
    ``(10**10, 3)`` would ask for hundreds of GB. ``available`` is the stream's size in bytes.
    """
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(stream)
        else:
            shape, _, dtype = np.lib.format.read_array_header_2_0(stream)
    except (ValueError, EOFError, OSError) as err:
        raise ValueError(f"{what}: not a NumPy array ({err})") from None
    if dtype.hasobject:  # stored as a pickle, which is never loaded
        raise ValueError(
            f"{what}: expected an array of numbers or text, got Python objects (a pickle, "
            "which is never opened)"
        )
    declared = math.prod(shape) * dtype.itemsize
    held = available - stream.tell()
    if declared > held:
        raise ValueError(
            f"{what}: truncated: its header declares shape {tuple(shape)} ({declared:,} bytes) "
            f"but it holds {max(held, 0):,} bytes"
        )


def _npz_member(archive: np.lib.npyio.NpzFile, key: str) -> np.ndarray:
    """One member of an open archive, checked before NumPy allocates it (ValueError if bad)."""
    names = archive.zip.namelist()
    member = f"{key}.npy" if f"{key}.npy" in names else key
    if not member.endswith(".npy"):
        raise ValueError(f"member {member!r}: expected a .npy array, got another kind of file")
    info = archive.zip.getinfo(member)
    with archive.zip.open(info) as stream:
        _check_npy_header(stream, info.file_size, f"member {member!r}")
    value = archive[key]
    if not isinstance(value, np.ndarray):
        raise ValueError(f"member {member!r}: expected a .npy array, got another kind of file")
    return value


def read_npz(path: str | Path) -> Poses:
    """Read poses from a ``.npz`` archive (layout in the module docstring).

    Raises
    ------
    PoseFileError
        If the file cannot be read, is not an archive of ``.npy`` arrays, or a member is missing,
        truncated or malformed ("expected X, got Y").
    """
    path = Path(path)
    try:
        archive = np.load(path, allow_pickle=False)
    except OSError as err:
        raise PoseFileError(path, f"cannot read: {err.strerror or err}") from None
    except (ValueError, EOFError, zipfile.BadZipFile) as err:
        raise PoseFileError(path, f"not a readable .npz archive: {err}") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise PoseFileError(path, "expected a .npz archive of arrays, got a single .npy array")
    with archive:
        key = next((k for k in _POINT_KEYS if k in archive.files), None)
        if key is None:
            raise PoseFileError(path, f"no 'points' array (found {sorted(archive.files)})")
        if "keypoints" not in archive.files:
            raise PoseFileError(path, "no 'keypoints' array of names")
        try:
            arrays = {
                name: _npz_member(archive, name)
                for name in (key, *_MEMBERS)
                if name in archive.files
            }
            points = _with_individual_axis(as_numbers(arrays[key], key), path)
            confidence = arrays.get("confidence")
            if confidence is not None:
                confidence = as_numbers(confidence, "confidence")
                if confidence.ndim == 2:
                    confidence = confidence[:, None]
            edges = arrays.get("edges")
            fields = {
                "keypoints": as_names(arrays["keypoints"], "keypoints"),
                "confidence": confidence,
                "edges": None if edges is None else _edge_indices(edges),
                "individuals": (
                    as_names(arrays["individuals"], "individuals")
                    if "individuals" in arrays
                    else None
                ),
                "fps": as_fps(arrays["fps"]) if "fps" in arrays else None,
                "units": as_text(arrays["units"], "units") if "units" in arrays else _units(points),
                "frame": as_text(arrays["frame"], "frame") if "frame" in arrays else None,
                **{
                    name: as_numbers(arrays[name], name)
                    for name in ("uncertainty", "suspicion")
                    if name in arrays
                },
            }
        except PoseFileError:
            raise
        except (ValueError, EOFError, OSError, zipfile.BadZipFile, zlib.error) as err:
            raise PoseFileError(path, str(err)) from None
    try:
        return Poses(coords=points, source=str(path), source_format="npz", **fields)
    except ValueError as err:
        raise PoseFileError(path, str(err)) from None


def _edge_indices(edges: np.ndarray) -> np.ndarray:
    """Skeleton edges as integer pairs (ValueError for non-integer values)."""
    if edges.dtype.kind not in "iu":
        floats = as_numbers(edges, "edges")
        if not (np.isfinite(floats).all() and (floats == np.round(floats)).all()):
            raise ValueError(f"edges: expected integer keypoint indices, got {edges.dtype} values")
    if edges.size % 2:
        raise ValueError(f"edges: expected pairs of keypoint indices, got shape {edges.shape}")
    return edges.astype(np.int64).reshape(-1, 2)


def _units(points: np.ndarray) -> str:
    return "px" if points.shape[-1] == 2 else "mm"


def read_npy(path: str | Path, keypoints: Sequence[str] | None = None) -> Poses:
    """Read a bare ``(frames[, individuals], keypoints, 2|3)`` array; names come from ``keypoints``.

    Without ``keypoints`` the names are ``keypoint_0, keypoint_1, ...``.

    Raises
    ------
    PoseFileError
        If the file cannot be read, is not a (complete) numeric ``.npy`` array, or has the
        wrong shape.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            _check_npy_header(f, os.fstat(f.fileno()).st_size, "array")
            f.seek(0)
            points = np.load(f, allow_pickle=False)
        if not isinstance(points, np.ndarray):
            raise ValueError("expected a .npy array")
        points = _with_individual_axis(as_numbers(points, "points"), path)
    except PoseFileError:
        raise
    except (IsADirectoryError, PermissionError) as err:
        raise PoseFileError(path, f"cannot read: {err.strerror or err}") from None
    except (OSError, ValueError, EOFError) as err:
        raise PoseFileError(path, f"not a readable .npy array: {err}") from None
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
    if poses.frame is not None:
        arrays["frame"] = np.asarray(poses.frame)
    for name in ("uncertainty", "suspicion"):
        if getattr(poses, name) is not None:
            arrays[name] = getattr(poses, name)
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
