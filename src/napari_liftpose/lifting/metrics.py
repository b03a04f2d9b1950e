"""Pose-error metrics: one definition, used by training, the CLI, benchmarks and the widgets.

All functions take arrays ``(frames, keypoints, 3)`` (or ``(..., keypoints, 3)``), make them
relative to the root keypoint(s), and average only over *valid* joints: finite in both
prediction and truth, with a finite root. The root joints themselves are excluded (their
root-relative error is 0 by construction). Errors are Euclidean distances in the data's units
(LiftPose3D's own plots report mean ``|dx|, |dy|, |dz|`` instead, which is smaller).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from napari_liftpose.lifting.skeleton import RootLayout
from napari_liftpose.poses import Poses

__all__ = [
    "root_relative",
    "mpjpe",
    "pa_mpjpe",
    "n_mpjpe",
    "per_joint_mpjpe",
    "bone_length_std",
    "mpjve",
    "evaluate",
    "model_roots",
    "roc_auc",
]


def _layout(n_keypoints: int, roots: Sequence[int] | int, target_sets) -> RootLayout:
    roots = (roots,) if isinstance(roots, int | np.integer) else tuple(roots)
    return RootLayout(n_keypoints, roots, target_sets)


def root_relative(
    points: np.ndarray, roots: Sequence[int] | int = 0, target_sets=None
) -> np.ndarray:
    """Points ``(..., keypoints, 3)`` relative to their roots, with the first root at the origin."""
    points = np.asarray(points, dtype=np.float64)
    return _layout(points.shape[-2], roots, target_sets).relative(points)


def _pair(pred, truth, roots, target_sets, full=False):
    pred = np.asarray(pred, dtype=np.float64)
    truth = np.asarray(truth, dtype=np.float64)
    if pred.shape != truth.shape:
        raise ValueError(
            f"expected prediction and truth of the same shape, got {pred.shape} and {truth.shape}"
        )
    layout = _layout(pred.shape[-2], roots, target_sets)
    if full:
        p, t = layout.relative(pred), layout.relative(truth)
    else:  # each keypoint relative to its own root
        p, t = layout.local(pred), layout.local(truth)
    valid = np.isfinite(p).all(-1) & np.isfinite(t).all(-1)
    valid[..., list(layout.roots)] = False
    return p, t, valid


def _mean(err: np.ndarray, valid: np.ndarray) -> float:
    return float(err[valid].mean()) if valid.any() else float("nan")


def _finite_mean(values: Sequence[float]) -> float:
    """Mean of the finite values; NaN (without numpy's empty-slice warning) when there are none."""
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def per_joint_mpjpe(
    pred: np.ndarray, truth: np.ndarray, roots: Sequence[int] | int = 0, target_sets=None
) -> np.ndarray:
    """Mean Euclidean error of each keypoint ``(keypoints,)``; NaN for roots and never-valid joints."""
    p, t, valid = _pair(pred, truth, roots, target_sets)
    err = np.where(valid, np.linalg.norm(np.nan_to_num(p - t), axis=-1), 0.0)
    n = valid.reshape(-1, valid.shape[-1]).sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return err.reshape(-1, err.shape[-1]).sum(0) / np.where(n > 0, n, np.nan)


def mpjpe(
    pred: np.ndarray, truth: np.ndarray, roots: Sequence[int] | int = 0, target_sets=None
) -> float:
    """Mean per-joint position error: mean Euclidean distance over valid root-relative joints.

    Parameters
    ----------
    pred, truth : np.ndarray
        ``(..., keypoints, 3)``; NaN where missing.
    roots : int or sequence of int
        Root keypoint(s).
    target_sets : sequence of sequence of int, optional
        Keypoints relative to each root (default: all relative to the first root).

    Returns
    -------
    float
        NaN when no joint is valid.
    """
    p, t, valid = _pair(pred, truth, roots, target_sets)
    return _mean(np.linalg.norm(np.nan_to_num(p - t), axis=-1), valid)


def _poses_valid(p, t, valid):
    """Flatten to (n, keypoints, 3) pairs."""
    k = p.shape[-2]
    return p.reshape(-1, k, 3), t.reshape(-1, k, 3), valid.reshape(-1, k)


def n_mpjpe(
    pred: np.ndarray, truth: np.ndarray, roots: Sequence[int] | int = 0, target_sets=None
) -> float:
    """MPJPE after scaling each predicted pose by its least-squares optimal factor."""
    p, t, valid = _poses_valid(*_pair(pred, truth, roots, target_sets))
    pz, tz = np.where(valid[..., None], p, 0.0), np.where(valid[..., None], t, 0.0)
    num = (pz * tz).sum((-1, -2))
    den = (pz * pz).sum((-1, -2))
    scale = np.where(den > 0, num / np.where(den > 0, den, 1.0), 1.0)
    return _mean(np.linalg.norm(pz * scale[:, None, None] - tz, axis=-1), valid)


def pa_mpjpe(
    pred: np.ndarray, truth: np.ndarray, roots: Sequence[int] | int = 0, target_sets=None
) -> float:
    """MPJPE after a per-pose similarity Procrustes alignment (rotation, scale, translation).

    The alignment uses the valid joints of each pose (the first root included); poses with
    fewer than 3 valid joints are skipped.
    """
    p, t, valid = _poses_valid(*_pair(pred, truth, roots, target_sets, full=True))
    first = _layout(p.shape[-2], roots, target_sets).roots[0]
    use = valid.copy()
    use[:, first] = np.isfinite(p[:, first]).all(-1) & np.isfinite(t[:, first]).all(-1)
    errors = []
    for i in np.flatnonzero(use.sum(1) >= 3):
        a, b = p[i, use[i]], t[i, use[i]]
        mu_a, mu_b = a.mean(0), b.mean(0)
        a0, b0 = a - mu_a, b - mu_b
        norm_a = np.sqrt((a0**2).sum())
        if norm_a == 0:
            continue
        u, s, vt = np.linalg.svd(a0.T @ b0)
        d = np.sign(np.linalg.det(u @ vt))
        s[-1] *= d
        u[:, -1] *= d
        rot = u @ vt
        scale = s.sum() / norm_a**2
        aligned = scale * (p[i] - mu_a) @ rot + mu_b
        errors.append(np.linalg.norm(aligned - t[i], axis=-1)[valid[i]])
    return (
        float(np.concatenate(errors).mean()) if errors and sum(map(len, errors)) else float("nan")
    )


def mpjve(
    pred: np.ndarray, truth: np.ndarray, roots: Sequence[int] | int = 0, target_sets=None
) -> float:
    """Mean per-joint velocity error: Euclidean error of frame-to-frame root-relative motion.

    ``pred`` and ``truth`` are ``(frames, keypoints, 3)``; a joint counts at frame ``i`` if it is
    valid at frames ``i`` and ``i + 1``. Units per frame.
    """
    p, t, valid = _pair(pred, truth, roots, target_sets)
    if p.shape[0] < 2:
        return float("nan")
    vp, vt = np.diff(p, axis=0), np.diff(t, axis=0)
    both = valid[1:] & valid[:-1]
    return _mean(np.linalg.norm(np.nan_to_num(vp - vt), axis=-1), both)


def bone_length_std(points: np.ndarray, edges: np.ndarray) -> float:
    """Mean over bones of the standard deviation of each bone's length over time.

    Parameters
    ----------
    points : np.ndarray
        ``(frames, keypoints, 3)``.
    edges : np.ndarray
        ``(bones, 2)`` keypoint index pairs.

    Returns
    -------
    float
        In the data's units; lower means more rigid bones (NaN without edges or data).
    """
    points = np.asarray(points, dtype=np.float64)
    edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    if len(edges) == 0:
        return float("nan")
    lengths = np.linalg.norm(points[..., edges[:, 0], :] - points[..., edges[:, 1], :], axis=-1)
    lengths = lengths.reshape(-1, len(edges))
    stds = [np.std(col[np.isfinite(col)]) for col in lengths.T if np.isfinite(col).sum() >= 2]
    return float(np.mean(stds)) if stds else float("nan")


def model_roots(
    meta: dict, roots: Sequence[str] | None = None
) -> tuple[list[str], list[list[str]] | None]:
    """The roots and target sets to evaluate a model's output with (the CLI and the widget).

    Parameters
    ----------
    meta : dict
        The lifter's metadata (``Lifter.meta``): its ``roots`` and ``target_sets``.
    roots : sequence of str, optional
        Roots the user asked for instead; then every keypoint is relative to the first of them
        (the model's target sets belong to the model's roots).

    Returns
    -------
    tuple
        ``(roots, target_sets)`` for :func:`evaluate`.
    """
    if roots:
        return list(roots), None
    return list(meta["roots"]), meta.get("target_sets")


def evaluate(
    pred: Poses,
    truth: Poses,
    roots: Sequence[str] | None = None,
    target_sets: Sequence[Sequence[str]] | None = None,
) -> dict:
    """Every metric of 3D predictions against 3D truth.

    Parameters
    ----------
    pred, truth : Poses
        3D poses with the same frames and individuals; truth is matched to the prediction's
        keypoints by name (extra truth keypoints are ignored).
    roots : sequence of str, optional
        Root keypoint names (default: the prediction's first keypoint).
    target_sets : sequence of sequence of str, optional
        Keypoints relative to each root.

    Returns
    -------
    dict
        ``mpjpe``, ``pa_mpjpe``, ``n_mpjpe``, ``mpjve``, ``bone_length_std`` (prediction) and
        ``bone_length_std_truth``, ``per_joint_mpjpe`` (name -> error), ``n_frames``,
        ``n_valid_joints``, ``units``, ``uncertainty_coverage`` (the fraction of valid joints whose
        true position lies within the prediction's ``uncertainty`` radius; None without one).

    Raises
    ------
    ValueError
        If the keypoints, frames or individuals do not match.
    """
    from napari_liftpose.lifting.skeleton import check_keypoints

    if pred.n_space != 3 or truth.n_space != 3:
        raise ValueError("evaluate: expected 3D prediction and 3D truth")
    check_keypoints(pred.keypoints, truth.keypoints, truth.source or "truth")
    truth = truth.select_keypoints(pred.keypoints)
    if pred.coords.shape != truth.coords.shape:
        raise ValueError(
            f"evaluate: expected truth with {pred.n_frames} frames x {pred.n_individuals} individuals, "
            f"got {truth.n_frames} x {truth.n_individuals}"
        )
    layout = RootLayout.from_names(pred.keypoints, roots, target_sets)
    r, ts = layout.roots, layout.target_sets
    p = np.swapaxes(pred.coords, 0, 1)  # (individuals, frames, k, 3)
    t = np.swapaxes(truth.coords, 0, 1)
    _, _, valid = _pair(p, t, r, ts)
    pj = per_joint_mpjpe(p, t, r, ts)
    return {
        "mpjpe": mpjpe(p, t, r, ts),
        "pa_mpjpe": pa_mpjpe(p, t, r, ts),
        "n_mpjpe": n_mpjpe(p, t, r, ts),
        "mpjve": _finite_mean([mpjve(p[i], t[i], r, ts) for i in range(len(p))]),
        "bone_length_std": _finite_mean([bone_length_std(x, pred.edges) for x in p]),
        "bone_length_std_truth": _finite_mean([bone_length_std(x, pred.edges) for x in t]),
        "per_joint_mpjpe": {
            k: (None if not np.isfinite(v) else float(v))
            for k, v in zip(pred.keypoints, pj, strict=True)
        },
        "n_frames": int(pred.n_frames),
        "n_valid_joints": int(valid.sum()),
        "units": pred.units,
        "roots": [pred.keypoints[i] for i in r],
        "uncertainty_coverage": _coverage(pred, truth, r, ts),
    }


def _coverage(pred: Poses, truth: Poses, roots, target_sets) -> float | None:
    """Fraction of valid non-root joints within ``pred.uncertainty`` of the truth (first root)."""
    if pred.uncertainty is None:
        return None
    p, t, valid = _pair(pred.coords, truth.coords, roots, target_sets, full=True)
    radius = pred.uncertainty
    valid &= np.isfinite(radius)
    if not valid.any():
        return None
    return float((np.linalg.norm(p - t, axis=-1)[valid] <= radius[valid]).mean())


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve: the chance a positive scores above a negative (ties count half).

    Parameters
    ----------
    scores : np.ndarray
        Any shape; higher = more likely positive. NaN scores are left out (with their labels).
    labels : np.ndarray
        Booleans of the same shape.

    Returns
    -------
    float
        In [0, 1]; NaN without both a positive and a negative.

    Raises
    ------
    ValueError
        If the shapes differ.
    """
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels)
    if scores.shape != labels.shape:
        raise ValueError(
            f"roc_auc: expected scores and labels of the same shape, got {scores.shape} and "
            f"{labels.shape}"
        )
    keep = ~np.isnan(scores)
    scores, labels = scores[keep], labels[keep].astype(bool)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    sorted_scores = scores[order]  # average the ranks of ties
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    ends = np.r_[starts[1:], len(scores)]
    for a, b in zip(starts, ends, strict=True):
        if b - a > 1:
            ranks[order[a:b]] = (a + 1 + b) / 2
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
