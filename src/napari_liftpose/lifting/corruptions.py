"""Known-wrong 2D frames, to measure how well the suspicion score finds them.

:func:`corrupt_frames` damages a random fraction of the (frame, individual) poses of 2D tracks
in one of the ways detectors fail: left and right exchanged, one keypoint put somewhere else,
one keypoint reported with no confidence. :func:`~napari_liftpose.lifting.metrics.roc_auc` of
:func:`~napari_liftpose.lifting.suspicion.frame_suspicion` against the mask says how well the
damaged poses are told from the rest.
"""

from __future__ import annotations

import numpy as np

from napari_liftpose.lifting.suspicion import left_right_pairs, pose_size
from napari_liftpose.poses import Poses

__all__ = ["KINDS", "corrupt_frames"]

#: The kinds of damage, as named in the ``kinds`` array of :func:`corrupt_frames`.
KINDS = ("swap", "move", "confidence")


def corrupt_frames(
    poses_2d: Poses,
    fraction: float = 0.05,
    rng: np.random.Generator | int | None = None,
    kinds: tuple[str, ...] = KINDS,
    move: float = 0.2,
) -> tuple[Poses, np.ndarray, np.ndarray]:
    """Damage a random ``fraction`` of the poses of 2D tracks.

    Each damaged (frame, individual) gets one kind, drawn evenly from ``kinds``:

    - ``"swap"``: every left keypoint exchanged with its right partner (names as
      :func:`~napari_liftpose.lifting.suspicion.left_right_pairs`); tracks without left/right
      names get ``"move"`` instead;
    - ``"move"``: one random visible keypoint moved by ``move`` times the body size (in a random
      direction). Body size: the largest distance between two keypoints of the pose, a median
      over the individual's frames;
    - ``"confidence"``: one random visible keypoint's confidence set to 0 (its position kept).

    Parameters
    ----------
    poses_2d : Poses
        2D tracks ``(frames, individuals, keypoints, 2)``.
    fraction : float
        Fraction of the poses with at least two visible keypoints to damage (at least one).
    rng : numpy Generator or int, optional
        Random source (or its seed).
    kinds : tuple of str
        Which kinds to use (a subset of :data:`KINDS`).
    move : float
        Distance of a ``"move"`` as a fraction of body size.

    Returns
    -------
    tuple
        ``(damaged, mask, kind)``: the damaged copy, a boolean ``(frames, individuals)`` mask of
        the damaged poses, and ``(frames, individuals)`` str: the kind, ``""`` where untouched.

    Raises
    ------
    ValueError
        For 3D poses, a fraction outside (0, 1], an unknown kind, or nothing to damage.
    """
    if poses_2d.n_space != 2:
        raise ValueError(f"{poses_2d.name}: expected 2D tracks to corrupt, got 3D")
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction: expected a number in (0, 1], got {fraction}")
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown or not kinds:
        raise ValueError(f"kinds: expected some of {list(KINDS)}, got {list(kinds)}")
    rng = np.random.default_rng(rng)
    coords = poses_2d.coords.copy()
    conf = poses_2d.confidence.copy()
    seen = np.isfinite(coords).all(-1)
    candidates = np.argwhere(seen.sum(-1) >= 2)
    if not len(candidates):
        raise ValueError(f"{poses_2d.name}: no pose with two visible keypoints to corrupt")
    n = max(1, int(round(fraction * len(candidates))))
    chosen = candidates[rng.choice(len(candidates), size=n, replace=False)]
    pairs = left_right_pairs(poses_2d.keypoints)
    swap = np.arange(poses_2d.n_keypoints)
    for i, j in pairs:
        swap[i], swap[j] = j, i
    body = _body_size(coords)
    mask = np.zeros(coords.shape[:2], dtype=bool)
    kind = np.full(coords.shape[:2], "", dtype=object)
    for f, ind in chosen:
        what = kinds[rng.integers(len(kinds))]
        if what == "swap" and not any(seen[f, ind, i] or seen[f, ind, j] for i, j in pairs):
            what = "move"  # no left/right names, or every paired keypoint missing: a no-op
        visible = np.flatnonzero(seen[f, ind])
        if what == "swap":
            coords[f, ind] = coords[f, ind, swap]
            conf[f, ind] = conf[f, ind, swap]
        elif what == "move":
            k = rng.choice(visible)
            angle = rng.uniform(0, 2 * np.pi)
            coords[f, ind, k] += move * body[ind] * np.array([np.cos(angle), np.sin(angle)])
        else:
            conf[f, ind, rng.choice(visible)] = 0.0
        mask[f, ind] = True
        kind[f, ind] = what
    damaged = poses_2d.copy(coords=coords, confidence=conf)
    return damaged, mask, kind.astype(str)


def _body_size(coords: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """``(individuals,)``: median over frames of the largest keypoint distance in a pose.

    Computed ``chunk`` frames at a time: all keypoint pairs of a whole file at once would take
    ``frames x individuals x keypoints**2`` doubles (GBs for a long recording).
    """
    span = np.full(coords.shape[:2], np.nan)
    for start in range(0, len(coords), chunk):
        part = coords[start : start + chunk]
        diff = part[:, :, :, None, :] - part[:, :, None, :, :]
        with np.errstate(invalid="ignore"):
            span[start : start + chunk] = np.sqrt(
                np.max(np.where(np.isfinite(diff).all(-1), (diff**2).sum(-1), -1), axis=(-1, -2))
            )
    span = np.where(span > 0, span, np.nan)
    size = np.nanmedian(span, axis=0)
    fallback = np.nanmedian(pose_size(coords), axis=0)
    return np.where(np.isfinite(size), size, fallback)
