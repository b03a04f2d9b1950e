"""File formats <-> :class:`~napari_liftpose.poses.Poses`.

One registry (:data:`FORMATS`) knows every format; :func:`read_poses` picks the reader by looking at
the file's suffix *and* contents, and an explicit ``format`` always wins. Never imports napari or Qt.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from napari_liftpose.io import (
    anipose,
    dlc,
    liftpose_h5,
    movement_nc,
    numpy_format,
    sleap,
    sleap_writer,
)
from napari_liftpose.io._hdf5 import is_hdf5, open_hdf5
from napari_liftpose.io.calibration import Camera, read_calibration, write_calibration
from napari_liftpose.io.errors import PoseFileError, PoseFileNotFoundError
from napari_liftpose.io.paths import refined_path, require_readable_file, same_file
from napari_liftpose.poses import Poses

__all__ = [
    "FORMATS",
    "LIFTED_SUFFIXES",
    "Camera",
    "Format",
    "PoseFileError",
    "PoseFileNotFoundError",
    "detect_format",
    "read_calibration",
    "read_poses",
    "refined_path",
    "write_calibration",
    "write_poses",
]


@dataclass(frozen=True)
class Format:
    """A pose file format: how to recognise, read and (optionally) write it."""

    name: str
    description: str
    suffixes: tuple[str, ...]
    is_file: Callable[[Path], bool]
    read: Callable[..., Poses]
    write: Callable[[Poses, Path], Path] | None = None
    expects: str = ""


def _is_nwb_file(path: Path) -> bool:
    from napari_liftpose.io import nwb  # pynwb is imported only for NWB files

    return nwb.is_nwb_file(path)


def _read_nwb(path: Path, **kwargs) -> Poses:
    from napari_liftpose.io import nwb

    return nwb.read_nwb(path, **kwargs)


def _write_nwb(poses: Poses, path: Path) -> Path:
    from napari_liftpose.io import nwb

    return nwb.write_nwb(poses, path)


#: Every format, in the order files are tested when no format is given.
FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format(
            "sleap",
            "SLEAP labels",
            (".slp",),
            sleap.is_sleap_file,
            sleap.read_sleap,
            sleap_writer.write_sleap,
            expects="an HDF5 file",
        ),
        Format(
            "sleap_analysis",
            "SLEAP analysis HDF5",
            (".h5", ".hdf5"),
            sleap.is_sleap_analysis_file,
            sleap.read_sleap_analysis,
            sleap.write_sleap_analysis,
            expects="datasets 'tracks' and 'node_names'",
        ),
        Format(
            "liftpose_h5",
            "napari-liftpose HDF5",
            (".h5", ".hdf5"),
            liftpose_h5.is_liftpose_h5_file,
            liftpose_h5.read_liftpose_h5,
            liftpose_h5.write_liftpose_h5,
            expects="attribute format='napari-liftpose'",
        ),
        Format(
            "sleap_anipose",
            "sleap-anipose points3d.h5",
            (".h5", ".hdf5"),
            anipose.is_sleap_anipose_file,
            anipose.read_sleap_anipose,
            expects="a 'tracks' dataset",
        ),
        Format(
            "dlc",
            "DeepLabCut table",
            (".h5", ".csv"),
            dlc.is_dlc_file,
            dlc.read_dlc,
            dlc.write_dlc,
            expects="header rows scorer, [individuals,] bodyparts, coords",
        ),
        Format(
            "anipose_csv",
            "anipose 3D table",
            (".csv",),
            anipose.is_anipose_csv_file,
            anipose.read_anipose_csv,
            anipose.write_anipose_csv,
            expects="columns <keypoint>_x, _y, _z",
        ),
        Format(
            "npz",
            "NumPy archive",
            (".npz",),
            numpy_format.is_npz_file,
            numpy_format.read_npz,
            numpy_format.write_npz,
            expects="a zip of .npy arrays",
        ),
        Format(
            "npy",
            "NumPy array",
            (".npy",),
            numpy_format.is_npy_file,
            numpy_format.read_npy,
            expects="the NumPy magic bytes",
        ),
        Format(
            "movement_nc",
            "movement poses netCDF",
            (".nc",),
            movement_nc.is_movement_nc_file,
            movement_nc.read_movement_nc,
            movement_nc.write_movement_nc,
            expects="a netCDF4 (HDF5) file with a 'position' variable",
        ),
        Format(
            "nwb",
            "NWB with ndx-pose",
            (".nwb",),
            _is_nwb_file,
            _read_nwb,
            _write_nwb,
            expects="an NWB (HDF5) file with ndx-pose PoseEstimation",
        ),
    )
}

#: Suffixes a lifted 3D file can be written with (:func:`write_poses` picks the format).
LIFTED_SUFFIXES: tuple[str, ...] = (".npz", ".h5", ".csv", ".nc", ".nwb")


def _supported() -> str:
    return ", ".join(f"{f.name} ({f.description})" for f in FORMATS.values())


def _not_recognised(path: Path) -> str:
    """Say which formats claim this suffix and what they expect, or list every format."""
    if is_hdf5(path):
        open_hdf5(path).close()  # raises "truncated or corrupt" if it cannot be opened
    claims = [f for f in FORMATS.values() if path.suffix.lower() in f.suffixes]
    if not claims:
        return f"unsupported file type {path.suffix or '(no suffix)'!r} (supported: {_supported()})"
    expected = "; ".join(f"{f.description} (expects {f.expects})" for f in claims)
    return f"not recognised as any of: {expected}"


def detect_format(path: str | Path) -> str | None:
    """Name of the format of ``path``, or None if no reader takes it."""
    path = Path(path)
    for fmt in FORMATS.values():
        if path.suffix.lower() in fmt.suffixes and fmt.is_file(path):
            return fmt.name
    return None


def read_poses(path: str | Path, format: str | None = None, **kwargs) -> Poses:
    """Read a pose file of any supported format into :class:`Poses`.

    Parameters
    ----------
    path : str or Path
        The file.
    format : str, optional
        One of :data:`FORMATS`; by default detected from suffix and contents.
    **kwargs
        Passed to the reader (``keypoints=`` for ``.npy`` and sleap-anipose, ``config=`` for
        DeepLabCut, ``video=`` for SLEAP).

    Raises
    ------
    PoseFileNotFoundError
        If the file does not exist.
    PoseFileError
        If no reader takes the file, it is corrupt, or it holds no finite point.
    """
    path = Path(path)
    require_readable_file(path)
    if format is None:
        format = detect_format(path)
        if format is None:
            raise PoseFileError(path, _not_recognised(path))
    elif format not in FORMATS:
        raise PoseFileError(path, f"unknown format {format!r} (supported: {', '.join(FORMATS)})")
    try:
        poses = FORMATS[format].read(path, **kwargs)
    except PoseFileError:
        raise
    except (OSError, ValueError, KeyError) as err:
        raise PoseFileError(path, f"could not be read as {format}: {err}") from None
    if not np.isfinite(poses.coords).any():
        raise PoseFileError(path, "no finite points: every keypoint of every frame is missing")
    return poses


def _writer_for(poses: Poses, path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return "npz"
    if suffix == ".slp":
        return "sleap"
    if suffix == ".csv":
        return "anipose_csv" if poses.n_space == 3 and poses.source_format != "dlc" else "dlc"
    if suffix in (".h5", ".hdf5"):
        if poses.source_format in ("dlc", "sleap_analysis"):
            return poses.source_format  # back to the format the tracks came from
        return "liftpose_h5"
    if suffix == ".nc":
        return "movement_nc"
    if suffix == ".nwb":
        return "nwb"
    raise PoseFileError(
        path, "cannot choose a format to write: use .npz, .h5, .csv, .nc, .nwb or .slp"
    )


def write_poses(poses: Poses, path: str | Path, format: str | None = None) -> Path:
    """Write ``poses`` atomically; returns the path written.

    By suffix: ``.npz``; ``.h5`` (napari-liftpose layout, or DeepLabCut for poses read from
    DeepLabCut); ``.csv`` (anipose's pose-3d table for 3D, DeepLabCut for 2D); ``.slp`` (SLEAP);
    ``.nc`` (movement's poses dataset); ``.nwb`` (NWB with ndx-pose).
    An explicit ``format`` wins.

    The file the poses were read from is never overwritten: a ``path`` that resolves to
    ``poses.source`` (symlinks, hard links and ``..`` spellings included) is written beside it as
    ``<name>.refined.<ext>`` instead, with a :class:`UserWarning` saying so. The returned path
    is the one written.
    """
    path = Path(path)
    if poses.source and same_file(path, poses.source):
        redirected = refined_path(poses.source)
        message = f"{poses.source} is kept as it is; writing {redirected} instead"
        warnings.warn(message, UserWarning, stacklevel=2)
        path = redirected
    format = format or _writer_for(poses, path)
    fmt = FORMATS.get(format)
    if fmt is None or fmt.write is None:
        writable = [f.name for f in FORMATS.values() if f.write]
        raise PoseFileError(path, f"cannot write format {format!r} (writable: {writable})")
    try:
        return Path(fmt.write(poses, path))
    except PoseFileError:
        raise
    except (OSError, ValueError, KeyError) as err:
        raise PoseFileError(path, f"could not be written as {format}: {err}") from None
