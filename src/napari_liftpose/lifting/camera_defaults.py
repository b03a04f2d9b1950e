"""Defaults for random virtual cameras taken from the library itself: the animal's size, the up axis.

A random-camera lifter sees the animal from ``distance`` away; a good default is 5 to 10 times
the animal's size, so that perspective is neither extreme nor absent whatever the library's
units are.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from napari_liftpose.poses import Poses

__all__ = ["AXES", "animal_size", "default_distance", "up_vector"]

#: Spellings of an up axis accepted by :func:`up_vector`.
AXES = ("x", "y", "z", "-x", "-y", "-z")

#: The default camera distance, as multiples of :func:`animal_size`.
DISTANCE_FACTORS = (5.0, 10.0)


def animal_size(libraries: Sequence[Poses]) -> float:
    """The animal's typical size: the median over poses of the largest keypoint-to-centroid distance.

    Parameters
    ----------
    libraries : sequence of Poses
        3D libraries ``(frames, individuals, keypoints, 3)`` with the same keypoints.

    Returns
    -------
    float
        In the libraries' units; 1.0 when no pose has a finite size (so a default still exists).
    """
    if not libraries:
        return 1.0
    n_keypoints = libraries[0].n_keypoints
    poses = np.concatenate([lib.coords.reshape(-1, n_keypoints, 3) for lib in libraries])
    poses = np.where(np.isfinite(poses).all(-1, keepdims=True), poses, np.nan)  # inf: missing
    finite = np.isfinite(poses).all(-1).any(-1)  # poses with at least one finite keypoint
    if not finite.any():
        return 1.0
    poses = poses[finite]
    centroid = np.nanmean(poses, axis=1, keepdims=True)
    radius = np.nanmax(np.linalg.norm(poses - centroid, axis=-1), axis=1)
    size = float(np.nanmedian(radius)) if np.isfinite(radius).any() else float("nan")
    return size if np.isfinite(size) and size > 0 else 1.0


def default_distance(libraries: Sequence[Poses]) -> tuple[float, float]:
    """The default ``(min, max)`` camera distance: 5 to 10 times :func:`animal_size`."""
    size = animal_size(libraries)
    return (DISTANCE_FACTORS[0] * size, DISTANCE_FACTORS[1] * size)


def up_vector(axis: str) -> tuple[float, float, float]:
    """The unit vector of an up axis spelled ``"z"``, ``"-y"`` and so on.

    Raises
    ------
    ValueError
        For a spelling not in :data:`AXES`.
    """
    if axis not in AXES:
        raise ValueError(f"up: expected one of {', '.join(AXES)}, got {axis!r}")
    up = [0.0, 0.0, 0.0]
    up["xyz".index(axis[-1])] = -1.0 if axis.startswith("-") else 1.0
    return (up[0], up[1], up[2])
