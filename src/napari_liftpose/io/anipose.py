"""3D pose libraries from anipose and sleap-anipose.

- sleap-anipose ``points3d.h5``: dataset ``tracks`` ``(frames, tracks, nodes, 3)`` with no names;
  node names and skeleton come from a SLEAP file of the same session (``*/ *.slp`` beside it)
  or from the ``keypoints`` argument.
- anipose ``pose-3d`` CSV, as anipose's ``triangulate`` writes it: per keypoint ``<kp>_x, _y,
  _z, _error, _ncams, _score``, then ``M_00 .. M_22`` (the rotation anipose aligned the axes
  with), ``center_0 .. center_2`` (the origin it moved to) and ``fnum`` (frame number); one row
  per frame. ``M`` and ``center`` are ignored on reading (the coordinates are already in the
  aligned axes).
  Files written here from lifted poses: ``_ncams`` is 1 (one camera, lifted; NaN where the
  point is missing), ``_error`` the lifter's uncertainty (a radius, in the poses' units, that
  holds the true point 80% of the time; NaN where there is none), ``_score`` the 2D
  confidence, ``M`` the identity and ``center`` zeros. Several individuals add an
  ``individual`` column first (one row per frame and individual): anipose is single-animal and
  movement's anipose loader refuses that column.
  ``_error`` is read back as ``Poses.uncertainty`` only where no ``_ncams`` is 2 or more
  (anipose triangulates from at least two cameras, and its ``_error`` is a reprojection error
  in pixels, not a radius) and some ``_error`` is finite.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from napari_liftpose.io._csv import EXACT_FLOATS
from napari_liftpose.io._hdf5 import hdf5_keys, is_hdf5, open_hdf5, read_dataset
from napari_liftpose.io.atomic import atomic_path, verify_csv_lines
from napari_liftpose.io.errors import PoseFileError
from napari_liftpose.poses import Poses, as_numbers

__all__ = [
    "is_sleap_anipose_file",
    "read_sleap_anipose",
    "is_anipose_csv_file",
    "read_anipose_csv",
    "write_anipose_csv",
]

_AXES = ("x", "y", "z")


def is_sleap_anipose_file(path: str | Path) -> bool:
    """True for an HDF5 file whose only pose dataset is ``tracks`` (no ``node_names``)."""
    path = Path(path)
    if path.suffix.lower() not in (".h5", ".hdf5") or not is_hdf5(path):
        return False
    keys = hdf5_keys(path)
    return "tracks" in keys and "node_names" not in keys


def read_sleap_anipose(path: str | Path, keypoints: Sequence[str] | None = None) -> Poses:
    """Read a sleap-anipose ``points3d.h5`` (triangulated ``tracks``, frames first)."""
    path = Path(path)
    with open_hdf5(path) as f:
        if "tracks" not in f:
            raise PoseFileError(path, "no 'tracks' dataset: not a sleap-anipose points3d file")
        try:
            points = as_numbers(read_dataset(f, "tracks"), "tracks")
        except (ValueError, TypeError, OSError) as err:
            raise PoseFileError(path, str(err)) from None
    if points.ndim == 3:
        points = points[:, None]
    if points.ndim != 4 or points.shape[-1] != 3:
        raise PoseFileError(
            path, f"tracks: expected shape (frames, tracks, nodes, 3), got {points.shape}"
        )
    edges = None
    if keypoints is None:
        keypoints, edges = _session_skeleton(path, points.shape[2])
    try:
        return Poses(
            coords=points,
            keypoints=keypoints,
            edges=edges,
            units="mm",
            source=str(path),
            source_format="sleap_anipose",
        )
    except ValueError as err:
        raise PoseFileError(path, str(err)) from None


def _session_skeleton(path: Path, n_nodes: int) -> tuple[list[str], list | None]:
    """Node names and edges from a SLEAP file of the same session, else generic names."""
    import sleap_io as sio

    for slp in sorted(path.parent.glob("*.slp")) + sorted(path.parent.glob("*/*.slp")):
        try:
            skeleton = sio.load_slp(str(slp), open_videos=False).skeletons[0]
        except Exception:
            continue
        if len(skeleton.node_names) == n_nodes:
            return list(skeleton.node_names), list(skeleton.edge_inds)
    return [f"keypoint_{i}" for i in range(n_nodes)], None


def _anipose_keypoints(columns: Sequence[str]) -> list[str]:
    names = [c[:-2] for c in columns if c.endswith("_x")]
    return [n for n in names if f"{n}_y" in columns and f"{n}_z" in columns]


def is_anipose_csv_file(path: str | Path) -> bool:
    """True for a CSV whose header has ``<kp>_x, <kp>_y, <kp>_z`` columns."""
    path = Path(path)
    if path.suffix.lower() != ".csv":
        return False
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            header = f.readline().strip().split(",")
    except OSError:
        return False
    return len(_anipose_keypoints(header)) > 0


def read_anipose_csv(path: str | Path) -> Poses:
    """Read an anipose ``pose-3d`` CSV (``_score`` columns become confidence).

    Raises
    ------
    PoseFileError
        If the file cannot be read, has duplicate or no ``<kp>_x/_y/_z`` columns, ragged or
        truncated rows, or a non-numeric value in a coordinate or score column.
    """
    path = Path(path)
    header = _check_csv_shape(path)
    keypoints = _anipose_keypoints(header)
    if not keypoints:
        raise PoseFileError(path, "not an anipose 3D table: no <keypoint>_x/_y/_z columns")
    try:
        table = pd.read_csv(path, dtype={"individual": str}, encoding="utf-8", **EXACT_FLOATS)
    except Exception as err:
        raise PoseFileError(path, f"unreadable CSV: {err}") from None
    numeric = [f"{kp}_{axis}" for kp in keypoints for axis in (*_AXES, "score", "error")]
    columns = {c: _numeric_column(path, table, c) for c in numeric if c in table.columns}
    if "individual" in table.columns:
        names = table["individual"]
        if names.isna().any():
            row = int(np.flatnonzero(names.isna().to_numpy())[0]) + 2
            raise PoseFileError(
                path, f"individual: expected a name, got an empty cell (line {row})"
            )
        individuals = list(dict.fromkeys(names))
        rows = [np.flatnonzero((names == ind).to_numpy()) for ind in individuals]
    else:
        individuals, rows = ["individual_0"], [np.arange(len(table))]
    n_frames = max(len(r) for r in rows)
    coords = np.full((n_frames, len(individuals), len(keypoints), 3), np.nan)
    confidence = np.full(coords.shape[:3], np.nan)
    radius = np.full(coords.shape[:3], np.nan)
    for i, sel in enumerate(rows):
        for k, kp in enumerate(keypoints):
            for a, axis in enumerate(_AXES):
                coords[: len(sel), i, k, a] = columns[f"{kp}_{axis}"][sel]
            if f"{kp}_score" in columns:
                confidence[: len(sel), i, k] = columns[f"{kp}_score"][sel]
            if f"{kp}_error" in columns:
                radius[: len(sel), i, k] = columns[f"{kp}_error"][sel]
    uncertainty = (
        None if _triangulated(path, table, keypoints) or np.isnan(radius).all() else radius
    )
    if uncertainty is not None:
        _check_radii(path, columns, keypoints)
    try:
        return Poses(
            coords=coords,
            confidence=confidence,
            keypoints=keypoints,
            individuals=individuals,
            units="mm",
            uncertainty=uncertainty,
            source=str(path),
            source_format="anipose_csv",
        )
    except ValueError as err:
        raise PoseFileError(path, str(err)) from None


def _triangulated(path: Path, table: pd.DataFrame, keypoints: list[str]) -> bool:
    """True when a ``<kp>_ncams`` cell says 2 cameras or more: anipose's own triangulation."""
    for kp in keypoints:
        if f"{kp}_ncams" in table.columns:
            ncams = _numeric_column(path, table, f"{kp}_ncams")
            if (ncams[np.isfinite(ncams)] >= 2).any():
                return True
    return False


def _check_csv_shape(path: Path) -> list[str]:
    """The header of a CSV whose every row has as many fields as its header (else an error)."""
    try:
        with open(path, encoding="utf-8", newline="") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if not header:
                raise PoseFileError(path, "empty file: expected a CSV header line")
            for row in reader:
                if row and len(row) != len(header):
                    raise PoseFileError(
                        path,
                        f"line {reader.line_num}: expected {len(header)} fields, got {len(row)} "
                        "(truncated or ragged file?)",
                    )
    except OSError as err:
        raise PoseFileError(path, f"cannot read: {err.strerror or err}") from None
    except (UnicodeDecodeError, csv.Error) as err:
        raise PoseFileError(path, f"unreadable CSV: {err}") from None
    duplicates = sorted({c for c in header if header.count(c) > 1})
    if duplicates:
        raise PoseFileError(path, f"duplicate columns {duplicates}: expected unique column names")
    return header


def _check_radii(path: Path, columns: dict[str, np.ndarray], keypoints: list[str]) -> None:
    """Refuse an ``<kp>_error`` cell that is not a radius (finite, >= 0), naming it."""
    for kp in keypoints:
        values = columns.get(f"{kp}_error")
        if values is None:
            continue
        bad = ~np.isnan(values) & ~(np.isfinite(values) & (values >= 0))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise PoseFileError(
                path,
                f"column '{kp}_error', line {row + 2}: expected an uncertainty radius (a finite "
                f"number >= 0) or an empty cell, got {float(values[row]):g}",
            )


def _numeric_column(path: Path, table: pd.DataFrame, column: str) -> np.ndarray:
    if table[column].dtype == bool:
        raise PoseFileError(path, f"column {column!r}: expected numbers, got true/false values")
    values = pd.to_numeric(table[column], errors="coerce")
    bad = values.isna() & table[column].notna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise PoseFileError(
            path,
            f"column {column!r}, line {row + 2}: expected a number, got {table[column].iloc[row]!r}",
        )
    return values.to_numpy(dtype=np.float64)


def write_anipose_csv(poses: Poses, path: str | Path) -> Path:
    """Write 3D ``poses`` as anipose's ``pose-3d`` CSV, atomically and verified.

    The columns are anipose's, in its order: per keypoint ``_x, _y, _z, _error, _ncams,
    _score``; ``M_00 .. M_22`` (identity), ``center_0 .. center_2`` (zeros), ``fnum``.
    ``_error`` is ``poses.uncertainty`` (the lifter's radius that holds the true point 80% of
    the time) when there is one, else NaN (no reprojection error is known for lifted poses);
    ``_ncams`` is 1 where the point is known (one camera, lifted), NaN where it is missing;
    ``_score`` is the confidence. With several individuals an ``individual`` column comes
    first (one row per frame and individual); anipose itself is single-animal.

    Parameters
    ----------
    poses : Poses
        3D poses.
    path : str or Path
        The ``.csv`` file to write.

    Returns
    -------
    Path
        The path written.
    """
    path = Path(path)
    if poses.n_space != 3:
        raise PoseFileError(path, "anipose CSV holds 3D poses; these poses are 2D")
    frames = []
    for i, individual in enumerate(poses.individuals):
        data: dict[str, np.ndarray] = {}
        for k, kp in enumerate(poses.keypoints):
            for a, axis in enumerate(_AXES):
                data[f"{kp}_{axis}"] = poses.coords[:, i, k, a]
            data[f"{kp}_error"] = (
                np.full(poses.n_frames, np.nan)
                if poses.uncertainty is None
                else poses.uncertainty[:, i, k]
            )
            known = np.isfinite(poses.coords[:, i, k]).all(axis=-1)
            data[f"{kp}_ncams"] = np.where(known, 1.0, np.nan)
            data[f"{kp}_score"] = poses.confidence[:, i, k]
        for r in range(3):
            for c in range(3):
                data[f"M_{r}{c}"] = np.full(poses.n_frames, float(r == c))
        for a in range(3):
            data[f"center_{a}"] = np.zeros(poses.n_frames)
        data["fnum"] = np.arange(poses.n_frames)
        frame = pd.DataFrame(data)
        if poses.n_individuals > 1:
            frame.insert(0, "individual", individual)
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True)
    with atomic_path(path, verify=lambda tmp: verify_csv_lines(tmp, 1, *table.shape)) as tmp:
        table.to_csv(tmp, index=False)
    return path
