"""A per-frame "this pose looks wrong" score, from what the engine knows about a lift.

Each (frame, individual) gets features that a wrong pose tends to show; each feature is put on
one robust scale over the file (how many robust standard deviations, median / MAD, a frame sits
above the file's typical value). The frame's evidence ``z`` is the root of the sum of the
squared positive deviations, the feature deviating most is the *reason*, and the score is
``z**2 / (z**2 + 25)`` (0.5 at ``z = 5``, which about 5 % of clean frames reach, since the
deviations of several features add up; 0.9 at 15). Features (see
:data:`FEATURES`):

- ``confidence``: the largest drop of a keypoint's 2D confidence below its median in the file
  (a missing keypoint counts as 0; one that is missing in most frames is no news);
- ``jump_2d`` / ``jump_3d``: a keypoint far from where it is in *both* neighbouring frames
  (relative to pose size and to that keypoint's own typical motion in the file);
- ``left_right``: the pose with its left and right keypoints exchanged fits the neighbouring
  frames better than the pose itself (names such as ``LF_Coxa``, ``Ear_L``, ``Shoulder_left``);
- ``reprojection``: the lifted 3D projected back does not match the 2D (a known camera: its own
  pinhole with a fitted depth; otherwise the best affine camera of each frame);
- ``bones``: lifted bone lengths (relative to pose size) against the training library's
  distribution (:func:`library_bone_stats`, stored in the model as ``bone_stats``), or against
  the file's own when the model has none;
- ``uncertainty``: the lifted pose's mean uncertainty radius, when the lift carries one;
- ``keypoint``: one keypoint that both jumps in 2D and misses the reprojection (a moved
  detection shows in both).

Pure numpy: no napari, no torch.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from napari_liftpose.poses import Poses

__all__ = [
    "FEATURES",
    "SuspicionReport",
    "check_bone_stats",
    "frame_suspicion",
    "left_right_pairs",
    "library_bone_stats",
    "pose_size",
    "score_from_evidence",
    "suspicion_report",
]

#: Feature names, in the order of :attr:`SuspicionReport.features`.
FEATURES = (
    "confidence",
    "jump_2d",
    "jump_3d",
    "left_right",
    "reprojection",
    "bones",
    "keypoint",
    "uncertainty",
)

_MAD = 1.4826  # MAD -> standard deviation of a normal distribution
_HALF = 5.0  # evidence giving a score of 0.5 (clean frames: median z about 1, 95th percentile 5)


@dataclass
class SuspicionReport:
    """Scores of a lift and why.

    Attributes
    ----------
    scores : np.ndarray
        ``(frames, individuals)`` in [0, 1], higher = more suspicious; NaN where nothing was
        lifted.
    reasons : np.ndarray
        ``(frames, individuals)`` of str: the feature (one of :data:`FEATURES`) that drove each
        score; ``""`` where the score is NaN.
    features : dict
        ``name -> (frames, individuals)`` evidence of every feature that could be computed
        (robust deviations above the file's typical value; NaN where unknown).
    """

    scores: np.ndarray
    reasons: np.ndarray
    features: dict[str, np.ndarray]


# -- small helpers -----------------------------------------------------------------------------
def pose_size(points: np.ndarray) -> np.ndarray:
    """Robust size of each pose: median distance of its keypoints from their median point.

    Parameters
    ----------
    points : np.ndarray
        ``(..., keypoints, 2 or 3)``; NaN where missing.

    Returns
    -------
    np.ndarray
        ``(...)``; NaN for poses with fewer than two finite keypoints. One moved or swapped
        keypoint barely changes it.
    """
    points = np.asarray(points, dtype=np.float64)
    seen = np.isfinite(points).all(-1)
    pts = np.where(seen[..., None], points, np.nan)
    with np.errstate(invalid="ignore"), _quiet():
        centre = np.nanmedian(pts, axis=-2, keepdims=True)
        size = np.nanmedian(np.linalg.norm(pts - centre, axis=-1), axis=-1)
    size = np.where((seen.sum(-1) >= 2) & (size > 0), size, np.nan)
    return size


class _quiet:
    """Silence numpy's all-NaN-slice warnings (NaN is the documented answer there)."""

    def __enter__(self):
        import warnings

        self._cm = warnings.catch_warnings()
        self._cm.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)
        return self

    def __exit__(self, *exc):
        return self._cm.__exit__(*exc)


def _robust_z(values: np.ndarray, axis=None, floor: float = 0.0) -> np.ndarray:
    """``(values - median) / spread`` over ``axis``; spread = 1.4826 MAD, at least ``floor``.

    The spread is also at least 5% of the median's magnitude and 1e-9, so a feature that is
    constant over the file does not make every tiny change look huge.
    """
    values = np.asarray(values, dtype=np.float64)
    with _quiet():
        med = np.nanmedian(values, axis=axis, keepdims=True)
        mad = _MAD * np.nanmedian(np.abs(values - med), axis=axis, keepdims=True)
    spread = np.maximum(np.maximum(mad, floor), np.maximum(0.05 * np.abs(med), 1e-9))
    return (values - med) / np.where(np.isfinite(spread), spread, 1.0)


def _nanmax(values: np.ndarray, axis: int) -> np.ndarray:
    with _quiet():
        return np.nanmax(values, axis=axis)


def _nearest_neighbour_distance(points: np.ndarray, other: np.ndarray | None = None) -> np.ndarray:
    """Per keypoint, distance of ``other`` (default ``points``) at frame t to ``points`` at t±1.

    ``points``, ``other``: ``(frames, individuals, keypoints, d)``. Returns
    ``(frames, individuals, keypoints)``: the smaller of the distances to the previous and the
    next frame (one side at the ends; NaN for a single frame). A keypoint far from both
    neighbours is an isolated jump; a real fast movement is near at least one of them.
    """
    other = points if other is None else other
    n = len(points)
    prev = np.full(points.shape[:3], np.nan)
    nxt = np.full(points.shape[:3], np.nan)
    if n >= 2:
        prev[1:] = np.linalg.norm(other[1:] - points[:-1], axis=-1)
        nxt[:-1] = np.linalg.norm(other[:-1] - points[1:], axis=-1)
    with _quiet():
        return np.fmin(prev, nxt)


# -- left / right ------------------------------------------------------------------------------
_SIDE_WORDS = (("left", "right"), ("Left", "Right"), ("LEFT", "RIGHT"))


def _mirror_name(name: str) -> set[str]:
    """Candidate names of the other side's keypoint (``LF_Coxa`` -> ``RF_Coxa``...)."""
    out = set()
    for a, b in _SIDE_WORDS:
        if a in name:
            out.add(name.replace(a, b))
        if b in name:
            out.add(name.replace(b, a))
    parts = re.split(r"([_\-\s.:/]+)", name)
    swap = {"L": "R", "R": "L", "l": "r", "r": "l"}
    for i, part in enumerate(parts):
        if part in swap:  # a token of its own: Ear_L, l_wrist
            out.add("".join(parts[:i] + [swap[part]] + parts[i + 1 :]))
        elif len(part) >= 2 and part[0] in "LR" and (part[1].isupper() or part[1].isdigit()):
            out.add("".join(parts[:i] + [swap[part[0]] + part[1:]] + parts[i + 1 :]))  # LF, RH1
        elif len(part) >= 2 and part[-1] in "LR" and part[-2].islower():
            out.add("".join(parts[:i] + [part[:-1] + swap[part[-1]]] + parts[i + 1 :]))  # EarL
    out.discard(name)
    return out


def left_right_pairs(keypoints: Sequence[str]) -> list[tuple[int, int]]:
    """Pairs of keypoint indices that are the same body part on the left and right side.

    Recognised: ``L``/``R`` (or ``l``/``r``) as a name part (``Ear_L``, ``l_wrist``), as the first
    letter of an upper-case prefix (``LF_Coxa``, ``RH_Claw``) or the last of a part
    (``EarL``), and the words left/right in any common case (``Shoulder_left``, ``LeftEar``).

    Returns
    -------
    list of tuple of int
        ``(i, j)`` with ``i < j``, each keypoint in at most one pair.
    """
    index = {name: i for i, name in enumerate(keypoints)}
    pairs, used = [], set()
    for i, name in enumerate(keypoints):
        if i in used:
            continue
        for other in sorted(_mirror_name(name)):
            j = index.get(other)
            if j is not None and j != i and j not in used and name in _mirror_name(other):
                pairs.append((min(i, j), max(i, j)))
                used.update((i, j))
                break
    return sorted(pairs)


def _swap_evidence(image: np.ndarray, pairs: list[tuple[int, int]]) -> np.ndarray:
    """``(frames, individuals)``: how much better the left/right-swapped pose fits its neighbours.

    For each neighbouring frame (t-1, t+1): log of (distance of the pose's paired keypoints to
    that frame) / (the same with left and right exchanged); the smaller of the two, so both
    neighbours must prefer the swap (a clean frame next to a swapped one does not).
    """
    swap = np.arange(image.shape[2])
    for i, j in pairs:
        swap[i], swap[j] = j, i
    idx = sorted({k for p in pairs for k in p})
    flipped = image[:, :, swap]

    def mean_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        with _quiet():
            return np.nanmean(np.linalg.norm(a[..., idx, :] - b[..., idx, :], axis=-1), -1)

    ratio = np.full((2,) + image.shape[:2], np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio[0, 1:] = np.log(
            (mean_distance(image[1:], image[:-1]) + 1e-9)
            / (mean_distance(flipped[1:], image[:-1]) + 1e-9)
        )
        ratio[1, :-1] = np.log(
            (mean_distance(image[:-1], image[1:]) + 1e-9)
            / (mean_distance(flipped[:-1], image[1:]) + 1e-9)
        )
    return np.fmin(ratio[0], ratio[1])


# -- bone lengths ------------------------------------------------------------------------------
def _log_bone_ratios(points: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """``(..., bones)``: log of each bone's length over the pose's size."""
    lengths = np.linalg.norm(points[..., edges[:, 0], :] - points[..., edges[:, 1], :], axis=-1)
    size = pose_size(points)[..., None]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.log(lengths / size)
    return np.where(np.isfinite(ratio), ratio, np.nan)


def library_bone_stats(libraries: Sequence[Poses], edges: np.ndarray | Sequence) -> dict:
    """The distribution of every bone's length relative to pose size in a 3D library.

    Stored in a lifter's metadata as ``bone_stats`` at training; :func:`suspicion_report`
    compares lifted bones with it. Relative lengths hold whatever the output's scale (random-
    camera lifters give poses of the library's size, known cameras the true size).

    Parameters
    ----------
    libraries : sequence of Poses
        3D poses sharing keypoint names (each is matched to the first one's order).
    edges : array-like of int
        ``(bones, 2)`` keypoint index pairs in the first library's keypoint order.

    Returns
    -------
    dict
        JSON-able: ``keypoints`` (names), ``bones`` (``[[name, name], ...]``), ``median`` and
        ``spread`` (1.4826 MAD, at least 0.01) of ``log(length / size)`` per bone, ``size``
        (how size is measured) and ``n_poses``. Bones never seen get ``None``.

    Raises
    ------
    ValueError
        For no library, 2D poses, or an edge outside the keypoints.
    """
    if not libraries:
        raise ValueError("library_bone_stats: expected at least one 3D library, got none")
    names = list(libraries[0].keypoints)
    edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    if len(edges) and (edges.min() < 0 or edges.max() >= len(names)):
        raise ValueError(f"edges: expected indices in 0..{len(names) - 1}, got {edges.tolist()}")
    ratios = []
    for lib in libraries:
        if lib.n_space != 3:
            raise ValueError(f"{lib.name}: expected a 3D library, got 2D poses")
        pts = lib.select_keypoints(names).coords.reshape(-1, len(names), 3)
        ratios.append(_log_bone_ratios(pts, edges))
    ratios = np.concatenate(ratios) if ratios else np.zeros((0, len(edges)))
    median, spread = [], []
    with _quiet():
        for col in ratios.T:
            col = col[np.isfinite(col)]
            if len(col) < 2:
                median.append(None)
                spread.append(None)
                continue
            med = float(np.median(col))
            median.append(med)
            spread.append(max(float(_MAD * np.median(np.abs(col - med))), 0.01))
    return {
        "keypoints": names,
        "bones": [[names[a], names[b]] for a, b in edges],
        "median": median,
        "spread": spread,
        "size": "median distance of the keypoints from their median point",
        "n_poses": int(len(ratios)),
    }


def check_bone_stats(value: object, keypoints: Sequence[str]) -> dict | None:
    """Check a model's stored ``bone_stats`` (a stranger's file may hold anything there).

    Parameters
    ----------
    value : object
        The decoded ``bone_stats`` metadata: None (no bones), or a dict as written by
        :func:`library_bone_stats` with ``bones``, ``median`` and ``spread`` of one length each.
    keypoints : sequence of str
        The model's keypoint names: every bone must join two different ones of them.

    Returns
    -------
    dict or None
        ``value`` itself (None for None, an empty dict or no bones).

    Raises
    ------
    ValueError
        ``"bone_stats: <field>: expected X, got Y"`` for the first malformed field: bones that
        are not pairs of the model's keypoint names, more bones than ordered keypoint pairs
        (``keypoints ** 2``), medians that
        are not finite numbers, spreads that are not finite numbers > 0 (None marks a bone never
        seen, in both).
    """
    if value is None or value == {}:
        return None
    if not isinstance(value, dict):
        raise ValueError(f"bone_stats: expected an object, got {type(value).__name__}")
    names = set(keypoints)
    bones = value.get("bones")
    limit = len(names) ** 2  # every ordered pair: a library may repeat or loop an edge
    if not isinstance(bones, list) or len(bones) > limit:
        got = f"{len(bones)} bones" if isinstance(bones, list) else type(bones).__name__
        raise ValueError(f"bone_stats: bones: expected a list of 0..{limit} name pairs, got {got}")
    for bone in bones:
        ok = (
            isinstance(bone, list)
            and len(bone) == 2
            and all(isinstance(n, str) and n in names for n in bone)
        )
        if not ok:
            raise ValueError(
                f"bone_stats: bones: expected pairs of the model's keypoint names, "
                f"got {bone!r:.100}"
            )
    for field, low in (("median", None), ("spread", 0.0)):
        numbers = value.get(field)
        if not isinstance(numbers, list) or len(numbers) != len(bones):
            got = f"{len(numbers)} values" if isinstance(numbers, list) else repr(numbers)[:60]
            raise ValueError(
                f"bone_stats: {field}: expected {len(bones)} values (one per bone), got {got}"
            )
        for v in numbers:
            ok = v is None or (
                isinstance(v, int | float)
                and not isinstance(v, bool)
                and _finite(v)
                and (low is None or v > low)
            )
            if not ok:
                want = "finite numbers > 0" if low is not None else "finite numbers"
                raise ValueError(f"bone_stats: {field}: expected {want} or null, got {v!r:.60}")
    return value if bones else None


def _finite(value: float) -> bool:
    """``math.isfinite`` that also says False for an int too large for a float."""
    try:
        return bool(np.isfinite(float(value)))
    except OverflowError:
        return False


def _bone_evidence(lifted: Poses, stats: dict | None) -> np.ndarray | None:
    """``(frames, individuals)``: the largest robust deviation of a bone's relative length."""
    names = list(lifted.keypoints)
    stats = check_bone_stats(stats, names)
    if stats:
        bones, med, spread = [], [], []
        for (a, b), m, s in zip(stats["bones"], stats["median"], stats["spread"], strict=True):
            if m is not None and s is not None:
                bones.append((names.index(a), names.index(b)))
                med.append(m)
                spread.append(s)
        if not bones:
            return None
        ratio = _log_bone_ratios(lifted.coords, np.asarray(bones))
        # lifted poses are smoother than the library: both its spread and the file's count
        z_lib = np.abs(ratio - np.asarray(med)) / np.asarray(spread)
        z_own = np.abs(_robust_z(ratio, axis=(0, 1), floor=0.01))
        return _nanmax(np.fmin(z_lib, z_own), axis=-1)
    edges = np.asarray(lifted.edges).reshape(-1, 2)
    if not len(edges):
        return None
    ratio = _log_bone_ratios(lifted.coords, edges)
    return _nanmax(np.abs(_robust_z(ratio, axis=(0, 1), floor=0.01)), axis=-1)


# -- reprojection ------------------------------------------------------------------------------
def _affine_residual(points: np.ndarray, image: np.ndarray) -> np.ndarray:
    """Per keypoint, pixels between ``image`` and the best affine projection of ``points``.

    ``points`` ``(n, k, 3)``, ``image`` ``(n, k, 2)``; fitted per pose on the keypoints finite in
    both (NaN residual elsewhere and for poses with fewer than 5 of them).
    """
    ok = np.isfinite(points).all(-1) & np.isfinite(image).all(-1)
    design = np.concatenate([np.nan_to_num(points), np.ones(points.shape[:2] + (1,))], -1)
    design = design * ok[..., None]
    target = np.nan_to_num(image) * ok[..., None]
    gram = np.einsum("nki,nkj->nij", design, design) + 1e-9 * np.eye(4)
    rhs = np.einsum("nki,nkj->nij", design, target)
    coef = np.linalg.solve(gram, rhs)
    full = np.concatenate([points, np.ones(points.shape[:2] + (1,))], -1)
    resid = np.linalg.norm(np.einsum("nki,nij->nkj", full, coef) - image, axis=-1)
    resid[~ok | (ok.sum(1, keepdims=True) < 5)] = np.nan
    return resid


def _pinhole_residual(points_cam: np.ndarray, image: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Per keypoint, pixels between ``image`` and a known pinhole's projection of the 3D.

    ``points_cam``: root-relative 3D in the camera's axes ``(n, k, 3)``; the unknown position of
    the pose (a translation, 3 numbers per pose) is solved linearly from the 2D, then projected
    with the intrinsics ``matrix`` (distortion ignored).
    """
    fx, fy, cx, cy = matrix[0, 0], matrix[1, 1], matrix[0, 2], matrix[1, 2]
    ok = np.isfinite(points_cam).all(-1) & np.isfinite(image).all(-1)
    x, y, z = np.moveaxis(np.nan_to_num(points_cam), -1, 0)
    u = (np.nan_to_num(image[..., 0]) - cx) / fx
    v = (np.nan_to_num(image[..., 1]) - cy) / fy
    w = ok.astype(np.float64)
    zero = np.zeros_like(u)
    # rows: Tx - u Tz = u z - x ;  Ty - v Tz = v z - y
    a = np.stack(
        [np.stack([w, zero, -u * w], -1), np.stack([zero, w, -v * w], -1)], axis=1
    )  # (n, 2, k, 3)
    b = np.stack([(u * z - x) * w, (v * z - y) * w], axis=1)
    a = a.reshape(len(u), -1, 3)
    b = b.reshape(len(u), -1)
    gram = np.einsum("nri,nrj->nij", a, a) + 1e-12 * np.eye(3)
    shift = np.linalg.solve(gram, np.einsum("nri,nr->ni", a, b)[..., None])[..., 0]
    moved = np.nan_to_num(points_cam) + shift[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        proj = np.stack(
            [fx * moved[..., 0] / moved[..., 2] + cx, fy * moved[..., 1] / moved[..., 2] + cy], -1
        )
    resid = np.linalg.norm(proj - image, axis=-1)
    resid[~ok | (ok.sum(1, keepdims=True) < 3) | ~(moved[..., 2] > 0)] = np.nan
    return resid


def _reprojection(lifter, image: np.ndarray, lifted: Poses) -> np.ndarray:
    """``(frames, individuals, keypoints)`` reprojection residual in pixels."""
    shape = image.shape[:3]
    pts = lifted.coords.reshape(-1, shape[2], 3)
    img = image.reshape(-1, shape[2], 2)
    camera = getattr(lifter, "camera", None)
    if camera is not None and lifted.frame in ("world", "camera"):
        if lifted.frame == "world":
            pts = pts @ camera.rotation_matrix.T  # root-relative: rotation only
        resid = _pinhole_residual(pts, img, camera.matrix)
    else:
        resid = _affine_residual(pts, img)
    return resid.reshape(shape)


# -- the report --------------------------------------------------------------------------------
def _per_keypoint(values: np.ndarray, floor: float = 0.0) -> np.ndarray:
    """``(frames, individuals, keypoints)`` -> the largest per-keypoint robust deviation."""
    return _nanmax(_robust_z(values, axis=(0, 1), floor=floor), axis=-1)


def _features(lifter, poses_2d: Poses, lifted: Poses) -> dict[str, np.ndarray]:
    """Raw evidence ``(frames, individuals)`` of each feature (before the file's scaling)."""
    image = poses_2d.coords
    seen = np.isfinite(image).all(-1)
    size_2d = pose_size(image)[..., None]
    size_3d = pose_size(lifted.coords)[..., None]
    conf = np.clip(np.nan_to_num(poses_2d.confidence, nan=1.0), 0.0, 1.0)
    conf = np.where(seen, conf, 0.0)
    out: dict[str, np.ndarray] = {"confidence": _confidence_drop(conf)}
    # jumps are in pose sizes; one of 1 % of the pose is no news, however still the file is
    jump = _robust_z(_nearest_neighbour_distance(image) / size_2d, axis=(0, 1), floor=_JUMP_FLOOR)
    out["jump_2d"] = _nanmax(jump, -1)
    # lifted poses are root-relative already: their jumps are the shape's, not the animal's
    out["jump_3d"] = _per_keypoint(
        _nearest_neighbour_distance(lifted.coords) / size_3d, floor=_JUMP_FLOOR
    )
    pairs = left_right_pairs(lifted.keypoints)
    if pairs and len(image) >= 2:
        out["left_right"] = _swap_evidence(image, pairs)
    reproj = _robust_z(_reprojection(lifter, image, lifted) / size_2d, axis=(0, 1))
    out["reprojection"] = _nanmax(reproj, -1)
    # one keypoint that both jumps and misses the reprojection: a moved detection
    both = np.sqrt(np.maximum(jump, 0) ** 2 + np.maximum(reproj, 0) ** 2)
    out["keypoint"] = _nanmax(both, -1)
    meta = getattr(lifter, "meta", None) or {}
    bones = _bone_evidence(lifted, meta.get("bone_stats"))
    if bones is not None:
        out["bones"] = bones
    radius = getattr(lifted, "uncertainty", None)
    if radius is not None:
        with _quiet():
            out["uncertainty"] = np.log(np.nanmean(np.asarray(radius) / size_3d, axis=-1))
    return out


def _confidence_drop(conf: np.ndarray) -> np.ndarray:
    """``(frames, individuals)``: the largest drop of a keypoint's confidence below its usual.

    Per keypoint, ``-log`` of its confidence (0, or missing, counts as 0.01) less that
    keypoint's median over the file. A keypoint a camera never sees (mouse back camera: the
    tail tip) is then no evidence in every frame, while a usually sure keypoint reported with
    no confidence is (the lowest confidence of the pose alone was 0 in every frame of such a
    camera: the suspicion AUC of the mouse back camera was 0.88, its zeroed keypoints 0.60).
    """
    surprise = -np.log(np.maximum(conf, 0.01))
    with _quiet():
        usual = np.nanmedian(surprise, axis=(0, 1))
    return np.max(surprise - usual, axis=-1)


#: The smallest spread of each feature over a file. Features already in robust deviations get 1:
#: in a file where they barely vary (a still animal, a well-fitted model) a fraction of one
#: deviation must not become a large score.
_FLOORS = {
    "confidence": 0.5,
    "left_right": 0.1,
    "jump_2d": 1.0,
    "jump_3d": 1.0,
    "reprojection": 1.0,
    "keypoint": 1.0,
    "bones": 1.0,
    "uncertainty": 0.1,
}
#: The smallest spread of a keypoint's frame-to-frame jump, in pose sizes: without it a keypoint
#: the lifter keeps nearly still (a better-trained mouse model: spread ~1e-6) turns float noise
#: into deviations of thousands.
_JUMP_FLOOR = 0.01


def score_from_evidence(evidence: np.ndarray) -> np.ndarray:
    """Evidence ``z`` (robust deviations) -> score ``z**2 / (z**2 + 25)`` in [0, 1) (0 for z <= 0)."""
    z = np.maximum(np.asarray(evidence, dtype=np.float64), 0.0)
    return z**2 / (z**2 + _HALF**2)


def suspicion_report(lifter, poses_2d: Poses, lifted: Poses) -> SuspicionReport:
    """Score every lifted pose: how wrong it looks, and which feature says so.

    Parameters
    ----------
    lifter : Lifter
        The lifter that made ``lifted`` (its ``keypoints``, ``camera``, ``meta["bone_stats"]``).
    poses_2d : Poses
        The 2D tracks that were lifted (extra keypoints are ignored).
    lifted : Poses
        ``lifter.lift(poses_2d)``; its ``uncertainty`` is used when present.

    Returns
    -------
    SuspicionReport
        Scores ``(frames, individuals)`` in [0, 1] (NaN where nothing was lifted) and reasons.

    Raises
    ------
    ValueError
        If ``poses_2d`` lacks the lifter's keypoints or the shapes do not match.
    """
    poses_2d = lifter.match(poses_2d)
    if lifted.n_space != 3 or lifted.coords.shape[:3] != poses_2d.coords.shape[:3]:
        raise ValueError(
            f"suspicion: expected a lift of {poses_2d.name} with shape "
            f"{poses_2d.coords.shape[:3]} + (3,), got {lifted.coords.shape}"
        )
    if list(lifted.keypoints) != list(lifter.keypoints):
        lifted = lifted.select_keypoints(lifter.keypoints)
    raw = _features(lifter, poses_2d, lifted)
    features = {}
    for name in FEATURES:
        if name in raw:
            features[name] = _robust_z(raw[name], floor=_FLOORS.get(name, 0.0))
    lifted_ok = np.isfinite(lifted.coords).all(-1).any(-1)
    stack = np.stack([np.nan_to_num(features[n], nan=0.0) for n in features], axis=-1)
    best = np.argmax(stack, axis=-1)
    # several features a little off add up: the root of the sum of squared positive deviations
    # (measured against the largest alone and the plain sum; see docs/flags.md)
    evidence = np.sqrt((np.maximum(stack, 0.0) ** 2).sum(-1))
    scores = np.where(lifted_ok, score_from_evidence(evidence), np.nan)
    names = np.array(list(features), dtype=object)
    reasons = np.where(lifted_ok, names[best], "").astype(str)
    return SuspicionReport(scores=scores, reasons=reasons, features=features)


def frame_suspicion(lifter, poses_2d: Poses, lifted: Poses) -> np.ndarray:
    """Scores ``(frames, individuals)`` in [0, 1] of :func:`suspicion_report` (NaN: not lifted)."""
    return suspicion_report(lifter, poses_2d, lifted).scores
