"""Training pairs: 2D inputs and root-relative 3D targets, made fresh every epoch.

A :class:`PoseSamples` holds one or more 3D sequences (a library file, one individual each)
and, for real-pair training, the matching 2D tracks. :meth:`PoseSamples.draw` cuts windows of
``window`` frames around chosen centre frames and turns them into model inputs:

1. optional bone-length perturbation of the 3D (per window, along the skeleton tree),
2. projection through the camera (known, optionally jittered, or one random camera per window),
   or the paired 2D,
3. optional 2D noise (in pixels, then as a fraction of the pose's size), keypoint dropout and
   frame dropout; unset noise takes the source's default (:data:`NOISE_DEFAULTS`),
4. per-pose normalisation of the 2D (see :func:`normalize_2d`),
5. root-relative 3D targets of the centre frame, in the camera frame (or the library frame for
   real pairs without a camera).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from napari_liftpose.lifting.cameras import (
    KnownCamera,
    RandomCameras,
    heading_spread,
    turn_about_up,
)
from napari_liftpose.lifting.skeleton import RootLayout
from napari_liftpose.poses import Poses

__all__ = [
    "PairedTracks",
    "PoseSamples",
    "normalize_2d",
    "Augmentation",
    "NOISE_DEFAULTS",
    "source_kind",
    "HEADING_SPREAD_FREE",
]

#: A known-camera library whose body headings spread more than this (circular standard
#: deviation, degrees, about the world's z) is of a free-moving animal: its training poses are
#: turned to every heading by default (:attr:`Augmentation.heading_deg`). The shared tethered
#: fly spreads about 2 degrees, the synthetic walking insect over 100.
HEADING_SPREAD_FREE = 20.0


@dataclass
class PairedTracks:
    """Real 2D tracks paired frame by frame with the 3D library (same keypoints, same frames).

    ``tracks`` has one :class:`Poses` per library file, in the same order.
    """

    tracks: Sequence[Poses]

    def to_dict(self) -> dict:
        """JSON-able description, stored in checkpoints."""
        return {"kind": "pairs", "sources": [p.source for p in self.tracks]}


@dataclass
class Augmentation:
    """Random changes made to each training sample.

    A field that is None takes the default of the source of 2D (see :data:`NOISE_DEFAULTS`),
    filled in by :meth:`for_source` (and by :meth:`PoseSamples.draw`); 0 turns it off.

    Parameters
    ----------
    noise_2d : float or None
        Standard deviation of Gaussian 2D noise, as a fraction of the pose's 2D size (root-mean-
        square distance of its keypoints from the root).
    noise_px : float or None
        Standard deviation of Gaussian 2D noise in pixels (each coordinate), added to the 2D
        before normalisation: the detector noise of a known camera's images (random cameras:
        pixels of their virtual focal length; real pairs: of the tracks).
    camera_jitter_deg : float or None
        Known camera: standard deviation (degrees, about each axis) of a random rotation of the
        camera about the animal, one per sample, so that a slightly-off calibration still lifts.
        The 3D targets are in the jittered camera's axes (the 2D and 3D stay consistent).
    camera_jitter_distance : float or None
        Known camera: standard deviation of a random shift of the camera (each axis), as a
        fraction of its distance from the animal, one per sample.
    bone_jitter : float
        Standard deviation of the relative change of each bone's length (3D, before projection;
        not applied to real pairs).
    keypoint_dropout : float
        Probability that a non-root keypoint is hidden (coordinates missing, confidence 0).
    frame_dropout : float
        Probability that a whole frame is hidden (temporal model).
    subset_dropout : float
        Largest fraction of the non-root keypoints that one sample hides in every frame of its
        window; each sample draws its fraction uniformly from ``[0, subset_dropout]`` and hides
        that many keypoints chosen at random. A lifter trained so lifts skeletons that track only
        some of its keypoints (built-in lifters: a 4-keypoint open-field file). Independent of
        ``dropout_samples``.
    dropout_samples : float
        Fraction of samples (windows) that get keypoint and frame dropout at all; the others
        stay complete, so the network also learns the clean case (with 30 keypoints and
        ``keypoint_dropout=0.1`` fewer than 5 % of frames would otherwise be complete).
    heading_deg : float or None
        Known camera: each window's 3D is turned about the world's z axis (through its root)
        by an angle drawn uniformly in ``[-heading_deg, heading_deg]`` before projection, so a
        free-moving animal is seen at headings the library holds few of. None: decided from the
        library (:meth:`PoseSamples.resolve`): 180 when its headings spread more than
        :data:`HEADING_SPREAD_FREE` degrees, else 0 (a tethered animal's heading is fixed).
        Ignored for random cameras (they turn around the animal) and real pairs.
    """

    noise_2d: float | None = 0.0
    bone_jitter: float = 0.0
    keypoint_dropout: float = 0.0
    frame_dropout: float = 0.0
    subset_dropout: float = 0.0
    dropout_samples: float = 1.0
    noise_px: float | None = 0.0
    camera_jitter_deg: float | None = 0.0
    camera_jitter_distance: float | None = 0.0
    heading_deg: float | None = 0.0

    def for_source(self, source: KnownCamera | RandomCameras | PairedTracks) -> Augmentation:
        """A copy whose None fields hold the defaults of ``source`` (:data:`NOISE_DEFAULTS`)."""
        defaults = NOISE_DEFAULTS[source_kind(source)]
        filled = {k: defaults[k] for k in NOISE_FIELDS if getattr(self, k) is None}
        return replace(self, **filled)

    def noise_only(self) -> Augmentation:
        """Only the 2D noise (what validation is scored with): no jitter, no dropout."""
        return Augmentation(noise_2d=self.noise_2d, noise_px=self.noise_px)


#: Augmentation fields whose default depends on the source of 2D.
NOISE_FIELDS = ("noise_2d", "noise_px", "camera_jitter_deg", "camera_jitter_distance")

#: Default 2D noise and camera jitter per source of 2D ("known", "random", "pairs"), chosen by
#: measurement over the fly (two known cameras, random cameras), the synthetic insect and the
#: sleap-anipose mouse (real pairs from three cameras); see docs/noise.md.
NOISE_DEFAULTS: dict[str, dict[str, float]] = {
    "known": {
        "noise_2d": 0.0,
        "noise_px": 1.5,
        "camera_jitter_deg": 1.0,
        "camera_jitter_distance": 0.02,
    },
    "random": {
        "noise_2d": 0.03,
        "noise_px": 0.0,
        "camera_jitter_deg": 0.0,
        "camera_jitter_distance": 0.0,
    },
    "pairs": {
        "noise_2d": 0.02,
        "noise_px": 0.0,
        "camera_jitter_deg": 0.0,
        "camera_jitter_distance": 0.0,
    },
}


def hidden_subsets(
    n: int, k: int, root: int, largest: float, rng: np.random.Generator
) -> np.ndarray:
    """Which keypoints each of ``n`` samples hides in all its frames: ``(n, 1, k)`` booleans.

    Sample ``i`` hides ``round(f_i * (k - 1))`` non-root keypoints chosen at random, with
    ``f_i`` uniform in ``[0, largest]``; the root is never hidden.
    """
    counts = np.rint(rng.uniform(0.0, largest, n) * (k - 1)).astype(int)
    order = np.argsort(rng.random((n, k)), axis=1)  # a random permutation per sample
    order = order[order != root].reshape(n, k - 1)  # without the root, still random
    hide = np.zeros((n, k), dtype=bool)
    rows = np.repeat(np.arange(n), counts)
    cols = np.concatenate([order[i, :c] for i, c in enumerate(counts)]) if n else []
    hide[rows, np.asarray(cols, dtype=int)] = True
    return hide[:, None, :]


def source_kind(source: KnownCamera | RandomCameras | PairedTracks) -> str:
    """``"known"``, ``"random"`` or ``"pairs"``: the key of ``source`` in :data:`NOISE_DEFAULTS`."""
    if isinstance(source, PairedTracks):
        return "pairs"
    if isinstance(source, KnownCamera):
        return "known"
    if isinstance(source, RandomCameras):
        return "random"
    raise TypeError(
        f"source: expected KnownCamera, RandomCameras or PairedTracks, got {type(source).__name__}"
    )


def normalize_2d(points: np.ndarray, root: int, scale: bool) -> np.ndarray:
    """Root-relative (and optionally scale-normalised) 2D poses.

    Parameters
    ----------
    points : np.ndarray
        ``(..., keypoints, 2)``; NaN where missing.
    root : int
        Root keypoint index; poses whose root is missing come back all NaN.
    scale : bool
        Also divide by the pose's size (root-mean-square distance of the finite keypoints from
        the root), which makes the input independent of the camera's distance and focal length.

    Returns
    -------
    np.ndarray
        Same shape as ``points``.
    """
    rel = points - points[..., root : root + 1, :]
    if scale:
        sq = np.nansum(rel**2, axis=(-1, -2))
        n = np.isfinite(rel).all(-1).sum(-1)
        with np.errstate(invalid="ignore", divide="ignore"):
            size = np.sqrt(sq / np.maximum(n - 1, 1))
        size[~(size > 0)] = np.nan
        rel = rel / size[..., None, None]
    return rel


def _bone_tree(n_keypoints: int, edges: np.ndarray, roots: Sequence[int]) -> list[tuple[int, int]]:
    """Edges as (parent, child) in breadth-first order, from the roots, covering every component."""
    neighbours: dict[int, list[int]] = {k: [] for k in range(n_keypoints)}
    for a, b in np.asarray(edges, dtype=np.int64).reshape(-1, 2):
        neighbours[int(a)].append(int(b))
        neighbours[int(b)].append(int(a))
    seen: set[int] = set()
    order: list[tuple[int, int]] = []
    for start in list(roots) + list(range(n_keypoints)):
        if start in seen:
            continue
        seen.add(start)
        queue = [start]
        while queue:
            node = queue.pop(0)
            for nxt in neighbours[node]:
                if nxt not in seen:
                    seen.add(nxt)
                    order.append((node, nxt))
                    queue.append(nxt)
    return order


class PoseSamples:
    """3D sequences (and optional paired 2D) that training windows are drawn from.

    Parameters
    ----------
    library : sequence of Poses
        3D poses; every individual of every file is one sequence. All share ``keypoints``.
    layout : RootLayout
        Roots and target sets.
    camera : KnownCamera, RandomCameras or PairedTracks
        How 2D inputs are made.
    window : int
        Frames per sample (1 for the MLP, the receptive field for the temporal model).
    """

    def __init__(
        self,
        library: Sequence[Poses],
        layout: RootLayout,
        camera: KnownCamera | RandomCameras | PairedTracks,
        window: int = 1,
    ) -> None:
        self.layout = layout
        self.camera = camera
        self.window = int(window)
        self.keypoints = list(library[0].keypoints)
        seqs3, seqs2, confs = [], [], []
        for i, lib in enumerate(library):
            if lib.n_space != 3:
                raise ValueError(f"{lib.name}: expected 3D poses for the library, got 2D")
            lib = lib.select_keypoints(self.keypoints)
            if isinstance(camera, PairedTracks):
                trk = camera.tracks[i].select_keypoints(self.keypoints)
                if trk.n_space != 2:
                    raise ValueError(f"{trk.name}: expected 2D tracks to pair with the library")
                if trk.coords.shape[:2] != lib.coords.shape[:2]:
                    raise ValueError(
                        f"{trk.name}: expected {lib.n_frames} frames x {lib.n_individuals} "
                        f"individuals to pair with {lib.name}, got {trk.coords.shape[:2]}"
                    )
            for ind in range(lib.n_individuals):
                seqs3.append(lib.coords[:, ind])
                if isinstance(camera, PairedTracks):
                    seqs2.append(trk.coords[:, ind])
                    conf = trk.confidence[:, ind].copy()
                    conf[~np.isfinite(conf)] = 1.0
                    confs.append(np.clip(conf, 0.0, 1.0))
        self.points3d = np.concatenate(seqs3).astype(np.float64)
        self.points2d = np.concatenate(seqs2).astype(np.float64) if seqs2 else None
        self.conf2d = np.concatenate(confs) if confs else None
        lengths = np.array([len(s) for s in seqs3])
        self.starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        self.lengths = lengths
        self.seq_of = np.repeat(np.arange(len(lengths)), lengths)
        self.seg_start = np.repeat(self.starts, lengths)
        self.seg_end = np.repeat(self.starts + lengths, lengths)
        self.bones = _bone_tree(len(self.keypoints), library[0].edges, layout.roots)
        root = layout.roots[0]
        usable = np.isfinite(self.points3d[:, root]).all(-1)
        if self.points2d is not None:
            usable &= np.isfinite(self.points2d[:, root]).all(-1)
        self.usable = usable
        self._heading_spread: float | None = None

    @property
    def heading_spread(self) -> float:
        """Circular spread (degrees) of the library's body headings about the world's z."""
        if self._heading_spread is None:
            root = self.layout.roots[0]
            self._heading_spread = heading_spread(self.points3d[self.usable], root)
        return self._heading_spread

    def resolve(self, augment: Augmentation) -> Augmentation:
        """``augment`` with every None field filled in.

        Noise and jitter by the source of 2D (:meth:`Augmentation.for_source`), the heading turn
        by the library (known camera: 180 when its headings spread more than
        :data:`HEADING_SPREAD_FREE` degrees, else 0).
        """
        augment = augment.for_source(self.camera)
        if augment.heading_deg is None:
            free = isinstance(self.camera, KnownCamera) and (
                self.heading_spread > HEADING_SPREAD_FREE
            )
            augment = replace(augment, heading_deg=180.0 if free else 0.0)
        return augment

    @property
    def scale_inputs(self) -> bool:
        """True when 2D inputs are scale-normalised (random cameras)."""
        return isinstance(self.camera, RandomCameras)

    def split(self, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
        """Training and validation frames: the last ``val_fraction`` of every sequence.

        After a split, windows never cross from the training part of a sequence into its
        validation part (or back).

        Returns
        -------
        tuple of np.ndarray
            Global frame indices ``(n_train,)`` and ``(n_val,)`` of usable frames.
        """
        train, val = [], []
        for start, length in zip(self.starts, self.lengths, strict=True):
            n_val = int(round(length * val_fraction)) if length > 1 else 0
            cut = start + length - n_val
            self.seg_start[start:cut], self.seg_end[start:cut] = start, cut
            self.seg_start[cut : start + length] = cut
            self.seg_end[cut : start + length] = start + length
            frames = np.arange(start, start + length)
            train.append(frames[frames < cut])
            val.append(frames[frames >= cut])
        train_idx, val_idx = np.concatenate(train), np.concatenate(val)
        return train_idx[self.usable[train_idx]], val_idx[self.usable[val_idx]]

    def window_indices(self, centers: np.ndarray, n_out: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Frames around ``centers``, clamped inside each sequence (or split segment).

        Returns
        -------
        tuple of np.ndarray
            Global frame indices ``(n, window + n_out - 1)`` and a mask ``(n, n_out)`` of the
            output frames ``centers + 0..n_out-1`` that lie inside the segment.
        """
        half = self.window // 2
        lo, hi = self.seg_start[centers], self.seg_end[centers]
        offs = np.arange(-half, self.window - half + n_out - 1)
        idx = np.clip(centers[:, None] + offs, lo[:, None], (hi - 1)[:, None])
        inside = centers[:, None] + np.arange(n_out) < hi[:, None]
        return idx, inside

    def draw(
        self,
        centers: np.ndarray,
        rng: np.random.Generator,
        augment: Augmentation | None = None,
        n_out: int = 1,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Make one set of samples.

        Parameters
        ----------
        centers : np.ndarray
            Global centre frame indices ``(n,)``.
        rng : np.random.Generator
            Randomness for cameras and augmentation.
        augment : Augmentation, optional
            Augmentations; none if omitted. Its None fields take the defaults of this
            source of 2D (:meth:`Augmentation.for_source`).
        n_out : int
            Output frames per sample (temporal training on chunks): the targets are frames
            ``centers + 0..n_out-1`` and the inputs span ``window + n_out - 1`` frames.

        Returns
        -------
        tuple of np.ndarray
            Normalised 2D ``(n, window + n_out - 1, keypoints, 2)`` (NaN where missing),
            confidence ``(n, window + n_out - 1, keypoints)`` (0 where missing) and root-relative
            offsets ``(n, n_out, keypoints - 1, 3)`` of the output frames (NaN where unknown).
        """
        augment = self.resolve(augment or Augmentation())
        idx, inside = self.window_indices(centers, n_out)
        half = self.window // 2
        root = self.layout.roots[0]
        pts3 = self.points3d[idx]  # (n, w, k, 3)
        if augment.bone_jitter > 0 and not isinstance(self.camera, PairedTracks) and self.bones:
            pts3 = self._jitter_bones(pts3, rng, augment.bone_jitter)
        if isinstance(self.camera, PairedTracks):
            uv = self.points2d[idx].copy()
            conf = self.conf2d[idx].copy()
            target3 = pts3[:, half : half + n_out]
        elif isinstance(self.camera, KnownCamera):
            if augment.heading_deg > 0:
                angles = rng.uniform(-augment.heading_deg, augment.heading_deg, len(pts3))
                pts3 = turn_about_up(pts3, pts3[:, half, root], angles)
            uv, cam3 = self.camera.project(
                pts3,
                rng,
                augment.camera_jitter_deg,
                augment.camera_jitter_distance,
                centers=pts3[:, half, root],
            )
            conf = np.ones(uv.shape[:-1])
            target3 = cam3[:, half : half + n_out]
        else:
            centre = pts3[:, half, root]
            uv, upright3 = self.camera.project(pts3, centre, rng, frame="upright")
            conf = np.ones(uv.shape[:-1])
            target3 = upright3[:, half : half + n_out]
        if augment.noise_px > 0:
            uv = uv + rng.standard_normal(uv.shape) * augment.noise_px
        x = normalize_2d(uv, root, self.scale_inputs)
        if augment.noise_2d > 0:
            size = np.sqrt(np.nanmean(np.nansum(x**2, -1), -1))  # (n, w)
            if self.scale_inputs:
                size = np.ones_like(size)
            x = x + rng.standard_normal(x.shape) * (augment.noise_2d * size)[..., None, None]
            x[..., root, :] = 0.0
        n, w, k = x.shape[:3]
        if augment.keypoint_dropout > 0 or (augment.frame_dropout > 0 and w > 1):
            chosen = rng.random(n) < augment.dropout_samples  # samples that get dropout
        if augment.keypoint_dropout > 0:
            drop = rng.random((n, w, k)) < augment.keypoint_dropout
            drop &= chosen[:, None, None]
            drop[..., root] = False
            x[drop] = np.nan
        if augment.frame_dropout > 0 and w > 1:
            drop = rng.random((n, w)) < augment.frame_dropout
            x[drop & chosen[:, None]] = np.nan
        if augment.subset_dropout > 0:
            hide = hidden_subsets(n, k, root, augment.subset_dropout, rng)
            x[np.broadcast_to(hide, (n, w, k))] = np.nan
        missing = ~np.isfinite(x).all(-1)
        # a frame without its root cannot be normalised: hide it entirely
        missing |= missing[..., root : root + 1]
        x[missing] = np.nan
        conf = np.where(missing, 0.0, conf)
        offsets = self.layout.to_offsets(target3)
        offsets[~inside] = np.nan
        return x, conf, offsets

    def _jitter_bones(self, pts: np.ndarray, rng: np.random.Generator, std: float) -> np.ndarray:
        n = pts.shape[0]
        factor = 1.0 + std * rng.standard_normal((n, len(self.bones)))
        out = pts.copy()
        for b, (parent, child) in enumerate(self.bones):
            bone = pts[:, :, child] - pts[:, :, parent]
            out[:, :, child] = out[:, :, parent] + bone * factor[:, b, None, None]
        return out
