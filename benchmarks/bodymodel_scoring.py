"""Scoring for ``bench_bodymodel.py``: 3D poses against a truth in other axes and other units.

A lifter built from a body model answers in the model's millimetres and in axes of its own
(upright, heading from the camera); the truth is a triangulation in a calibration's axes and
units. Both scores here therefore align the prediction to the truth with a *similarity*
(rotation, uniform scale, translation; never a reflection) before measuring:

* :func:`pa_mpjpe_frames`: one alignment per frame (PA-MPJPE), what the pose's shape is worth;
* :func:`sequence_mpjpe`: the poses made root-relative, then **one** alignment for the whole
  sequence, so a lifter must also keep the orientation and size steady from frame to frame;
* :func:`motion_mpjpe` (a diagnostic, not a score): as :func:`sequence_mpjpe`, with the
  prediction's mean pose swapped for the truth's, so only its motion about that mean counts
  (proportions that differ from the animal's cost nothing there).

Errors are Euclidean, in the truth's units, averaged over the valid joints (finite in both) of
every frame; a single root keypoint is left out of the averages (its root-relative error is 0 by
construction, as in :mod:`napari_liftpose.lifting.metrics`); a root given as several keypoints
(their centroid) leaves none out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "Similarity",
    "Scores",
    "similarity_fit",
    "root_relative",
    "pa_mpjpe_frames",
    "sequence_errors",
    "sequence_mpjpe",
    "motion_mpjpe",
    "score",
    "fraction_above",
]

Root = int | Sequence[int]


@dataclass(frozen=True)
class Similarity:
    """``aligned = scale * points @ rotation + translation`` (row vectors, no reflection)."""

    scale: float
    rotation: np.ndarray
    translation: np.ndarray

    def apply(self, points: np.ndarray) -> np.ndarray:
        """Transform points ``(..., 3)``."""
        return self.scale * np.asarray(points, dtype=np.float64) @ self.rotation + self.translation


def similarity_fit(source: np.ndarray, target: np.ndarray) -> Similarity:
    """The least-squares similarity taking ``source`` onto ``target`` (Umeyama 1991).

    Parameters
    ----------
    source, target : np.ndarray
        Corresponding points ``(n, 3)``, all finite, at least 3 not all on one point.

    Returns
    -------
    Similarity
        Rotation a proper rotation (determinant +1): a mirror image is not matched.

    Raises
    ------
    ValueError
        For shapes that differ, fewer than 3 points, non-finite values or a degenerate source.
    """
    a = np.asarray(source, dtype=np.float64)
    b = np.asarray(target, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2 or a.shape[1] != 3:
        raise ValueError(f"expected two (n, 3) arrays of one shape, got {a.shape} and {b.shape}")
    if len(a) < 3:
        raise ValueError(f"expected at least 3 points, got {len(a)}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("expected finite points")
    mu_a, mu_b = a.mean(0), b.mean(0)
    a0, b0 = a - mu_a, b - mu_b
    var_a = float((a0**2).sum())
    if var_a == 0.0:
        raise ValueError("expected source points that are not all one point")
    u, s, vt = np.linalg.svd(a0.T @ b0)
    sign = np.sign(np.linalg.det(u @ vt)) or 1.0
    s = s.copy()
    s[-1] *= sign
    u = u.copy()
    u[:, -1] *= sign
    rotation = u @ vt
    scale = float(s.sum() / var_a)
    return Similarity(scale, rotation, mu_b - scale * mu_a @ rotation)


def _root_indices(root: Root) -> list[int]:
    return [int(root)] if isinstance(root, int | np.integer) else [int(r) for r in root]


def root_relative(points: np.ndarray, root: Root) -> np.ndarray:
    """Points ``(frames, keypoints, 3)`` minus each frame's root.

    ``root`` is a keypoint index, or several whose centroid is the root (NaN if any is missing).
    """
    points = np.asarray(points, dtype=np.float64)
    centre = points[:, _root_indices(root)].mean(axis=1, keepdims=True)
    return points - centre


def _valid(pred: np.ndarray, truth: np.ndarray, root: Root) -> np.ndarray:
    """Joints finite in both; a single root keypoint left out."""
    if pred.shape != truth.shape or pred.ndim != 3 or pred.shape[-1] != 3:
        raise ValueError(
            f"expected prediction and truth (frames, keypoints, 3) of one shape, got "
            f"{pred.shape} and {truth.shape}"
        )
    valid = np.isfinite(pred).all(-1) & np.isfinite(truth).all(-1)
    roots = _root_indices(root)
    if len(roots) == 1:
        valid[:, roots[0]] = False
    return valid


def pa_mpjpe_frames(pred: np.ndarray, truth: np.ndarray, root: Root = 0) -> np.ndarray:
    """Per-frame PA-MPJPE: each frame aligned by its own similarity, then the mean error.

    Parameters
    ----------
    pred, truth : np.ndarray
        ``(frames, keypoints, 3)``, NaN where missing, in any axes and units each.
    root : int or sequence of int
        A single root keypoint is used for the alignment but left out of the error (as
        :func:`napari_liftpose.lifting.metrics.pa_mpjpe`); several: none is left out.

    Returns
    -------
    np.ndarray
        ``(frames,)`` mean error over the frame's valid joints, in the truth's units; NaN for a
        frame with fewer than 3 joints to align on.
    """
    pred = np.asarray(pred, dtype=np.float64)
    truth = np.asarray(truth, dtype=np.float64)
    valid = _valid(pred, truth, root)
    both = np.isfinite(pred).all(-1) & np.isfinite(truth).all(-1)
    out = np.full(len(pred), np.nan)
    for i in range(len(pred)):
        if both[i].sum() < 3 or not valid[i].any():
            continue
        try:
            fit = similarity_fit(pred[i, both[i]], truth[i, both[i]])
        except ValueError:  # a degenerate prediction (all one point) cannot be aligned
            continue
        err = np.linalg.norm(fit.apply(pred[i, valid[i]]) - truth[i, valid[i]], axis=-1)
        out[i] = err.mean()
    return out


def _pooled(values: np.ndarray, counts: np.ndarray) -> float:
    keep = np.isfinite(values) & (counts > 0)
    return float((values[keep] * counts[keep]).sum() / counts[keep].sum()) if keep.any() else np.nan


def sequence_errors(pred: np.ndarray, truth: np.ndarray, root: Root = 0) -> np.ndarray:
    """Per-joint errors ``(frames, keypoints)`` after one similarity for the whole sequence.

    Every frame of both is made root-relative (:func:`root_relative`), then the single
    similarity that best takes all the prediction's valid joints of all frames onto the truth's
    is applied. NaN where a joint is not valid (and for a single root keypoint); all NaN with
    fewer than 3 valid joints in all.
    """
    p = root_relative(pred, root)
    t = root_relative(truth, root)
    valid = _valid(p, t, root)
    out = np.full(valid.shape, np.nan)
    if valid.sum() < 3:
        return out
    try:
        fit = similarity_fit(p[valid], t[valid])
    except ValueError:
        return out
    out[valid] = np.linalg.norm(fit.apply(p[valid]) - t[valid], axis=-1)
    return out


def sequence_mpjpe(pred: np.ndarray, truth: np.ndarray, root: Root = 0) -> float:
    """MPJPE after one similarity alignment for the whole sequence, on root-relative poses.

    The mean of :func:`sequence_errors` over the valid joints of all frames: a lifter must keep
    its orientation and size steady from frame to frame to score well.

    Returns
    -------
    float
        In the truth's units; NaN with fewer than 3 valid joints in all.
    """
    errors = sequence_errors(pred, truth, root)
    finite = np.isfinite(errors)
    return float(errors[finite].mean()) if finite.any() else float("nan")


def motion_mpjpe(pred: np.ndarray, truth: np.ndarray, root: Root = 0) -> float:
    """:func:`sequence_mpjpe` after swapping the prediction's mean pose for the truth's.

    Both are made root-relative and the prediction aligned by one similarity as in
    :func:`sequence_mpjpe`; then each joint of the prediction is moved by the difference of its
    mean over the frames from the truth's. What is left is the error of the motion about the
    mean pose: below the truth's own mean pose (whose error is the truth's spread) only when the
    prediction's motion follows the animal's. Joints are those valid in every frame. The
    alignment is fitted with the prediction's own proportions, so it is not exactly the one a
    correctly built prediction would get: wrong proportions cost a little here, not nothing
    (offsets of 5 units on the sleap-anipose mouse: under 1 % of their sequence MPJPE).

    Returns
    -------
    float
        In the truth's units; NaN with fewer than 3 joints valid in every frame.
    """
    p = root_relative(pred, root)
    t = root_relative(truth, root)
    keep = _valid(p, t, root).all(axis=0)
    if keep.sum() < 3 or len(p) == 0:
        return float("nan")
    p, t = p[:, keep], t[:, keep]
    try:
        fit = similarity_fit(p.reshape(-1, 3), t.reshape(-1, 3))
    except ValueError:
        return float("nan")
    aligned = fit.apply(p)
    moved = aligned - aligned.mean(axis=0) + t.mean(axis=0)
    return float(np.linalg.norm(moved - t, axis=-1).mean())


@dataclass(frozen=True)
class Scores:
    """Both scores of one prediction, the motion diagnostic, and what they were computed over."""

    pa_mpjpe: float
    sequence_mpjpe: float
    n_frames: int
    n_joints: int
    motion_mpjpe: float = float("nan")


def score(pred: np.ndarray, truth: np.ndarray, root: Root = 0) -> Scores:
    """:func:`pa_mpjpe_frames` (pooled over joints), :func:`sequence_mpjpe` and :func:`motion_mpjpe`."""
    pred = np.asarray(pred, dtype=np.float64)
    truth = np.asarray(truth, dtype=np.float64)
    frames = pa_mpjpe_frames(pred, truth, root)
    counts = _valid(pred, truth, root).sum(1)
    scored = np.isfinite(frames)
    return Scores(
        pa_mpjpe=_pooled(frames, counts),
        sequence_mpjpe=sequence_mpjpe(pred, truth, root),
        n_frames=int(scored.sum()),
        n_joints=int(counts[scored].sum()),
        motion_mpjpe=motion_mpjpe(pred, truth, root),
    )


def fraction_above(
    points: np.ndarray, upper: Sequence[int], lower: int, axis: int = 2
) -> tuple[float, int]:
    """Fraction of frames in which every ``upper`` keypoint lies above ``lower``'s plane.

    The plane is the one through ``lower`` perpendicular to ``axis`` (z: the up axis of upright
    3D). Frames where any of them is missing are not counted.

    Returns
    -------
    tuple
        ``(fraction, frames counted)``; NaN and 0 when none can be counted.
    """
    points = np.asarray(points, dtype=np.float64)
    up = points[:, list(upper), axis]
    base = points[:, lower, axis]
    counted = np.isfinite(up).all(1) & np.isfinite(base)
    if not counted.any():
        return float("nan"), 0
    above = (up[counted] > base[counted, None]).all(1)
    return float(above.mean()), int(counted.sum())
