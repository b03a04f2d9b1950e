"""3D pose libraries from anipose and sleap-anipose.

- sleap-anipose ``points3d.h5``: dataset ``tracks`` ``(frames, tracks, nodes, 3)`` with no names;
  node names and skeleton come from a SLEAP file of the same session (``*/ *.slp`` beside it)
  or from the ``keypoints`` argument.
- anipose ``pose-3d`` CSV: columns ``<kp>_x, <kp>_y, <kp>_z, <kp>_error, <kp>_score`` (+ ``fnum``,
  ``M_*``, ``center_*`` which are ignored), one row per frame. Files written here for several
  individuals add an ``individual`` column and have one row per frame and individual.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from napari_liftpose.io._hdf5 import hdf5_keys, is_hdf5, open_hdf5
from napari_liftpose.io.atomic import atomic_path
from napari_liftpose.io.errors import PoseFileError
from napari_liftpose.poses import Poses

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
        points = f["tracks"][:].astype(np.float64)
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
    """Read an anipose ``pose-3d`` CSV (``_score`` columns become confidence)."""
    path = Path(path)
    try:
        table = pd.read_csv(path)
    except Exception as err:
        raise PoseFileError(path, f"unreadable CSV: {err}") from None
    keypoints = _anipose_keypoints(list(table.columns))
    if not keypoints:
        raise PoseFileError(path, "not an anipose 3D table: no <keypoint>_x/_y/_z columns")
    if "individual" in table.columns:
        individuals = list(dict.fromkeys(table["individual"].astype(str)))
        groups = [table[table["individual"].astype(str) == ind] for ind in individuals]
    else:
        individuals, groups = ["individual_0"], [table]
    n_frames = max(len(g) for g in groups)
    coords = np.full((n_frames, len(individuals), len(keypoints), 3), np.nan)
    confidence = np.full(coords.shape[:3], np.nan)
    for i, group in enumerate(groups):
        for k, kp in enumerate(keypoints):
            for a, axis in enumerate(_AXES):
                coords[: len(group), i, k, a] = group[f"{kp}_{axis}"].to_numpy(float)
            if f"{kp}_score" in group:
                confidence[: len(group), i, k] = group[f"{kp}_score"].to_numpy(float)
    return Poses(
        coords=coords,
        confidence=confidence,
        keypoints=keypoints,
        individuals=individuals,
        units="mm",
        source=str(path),
        source_format="anipose_csv",
    )


def write_anipose_csv(poses: Poses, path: str | Path) -> Path:
    """Write 3D ``poses`` as an anipose-style CSV atomically and verified; returns the path.

    ``_error`` is NaN (no reprojection error is known for lifted poses); ``_score`` is the
    confidence. With several individuals an ``individual`` column is added.
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
            data[f"{kp}_error"] = np.full(poses.n_frames, np.nan)
            data[f"{kp}_score"] = poses.confidence[:, i, k]
        data["fnum"] = np.arange(poses.n_frames)
        frame = pd.DataFrame(data)
        if poses.n_individuals > 1:
            frame.insert(0, "individual", individual)
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True)
    with atomic_path(path, verify=lambda tmp: _verify_csv(tmp, table.shape)) as tmp:
        table.to_csv(tmp, index=False)
    return path


def _verify_csv(path: Path, shape: tuple[int, int]) -> None:
    """Check a written CSV: one header row, then ``shape[0]`` rows of ``shape[1]`` fields."""
    with open(path, newline="", encoding="utf-8") as f:
        widths = [len(row) for row in csv.reader(f)]
    if len(widths) != 1 + shape[0]:
        raise ValueError(f"expected {1 + shape[0]} rows, got {len(widths)}")
    wrong = [i for i, width in enumerate(widths) if width != shape[1]]
    if wrong:
        raise ValueError(f"row {wrong[0]} has not {shape[1]} fields")
