"""The one data model every part of napari-liftpose speaks: :class:`Poses`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

__all__ = ["Poses", "FRAMES", "as_fps", "as_names", "as_numbers", "as_text"]

#: The axes 3D coordinates can be in: the calibration's / library's ("world"), a camera's, or a
#: camera's heading with the library's up as z ("upright", random-camera lifters).
FRAMES = ("world", "camera", "upright")


@dataclass
class Poses:
    """Keypoint tracks of one or more animals, in 2D or 3D.

    Parameters
    ----------
    coords : np.ndarray
        Float array of shape ``(frames, individuals, keypoints, space)`` with ``space`` 2
        (``x, y`` in image pixels) or 3 (``x, y, z``). NaN marks a missing point.
    keypoints : sequence of str
        Keypoint (node, bodypart) names, one per keypoint axis entry; unique.
    confidence : np.ndarray, optional
        Float array ``(frames, individuals, keypoints)``; NaN where the source has none.
        Defaults to all NaN.
    edges : array-like of int, optional
        Skeleton as pairs of keypoint indices, shape ``(n_edges, 2)``.
    individuals : sequence of str, optional
        Names of the individuals (tracks); defaults to ``individual_0, ...``.
    fps : float, optional
        Frames per second, if known.
    units : str
        Units of ``coords``: ``"px"`` for image tracks, ``"mm"``... for 3D libraries.
    source : str, optional
        Path of the file the poses came from.
    source_format : str, optional
        Name of the reader that produced them (``"sleap"``, ``"dlc"``...).
    video : str, optional
        Path of the video these tracks were made on, if known.
    metadata : dict
        Format-specific extras a writer needs to round-trip the file (never required).
    frame : {"world", "camera", "upright"}, optional
        Axes of 3D ``coords``: ``"world"`` = the calibration's / 3D library's axes, ``"camera"``
        = a camera's axes (OpenCV: x right, y down, z forward), ``"upright"`` = the filming
        camera's heading with the library's up as z (x right, y away from the camera along the
        ground, z up; random-camera lifters); None where unknown (any file not written by a
        lifter).
    uncertainty : np.ndarray, optional
        Lifted 3D only: float ``(frames, individuals, keypoints)``, a radius in ``units`` that
        should contain the true point 80% of the time (calibrated on the lifter's validation
        split, see :mod:`napari_liftpose.lifting.uncertainty`); NaN where the point is missing.
        None where unknown.
    suspicion : np.ndarray, optional
        Lifted 3D only: float ``(frames, individuals)`` in [0, 1], higher = the pose looks more
        wrong; NaN where unknown. None where not computed.
    """

    coords: np.ndarray
    keypoints: Sequence[str]
    confidence: np.ndarray | None = None
    edges: np.ndarray | Sequence[Sequence[int]] | None = None
    individuals: Sequence[str] | None = None
    fps: float | None = None
    units: str = "px"
    source: str | None = None
    source_format: str | None = None
    video: str | None = None
    metadata: dict = field(default_factory=dict)
    frame: str | None = None
    uncertainty: np.ndarray | None = None
    suspicion: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.coords = np.asarray(self.coords, dtype=np.float64)
        if self.coords.ndim != 4 or self.coords.shape[-1] not in (2, 3):
            raise ValueError(
                "coords: expected shape (frames, individuals, keypoints, 2|3), "
                f"got {self.coords.shape}{self._where()}"
            )
        n_frames, n_individuals, n_keypoints, _ = self.coords.shape
        self.keypoints = [str(k) for k in self.keypoints]
        _check_names("keypoints", self.keypoints, n_keypoints, self._where())
        if self.individuals is None:
            self.individuals = [f"individual_{i}" for i in range(n_individuals)]
        self.individuals = [str(i) for i in self.individuals]
        _check_names("individuals", self.individuals, n_individuals, self._where())
        if self.confidence is None:
            self.confidence = np.full(self.coords.shape[:3], np.nan)
        self.confidence = np.asarray(self.confidence, dtype=np.float64)
        if self.confidence.shape != self.coords.shape[:3]:
            raise ValueError(
                f"confidence: expected shape {self.coords.shape[:3]}, "
                f"got {self.confidence.shape}{self._where()}"
            )
        edges = np.zeros((0, 2), dtype=np.int64) if self.edges is None else self.edges
        edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
        bad = (edges < 0) | (edges >= n_keypoints)
        if bad.any():
            raise ValueError(
                f"edges: expected indices in 0..{n_keypoints - 1}, "
                f"got {edges[bad.any(axis=1)].tolist()}{self._where()}"
            )
        self.edges = edges
        if self.fps is not None:
            self.fps = float(self.fps)
            if not np.isfinite(self.fps) or self.fps <= 0:
                raise ValueError(f"fps: expected a positive number, got {self.fps}{self._where()}")
        if self.frame is not None and self.frame not in FRAMES:
            raise ValueError(
                f"frame: expected one of {list(FRAMES)} or None, got {self.frame!r:.80}"
                f"{self._where()}"
            )
        self._check_lifted_fields()

    def _check_lifted_fields(self) -> None:
        """Check ``uncertainty`` (non-negative radii) and ``suspicion`` (scores in [0, 1])."""
        checks = (
            ("uncertainty", self.coords.shape[:3], "(frames, individuals, keypoints)", None),
            ("suspicion", self.coords.shape[:2], "(frames, individuals)", 1.0),
        )
        for name, shape, axes, high in checks:
            value = getattr(self, name)
            if value is None:
                continue
            value = np.asarray(value)
            if value.dtype.kind not in "iuf":
                raise ValueError(f"{name}: expected numbers, got {value.dtype}{self._where()}")
            value = value.astype(np.float64)
            if value.shape != shape:
                raise ValueError(
                    f"{name}: expected shape {axes} = {shape}, got {value.shape}{self._where()}"
                )
            finite = value[~np.isnan(value)]
            if (finite < 0).any() or np.isinf(finite).any() or (high and (finite > high).any()):
                bound = f"in [0, {high:g}]" if high else "finite and >= 0"
                raise ValueError(f"{name}: expected values {bound} or NaN{self._where()}")
            setattr(self, name, value)

    def _where(self) -> str:
        return f" (in {self.source})" if self.source else ""

    # -- shape helpers -------------------------------------------------------------------
    @property
    def n_frames(self) -> int:
        """Number of frames."""
        return self.coords.shape[0]

    @property
    def n_individuals(self) -> int:
        """Number of individuals (tracks)."""
        return self.coords.shape[1]

    @property
    def n_keypoints(self) -> int:
        """Number of keypoints."""
        return self.coords.shape[2]

    @property
    def n_space(self) -> int:
        """2 for image tracks, 3 for 3D poses."""
        return self.coords.shape[3]

    @property
    def name(self) -> str:
        """A short display name: the source file's stem, else ``"poses"``."""
        return Path(self.source).name if self.source else "poses"

    def edge_names(self) -> list[tuple[str, str]]:
        """Skeleton edges as pairs of keypoint names."""
        return [(self.keypoints[a], self.keypoints[b]) for a, b in self.edges]

    def copy(self, **changes) -> Poses:
        """Return a deep copy, with the given fields replaced."""
        fresh = {
            "coords": self.coords.copy(),
            "confidence": self.confidence.copy(),
            "edges": self.edges.copy(),
            "keypoints": list(self.keypoints),
            "individuals": list(self.individuals),
            "metadata": dict(self.metadata),
            "uncertainty": None if self.uncertainty is None else self.uncertainty.copy(),
            "suspicion": None if self.suspicion is None else self.suspicion.copy(),
        }
        fresh.update(changes)
        return replace(self, **fresh)

    def select_keypoints(self, names: Sequence[str]) -> Poses:
        """Return the poses reordered (and subset) to ``names``; edges are kept where both ends stay.

        Raises
        ------
        ValueError
            If a name is not one of this object's keypoints.
        """
        missing = [n for n in names if n not in self.keypoints]
        if missing:
            raise ValueError(f"keypoints not found{self._where()}: {missing}")
        index = [self.keypoints.index(n) for n in names]
        remap = {old: new for new, old in enumerate(index)}
        edges = [(remap[a], remap[b]) for a, b in self.edges if a in remap and b in remap]
        return self.copy(
            coords=self.coords[:, :, index].copy(),
            confidence=self.confidence[:, :, index].copy(),
            uncertainty=None if self.uncertainty is None else self.uncertainty[:, :, index].copy(),
            keypoints=list(names),
            edges=np.asarray(edges, dtype=np.int64).reshape(-1, 2),
        )

    def select_frames(self, frames: slice | Sequence[int] | np.ndarray) -> Poses:
        """Return a copy with only ``frames`` (a slice, indices or a boolean mask over frames).

        Coordinates, confidence, ``uncertainty`` and ``suspicion`` are cut alike; every other
        field is kept.
        """
        if not isinstance(frames, slice):
            frames = np.asarray(frames)
            if frames.dtype != bool:
                frames = frames.astype(np.int64)

        def cut(array: np.ndarray | None) -> np.ndarray | None:
            return None if array is None else array[frames].copy()

        return self.copy(
            coords=self.coords[frames].copy(),
            confidence=self.confidence[frames].copy(),
            uncertainty=cut(self.uncertainty),
            suspicion=cut(self.suspicion),
        )

    def finite_mask(self) -> np.ndarray:
        """Boolean ``(frames, individuals, keypoints)``: True where every coordinate is finite."""
        return np.isfinite(self.coords).all(axis=-1)

    def without_infinite(self) -> tuple[Poses, int]:
        """Points with an infinite coordinate made missing (all NaN).

        Returns
        -------
        tuple
            ``(poses, n)``: the poses (``self`` when nothing changed, else a copy) and the
            number of points that had an infinite coordinate.
        """
        bad = np.isinf(self.coords).any(axis=-1)
        n = int(bad.sum())
        if n == 0:
            return self, 0
        coords = self.coords.copy()
        coords[bad] = np.nan
        return self.copy(coords=coords), n


def _check_names(what: str, names: list[str], expected: int, where: str) -> None:
    if len(names) != expected:
        raise ValueError(f"{what}: expected {expected} names, got {len(names)}{where}")
    seen: set[str] = set()
    duplicates = sorted({n for n in names if n in seen or seen.add(n)})
    if duplicates:
        raise ValueError(f"{what}: expected unique names, got duplicates {duplicates}{where}")


def as_fps(value: object) -> float | None:
    """Check a frame rate read from a file: one finite positive number (or None / NaN: unknown).

    Raises
    ------
    ValueError
        ``"fps: expected one positive number, got ..."``.
    """
    if value is None:
        return None
    array = np.asarray(value)
    if array.size != 1 or array.dtype.kind not in "iuf":
        raise ValueError(f"fps: expected one positive number, got {_describe(array)}")
    fps = float(array.reshape(()))
    if np.isnan(fps):
        return None
    if not np.isfinite(fps) or fps <= 0:
        raise ValueError(f"fps: expected one positive number, got {fps}")
    return fps


def as_names(value: object, what: str) -> list[str]:
    """Check a list of names read from a file: a 1-D array of (UTF-8) strings.

    Raises
    ------
    ValueError
        ``"<what>: expected a 1-D array of names, got ..."``.
    """
    array = np.asarray(value)
    if array.ndim != 1 or array.dtype.kind not in "US":
        raise ValueError(f"{what}: expected a 1-D array of names, got {_describe(array)}")
    if array.dtype.kind == "U":
        return [str(v) for v in array]
    try:
        return [bytes(v).decode("utf-8") for v in array]
    except UnicodeDecodeError as err:
        raise ValueError(f"{what}: expected UTF-8 names, got undecodable bytes ({err})") from None


def as_numbers(value: object, what: str) -> np.ndarray:
    """Check a numeric array read from a file (integers or real floats) and return it as float64.

    Raises
    ------
    ValueError
        ``"<what>: expected numbers, got ..."`` for strings, complex numbers, booleans, records.
    """
    array = np.asarray(value)
    if array.dtype.kind not in "iuf":
        raise ValueError(f"{what}: expected numbers, got {_describe(array)}")
    return array.astype(np.float64)


def as_text(value: object, what: str) -> str:
    """Check one string read from a file (a 0-d string array or a str/bytes).

    Raises
    ------
    ValueError
        ``"<what>: expected one string, got ..."``.
    """
    if isinstance(value, str):
        return value
    array = np.asarray(value)
    if array.ndim != 0 or array.dtype.kind not in "US":
        raise ValueError(f"{what}: expected one string, got {_describe(array)}")
    item = array.item()
    if isinstance(item, bytes):
        try:
            return item.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"{what}: expected a UTF-8 string, got undecodable bytes") from None
    return str(item)


def _describe(array: np.ndarray) -> str:
    if array.ndim == 0:
        return f"a 0-d {array.dtype} array"
    return f"a {array.dtype} array of shape {array.shape}"
