"""Poses <-> napari layer data, without importing napari or Qt.

Layer conventions (see docs/formats.md):

- 2D tracks: Points data ``(t, y, x)``; 3D poses: Points data ``(t, z, y, x)``.
- Features ``individual``, ``keypoint`` (categorical), ``confidence`` and ``edited``.
- NaN points are not layer rows; the full :class:`Poses` travels in ``metadata["poses"]`` so that
  writing the layer back restores them exactly.
- Skeleton: a Vectors layer holding the current frame's bones (``napari/skeleton.py``; a layer of
  every bone of every frame was measured against it: docs/benchmarks.md).
"""

from __future__ import annotations

import colorsys

import numpy as np
import pandas as pd

from napari_liftpose.poses import Poses

__all__ = [
    "palette",
    "points_layer_data",
    "poses_from_points",
    "poses_from_layer_data",
    "point_colors",
    "POSES_KEY",
    "ONE_FRAME_KEY",
    "pose_at",
    "time_point",
    "napari_order",
    "category_codes",
    "FrameIndex",
    "USER_CONFIDENCE",
    "duplicate_points",
]

#: Key of the :class:`Poses` in a layer's metadata.
POSES_KEY = "poses"
#: Metadata key set on a layer that shows one frame of its poses at a time (the 3D view's).
ONE_FRAME_KEY = "liftpose_one_frame"
#: Confidence of a point a person placed or moved: 1, as sleap-io reads SLEAP user instances
#: (movement reads them as NaN; 1 keeps them above any confidence cut-off).
USER_CONFIDENCE = 1.0


def palette(n: int) -> np.ndarray:
    """``n`` well separated RGBA colors (evenly spaced hues), float in 0..1, shape ``(n, 4)``."""
    hues = (np.arange(n) * 0.618033988749895) % 1.0 if n > 12 else np.linspace(0, 1, n + 1)[:-1]
    rgb = [colorsys.hsv_to_rgb(h, 0.85, 1.0) for h in hues]
    return np.column_stack([np.asarray(rgb).reshape(n, 3), np.ones(n)])


def napari_order(coords: np.ndarray) -> np.ndarray:
    """Pose coordinates ``(..., x, y[, z])`` -> napari order ``(..., [z,] y, x)``."""
    return coords[..., ::-1] if coords.shape[-1] == 2 else coords[..., [2, 1, 0]]


def time_point(dims) -> int:
    """The frame a viewer's time slider (axis 0) is on.

    That is the slider's world position: napari counts ``dims.current_step`` from the start of the
    slider's range, which is not frame 0 when the first frames have no data.
    """
    return int(round(float(dims.point[0]))) if dims.ndim else 0


def pose_at(poses: Poses, frame: int) -> np.ndarray:
    """Frame ``frame`` of ``poses`` in napari order, ``(I, K, space)``; all NaN outside the poses."""
    if 0 <= frame < poses.n_frames:
        return napari_order(poses.coords[frame])
    return np.full(poses.coords.shape[1:], np.nan)


def points_layer_data(poses: Poses) -> tuple[np.ndarray, pd.DataFrame]:
    """Points rows ``(t, y, x)`` or ``(t, z, y, x)`` and features for every finite point.

    Returns
    -------
    data : np.ndarray
        ``(n_points, 3 or 4)`` float32 array, column-major (Fortran order).
    features : pandas.DataFrame
        ``individual``, ``keypoint`` (categorical), ``confidence`` (float), ``edited`` (bool).
    """
    t, i, k = np.nonzero(poses.finite_mask())
    # float32, column-major: napari reduces Points data over rows (extent, thumbnail) on every
    # time step; on a (4M, 3) array that is ~110 ms in C-order float64, ~5 ms in Fortran order,
    # half that in float32. Writers take the file's own value wherever a point did not move,
    # so saving stays bit-exact (see poses_from_points).
    data = np.empty((t.size, 1 + poses.n_space), dtype=np.float32, order="F")
    data[:, 0] = t
    data[:, 1:] = napari_order(poses.coords[t, i, k])
    features = pd.DataFrame(
        {
            "individual": pd.Categorical.from_codes(i, categories=poses.individuals),
            "keypoint": pd.Categorical.from_codes(k, categories=poses.keypoints),
            "confidence": poses.confidence[t, i, k],
            "edited": np.zeros(t.size, dtype=bool),
        }
    )
    return data, features


def category_codes(features: pd.DataFrame, column: str, names) -> np.ndarray:
    """Integer index of each row's ``column`` value in ``names`` (-1 where it is not one of them).

    napari may turn a categorical feature column into plain strings (adding a point after a
    selection does), so the codes come from the names, not from the column's own categories.
    """
    values = features[column]
    if isinstance(values.dtype, pd.CategoricalDtype) and list(values.cat.categories) == list(names):
        return values.cat.codes.to_numpy()
    return pd.Categorical(values.astype(str), categories=list(names)).codes


def point_colors(poses: Poses, features: pd.DataFrame) -> np.ndarray:
    """RGBA per point: by keypoint for one individual, by individual when there are several."""
    if poses.n_individuals > 1:
        return palette(poses.n_individuals)[
            category_codes(features, "individual", poses.individuals)
        ]
    return palette(poses.n_keypoints)[category_codes(features, "keypoint", poses.keypoints)]


def _point_rows(data: np.ndarray, features: pd.DataFrame, template: Poses):
    """Frame, individual and keypoint index of each row of a pose layer known to ``template``.

    Returns ``(known, t, ind, kp)``: the mask of rows kept, then their indices.
    """
    ind = category_codes(features, "individual", template.individuals)
    kp = category_codes(features, "keypoint", template.keypoints)
    t = np.rint(np.asarray(data)[:, 0]).astype(np.int64)
    known = (ind >= 0) & (kp >= 0) & (t >= 0) & (t < template.n_frames)
    return known, t[known], ind[known].astype(np.int64), kp[known].astype(np.int64)


def duplicate_points(
    data: np.ndarray, features: pd.DataFrame, template: Poses
) -> list[tuple[int, str, str]]:
    """``(frame, individual, keypoint)`` of every point that more than one layer row claims."""
    _, t, ind, kp = _point_rows(data, features, template)
    flat = (t * template.n_individuals + ind) * template.n_keypoints + kp
    values, counts = np.unique(flat, return_counts=True)
    twice = values[counts > 1]
    frame, rest = np.divmod(twice, template.n_individuals * template.n_keypoints)
    i, k = np.divmod(rest, template.n_keypoints)
    return [
        (int(f), template.individuals[a], template.keypoints[b])
        for f, a, b in zip(frame, i, k, strict=True)
    ]


def poses_from_points(data: np.ndarray, features: pd.DataFrame, template: Poses) -> Poses:
    """Rebuild :class:`Poses` from Points rows, on the frame of ``template``.

    Every point of ``template`` that has no layer row (missing, or deleted by the user) is NaN;
    rows whose individual or keypoint is unknown to ``template`` are ignored. Confidence is
    kept from ``template`` where a point did not change; a point placed or moved by the user gets
    :data:`USER_CONFIDENCE`, a deleted one NaN. ``metadata["edited"]`` marks points flagged
    ``edited`` in the layer and every point whose position changed (added, moved or deleted).

    Raises
    ------
    ValueError
        If two rows are the same keypoint of the same individual in one frame (saving would keep
        one of them silently).
    """
    duplicates = duplicate_points(data, features, template)
    if duplicates:
        frame, individual, keypoint = duplicates[0]
        raise ValueError(
            f"{template.name}: {len(duplicates)} keypoint(s) placed twice, first {keypoint!r} "
            f"of {individual!r} in frame {frame}; delete one of each before saving"
        )
    coords = np.full_like(template.coords, np.nan)
    edited = np.zeros(template.coords.shape[:3], dtype=bool)
    known, t, ind, kp = _point_rows(data, features, template)
    spatial = np.asarray(data)[known, 1:]
    coords[t, ind, kp] = napari_order(spatial)  # the reordering is its own inverse
    # the layer holds float32: where a point did not move, keep the file's exact value
    unmoved = coords.astype(np.float32) == template.coords.astype(np.float32)
    coords = np.where(unmoved, template.coords, coords)
    if "edited" in features:
        edited[t, ind, kp] = features["edited"].to_numpy(bool)[known]
    was = np.isfinite(template.coords).all(-1)
    now = np.isfinite(coords).all(-1)
    placed = now & ~unmoved.all(-1)  # added, or moved
    deleted = was & ~now
    confidence = template.confidence.copy()
    confidence[placed] = USER_CONFIDENCE
    confidence[deleted] = np.nan
    edited |= placed | deleted
    metadata = dict(template.metadata, edited=edited)
    return template.copy(coords=coords, confidence=confidence, metadata=metadata)


def poses_from_layer_data(data: np.ndarray, features: pd.DataFrame, metadata: dict) -> Poses:
    """The poses a pose Points layer holds now, with the user's edits.

    A one-frame layer (the 3D view's, :mod:`.frame_points`) keeps all its frames in
    ``metadata["poses"]``; any other is rebuilt from its rows with :func:`poses_from_points`.
    """
    template = metadata[POSES_KEY]
    if metadata.get(ONE_FRAME_KEY):
        return template.copy()
    return poses_from_points(data, features, template)


class FrameIndex:
    """Rows of a Points layer per frame (rows sorted by time; rebuilt when rows come or go)."""

    def __init__(self, data: np.ndarray):
        self.rebuild(data)

    def rebuild(self, data: np.ndarray) -> None:
        """Index ``data``'s rows by their (rounded) time column."""
        frames = np.rint(data[:, 0]).astype(np.int64)
        self.order = (
            np.arange(len(frames))
            if np.all(frames[1:] >= frames[:-1])
            else np.argsort(frames, kind="stable")
        )
        self.sorted_frames = frames[self.order]
        self.n_rows = len(frames)

    def rows(self, frame: int) -> np.ndarray:
        """Row indices of ``frame``."""
        lo, hi = np.searchsorted(self.sorted_frames, [frame, frame + 1])
        return self.order[lo:hi]
