"""Checks that pose data fit a model or a library before any work, and that a lift gave something.

One place for what ``train --tracks-2d``, ``lift`` and ``evaluate`` (and any script) check: the
number of spatial dimensions, the keypoints a model or library needs, matching frame counts, and
that a lifted result holds at least one finite 3D point. Every check raises
:class:`~napari_liftpose.io.errors.PoseFileError` naming the data's file, so the message can be
shown as is.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from napari_liftpose.io.errors import PoseFileError
from napari_liftpose.poses import Poses

__all__ = [
    "keypoint_mismatch",
    "require_keypoints",
    "require_liftable",
    "require_same_frames",
    "require_space",
]

_ROLE_TEXT = {2: "2D tracks", 3: "3D poses"}


def _where(poses: Poses, path: str | Path | None) -> Path:
    return Path(path if path is not None else (poses.source or "<poses>"))


def keypoint_mismatch(needed: Sequence[str], present: Sequence[str]) -> str | None:
    """Describe what ``present`` lacks of ``needed``, or None when nothing is missing.

    Extra keypoints and a different order are fine (the data is subset/reordered).

    Parameters
    ----------
    needed : sequence of str
        Keypoints a model or library requires.
    present : sequence of str
        Keypoints of the data.

    Returns
    -------
    str or None
        ``"missing: [...]; extra: [...]"`` or None.
    """
    missing = [k for k in needed if k not in present]
    if not missing:
        return None
    extra = [k for k in present if k not in needed]
    return f"missing: {missing}; extra: {extra}"


def require_space(
    poses: Poses, n_space: int, path: str | Path | None = None, purpose: str = ""
) -> None:
    """Raise unless ``poses`` has ``n_space`` (2 or 3) spatial dimensions.

    Parameters
    ----------
    poses : Poses
        The data.
    n_space : int
        2 or 3.
    path : str or Path, optional
        The file named in the message (default: ``poses.source``).
    purpose : str
        What the data is for, e.g. ``"to lift"`` or ``"as truth"``.

    Raises
    ------
    PoseFileError
        ``"PATH: expected 2D tracks to lift, got 3D poses"``.
    """
    if poses.n_space != n_space:
        wanted = _ROLE_TEXT.get(n_space, f"{n_space}D data")
        got = _ROLE_TEXT.get(poses.n_space, f"{poses.n_space}D data")
        purpose = f" {purpose}" if purpose else ""
        raise PoseFileError(_where(poses, path), f"expected {wanted}{purpose}, got {got}")


def require_keypoints(
    poses: Poses, needed: Sequence[str], against: str, path: str | Path | None = None
) -> None:
    """Raise unless ``poses`` holds every keypoint of ``needed``.

    Parameters
    ----------
    poses : Poses
        The data.
    needed : sequence of str
        The keypoints of the model or library the data must fit.
    against : str
        What ``needed`` belongs to, for the message, e.g. ``"the model lifter.safetensors"``.
    path : str or Path, optional
        The file named in the message (default: ``poses.source``).

    Raises
    ------
    PoseFileError
        ``"PATH: keypoints do not match AGAINST: missing: [...]; extra: [...]"``.
    """
    problem = keypoint_mismatch(needed, list(poses.keypoints))
    if problem is not None:
        raise PoseFileError(_where(poses, path), f"keypoints do not match {against}: {problem}")


def require_same_frames(
    poses: Poses,
    reference: Poses,
    path: str | Path | None = None,
    reference_path: str | Path | None = None,
) -> None:
    """Raise unless ``poses`` has as many frames and individuals as ``reference``.

    Raises
    ------
    PoseFileError
        ``"PATH: expected F frames x I individuals like REF, got f x i"``.
    """
    if poses.coords.shape[:2] != reference.coords.shape[:2]:
        raise PoseFileError(
            _where(poses, path),
            f"expected {reference.n_frames} frames x {reference.n_individuals} individuals like "
            f"{_where(reference, reference_path)}, got {poses.n_frames} x {poses.n_individuals}",
        )


def require_liftable(lifted: Poses, path: str | Path | None = None, root: str = "") -> None:
    """Raise if a lift gave no finite 3D point (instead of writing an all-NaN file).

    A lifter returns NaN for poses with fewer than two visible keypoints, and for every pose of
    an input whose root keypoint is never tracked (a missing root is estimated from other
    frames of the same input), so such input lifts to nothing.

    Parameters
    ----------
    lifted : Poses
        The lifter's output.
    path : str or Path, optional
        The 2D input named in the message (default: ``lifted.source``).
    root : str
        The lifter's root keypoint, named in the message.

    Raises
    ------
    PoseFileError
        ``"PATH: nothing liftable: ..."``.
    """
    if not np.isfinite(lifted.coords).any():
        because = f" (its root keypoint {root!r} is never tracked)" if root else ""
        raise PoseFileError(
            _where(lifted, path), f"nothing liftable: no pose gave a finite 3D point{because}"
        )
