"""Roots, target sets and root-relative coordinates.

A lifter predicts every keypoint relative to a *root*. With one root (the default) every other
keypoint is an offset from it. With several roots (LiftPose3D's ``roots`` + ``target_sets``,
e.g. one root per fly leg) each keypoint of a target set is an offset from that set's root, and
every further root is an offset from the first root, so a full pose can always be rebuilt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from napari_liftpose.lifting.matching import keypoint_mismatch

__all__ = ["RootLayout", "check_keypoints"]


def check_keypoints(
    model_keypoints: Sequence[str], data_keypoints: Sequence[str], where: str = ""
) -> None:
    """Raise if ``data_keypoints`` lacks any of ``model_keypoints``.

    Extra keypoints and a different order are fine (the data is then subset/reordered).

    Raises
    ------
    ValueError
        ``"keypoints do not match the model: missing: [...]; extra: [...]"``.
    """
    problem = keypoint_mismatch(model_keypoints, data_keypoints)
    if problem:
        prefix = f"{where}: " if where else ""
        raise ValueError(f"{prefix}keypoints do not match the model: {problem}")


@dataclass(frozen=True)
class RootLayout:
    """Which root each keypoint is expressed relative to.

    Parameters
    ----------
    n_keypoints : int
        Number of keypoints.
    roots : tuple of int
        Root keypoint indices; the first is the pose origin.
    target_sets : tuple of tuple of int
        One set of keypoint indices per root. Keypoints in no set are relative to the first root.
    """

    n_keypoints: int
    roots: tuple[int, ...] = (0,)
    target_sets: tuple[tuple[int, ...], ...] | None = None

    def __post_init__(self) -> None:
        roots = tuple(int(r) for r in self.roots)
        if not roots:
            raise ValueError("roots: expected at least one root")
        if len(set(roots)) != len(roots) or not all(0 <= r < self.n_keypoints for r in roots):
            raise ValueError(
                f"roots: expected distinct indices in 0..{self.n_keypoints - 1}, got {list(roots)}"
            )
        object.__setattr__(self, "roots", roots)
        if self.target_sets is not None:
            sets = tuple(tuple(int(j) for j in s) for s in self.target_sets)
            if len(sets) != len(roots):
                raise ValueError(
                    f"target_sets: expected one set per root ({len(roots)}), got {len(sets)}"
                )
            flat = [j for s in sets for j in s]
            if len(set(flat)) != len(flat):
                raise ValueError("target_sets: a keypoint is in more than one target set")
            if set(flat) & set(roots):
                raise ValueError("target_sets: roots cannot be targets")
            if not all(0 <= j < self.n_keypoints for j in flat):
                raise ValueError(f"target_sets: expected indices in 0..{self.n_keypoints - 1}")
            object.__setattr__(self, "target_sets", sets)

    @classmethod
    def from_names(
        cls,
        keypoints: Sequence[str],
        roots: Sequence[str] | None = None,
        target_sets: Sequence[Sequence[str]] | None = None,
    ) -> RootLayout:
        """Build from keypoint names (default root: the first keypoint)."""
        keypoints = list(keypoints)

        def index(name: str) -> int:
            if name not in keypoints:
                raise ValueError(
                    f"root/target keypoint {name!r} is not one of the keypoints {keypoints}"
                )
            return keypoints.index(name)

        root_idx = tuple(index(r) for r in roots) if roots else (0,)
        sets = tuple(tuple(index(n) for n in s) for s in target_sets) if target_sets else None
        return cls(len(keypoints), root_idx, sets)

    @property
    def parents(self) -> np.ndarray:
        """``(keypoints,)`` the root each keypoint is relative to (the first root: itself)."""
        parent = np.full(self.n_keypoints, self.roots[0], dtype=np.int64)
        if self.target_sets is not None:
            for root, targets in zip(self.roots, self.target_sets, strict=True):
                parent[list(targets)] = root
        return parent

    @property
    def targets(self) -> np.ndarray:
        """``(keypoints - 1,)`` indices of the predicted keypoints (all but the first root)."""
        return np.array([j for j in range(self.n_keypoints) if j != self.roots[0]], dtype=np.int64)

    def to_offsets(self, points: np.ndarray) -> np.ndarray:
        """Points ``(..., keypoints, 3)`` -> offsets from their roots ``(..., keypoints - 1, 3)``."""
        targets = self.targets
        return points[..., targets, :] - points[..., self.parents[targets], :]

    def from_offsets(self, offsets: np.ndarray) -> np.ndarray:
        """Offsets ``(..., keypoints - 1, 3)`` -> points ``(..., keypoints, 3)``, first root at 0."""
        shape = offsets.shape[:-2] + (self.n_keypoints, offsets.shape[-1])
        points = np.zeros(shape, dtype=offsets.dtype)
        points[..., self.targets, :] = offsets
        parents = self.parents
        second_roots = [r for r in self.roots[1:]]
        others = [j for j in self.targets if j not in second_roots]
        if second_roots and others:
            points[..., others, :] += points[..., parents[others], :]
        return points

    def relative(self, points: np.ndarray) -> np.ndarray:
        """Points ``(..., keypoints, 3)`` re-expressed with the first root at 0 (NaN kept)."""
        return self.from_offsets(self.to_offsets(points))

    def local(self, points: np.ndarray) -> np.ndarray:
        """Points ``(..., keypoints, 3)`` minus their own root (roots at 0): per target set."""
        points = np.asarray(points)
        return points - points[..., self.parents, :]

    def to_dict(self, keypoints: Sequence[str]) -> dict:
        """Names of the roots and target sets (JSON-able)."""
        return {
            "roots": [keypoints[r] for r in self.roots],
            "target_sets": None
            if self.target_sets is None
            else [[keypoints[j] for j in s] for s in self.target_sets],
        }
