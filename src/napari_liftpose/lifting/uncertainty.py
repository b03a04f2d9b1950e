"""Calibrated per-joint uncertainty: a radius that holds the true 3D point 80% of the time.

Method: split-conformal calibration per joint, optionally normalised by a cheap ensemble's
spread (``draws`` > 0; the default is ``draws = 0``: measured on the fly and the mouse, the
spread moved coverage by 0.01-0.03 for 2-5% larger radii, the same trade as a constant radius,
and cost 5-10x the lift time; see docs/uncertainty.md).

1. *Spread* (``draws`` > 0 only; else ``s = 0`` and ``floor_j = 1``). The lifter runs ``draws``
   more times on its own 2D input, each time with Gaussian
   noise of ``noise`` times the pose's 2D size (root-mean-square distance of its keypoints from
   the root) added to every visible non-root keypoint. The per-joint spread ``s`` is the
   root-mean-square distance of those outputs from their mean: how much the lifted joint moves
   when the detections move a little (large for joints the 2D does not pin down).
2. *Calibration* (:func:`calibrate`, once, on the validation split). For every joint ``j`` the
   score ``|error| / (s + floor_j)`` (``floor_j`` = the median spread of joint ``j``, so a
   joint with no spread still gets a radius) is collected over validation poses, and ``q_j`` is
   their conformal quantile at level ``ceil((n + 1) * coverage) / n``. The radius of a new point
   is ``q_j * (s + floor_j)``; if validation and new poses are alike (exchangeable) it holds the
   true point with probability at least ``coverage``.
3. *Hidden keypoints and estimated roots.* The same validation poses are lifted again with
   keypoints hidden (each non-root keypoint with probability 0.2) and with the root hidden in the
   output frames (re-estimated as :meth:`~napari_liftpose.lifting.inference.Lifter.lift` does);
   ``q_j`` is calibrated separately for joints hidden in their frame and for poses whose root was
   estimated, so those get the (larger) radii that cover them.

The radii are only as honest as the validation windows are like the 2D the lifter meets: they
must carry detector-like noise on *every* point, the root included (noise added after making
the 2D root-relative leaves the root exact, and the fly's test error at 1.5 px was then 1.17x
the calibration's, for a coverage of 0.65 instead of 0.77).

The calibration is a small JSON-able dict stored in the checkpoint metadata under
``"uncertainty"``; :class:`Calibration` reads and checks it back.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from napari_liftpose.lifting.inference import Lifter

__all__ = ["Calibration", "calibrate", "conformal_quantile", "coverage_of", "METHOD"]

#: Name of the method stored in the calibration (``"method"`` key).
METHOD = "conformal-input-noise-spread"
VERSION = 1
#: Probability that a non-root keypoint is hidden when the hidden-keypoint factor is calibrated.
HIDE_PROBABILITY = 0.2
_DEFAULT_DRAWS = 0
_DEFAULT_NOISE = 0.02


@dataclass
class Calibration:
    """A lifter's uncertainty calibration (what :func:`calibrate` returns, as an object).

    Attributes
    ----------
    coverage : float
        Target probability that the radius holds the true point.
    draws : int
        Extra noisy forward passes that measure the spread (0: a constant radius per joint).
    noise : float
        Standard deviation of the 2D perturbation, as a fraction of the pose's 2D size.
    floor, visible, hidden, rootless : np.ndarray
        ``(keypoints,)``: the spread floor, and the conformal factors of visible joints, joints
        hidden in their frame, and joints of poses whose root was estimated (0 for the first
        root, which is the origin of every lifted pose).
    """

    coverage: float
    draws: int
    noise: float
    floor: np.ndarray
    visible: np.ndarray
    hidden: np.ndarray
    rootless: np.ndarray

    def to_dict(self, extra: dict | None = None) -> dict:
        """JSON-able dict for the checkpoint metadata (``extra``: measurements to keep beside)."""
        out = {
            "version": VERSION,
            "method": METHOD,
            "coverage": float(self.coverage),
            "draws": int(self.draws),
            "noise": float(self.noise),
            **{
                name: [float(v) for v in getattr(self, name)]
                for name in ("floor", "visible", "hidden", "rootless")
            },
        }
        out.update(extra or {})
        return out

    @classmethod
    def from_dict(cls, value: object, n_keypoints: int) -> Calibration:
        """Check a stored calibration and build it.

        Raises
        ------
        ValueError
            ``"uncertainty: expected ..., got ..."`` for a malformed or foreign calibration.
        """
        if not isinstance(value, dict):
            raise ValueError(f"uncertainty: expected a dict, got {type(value).__name__}")
        if value.get("method") != METHOD or value.get("version") != VERSION:
            raise ValueError(
                f"uncertainty: expected method {METHOD!r} version {VERSION}, got "
                f"{value.get('method')!r:.60} version {value.get('version')!r:.20}"
            )
        coverage = _number(value, "coverage", 0.0, 1.0)
        draws = value.get("draws")
        if not isinstance(draws, int) or isinstance(draws, bool) or not 0 <= draws <= 64:
            raise ValueError(f"uncertainty: draws: expected an integer 0..64, got {draws!r:.40}")
        noise = _number(value, "noise", 0.0, 10.0)
        arrays = {}
        for name in ("floor", "visible", "hidden", "rootless"):
            array = _radii_factors(value.get(name), n_keypoints)
            if array is None:
                raise ValueError(f"uncertainty: {name}: expected {n_keypoints} finite numbers >= 0")
            arrays[name] = array
        factor = np.maximum.reduce([arrays["visible"], arrays["hidden"], arrays["rootless"]])
        with np.errstate(over="ignore"):
            largest = arrays["floor"] * factor
        if not np.isfinite(largest).all():
            raise ValueError("uncertainty: floor x factors: expected finite radii, got overflow")
        return cls(coverage, draws, noise, **arrays)

    def radii(
        self,
        spread: np.ndarray | None,
        hidden: np.ndarray,
        rootless: np.ndarray,
    ) -> np.ndarray:
        """Radii ``(..., keypoints)`` from the spread, hidden joints and estimated roots.

        Parameters
        ----------
        spread : np.ndarray or None
            ``(..., keypoints)`` ensemble spread (None when ``draws`` is 0).
        hidden : np.ndarray
            Boolean ``(..., keypoints)``: the joint was not visible in the 2D input.
        rootless : np.ndarray
            Boolean ``(...)``: the pose's root was estimated.
        """
        scale = self.floor if spread is None else spread + self.floor
        factor = np.where(hidden, self.hidden, self.visible)
        factor = np.where(rootless[..., None], np.maximum(factor, self.rootless), factor)
        return factor * scale


def _radii_factors(value: object, n_keypoints: int) -> np.ndarray | None:
    """``(n_keypoints,)`` finite numbers >= 0 from a JSON list, else None (never raises).

    Checked element by element before NumPy sees the list: a nested list, a string or an
    integer too large for a float (JSON allows ``1e400``-sized integers) is refused, not
    converted.
    """
    if not isinstance(value, list) or len(value) != n_keypoints:
        return None
    out = np.empty(n_keypoints)
    for i, v in enumerate(value):
        if isinstance(v, bool) or not isinstance(v, int | float):
            return None
        try:
            out[i] = float(v)
        except OverflowError:
            return None
    return out if (np.isfinite(out) & (out >= 0)).all() else None


def _number(value: dict, name: str, low: float, high: float) -> float:
    number = value.get(name)
    ok = isinstance(number, int | float) and not isinstance(number, bool)
    if not ok or not low <= number <= high or not math.isfinite(number):
        raise ValueError(
            f"uncertainty: {name}: expected a number in [{low}, {high}], got {number!r:.40}"
        )
    return float(number)


def conformal_quantile(scores: np.ndarray, coverage: float) -> float:
    """The split-conformal quantile: the ``ceil((n + 1) * coverage)``-th smallest score.

    NaN scores are ignored; with too few scores for the level (or none) the largest is used
    (NaN when there are none).
    """
    scores = np.sort(np.asarray(scores, dtype=np.float64)[np.isfinite(scores)])
    if len(scores) == 0:
        return float("nan")
    rank = math.ceil((len(scores) + 1) * coverage)
    return float(scores[min(rank, len(scores)) - 1])


def coverage_of(pred: np.ndarray, truth: np.ndarray, radius: np.ndarray) -> float:
    """Fraction of points whose true position lies within ``radius`` of the prediction.

    ``pred`` and ``truth`` are ``(..., keypoints, 3)`` relative to the same root, ``radius``
    ``(..., keypoints)``; points missing in any of them and zero radii (the root) are skipped.
    """
    err = np.linalg.norm(pred - truth, axis=-1)
    valid = np.isfinite(err) & np.isfinite(radius) & (radius > 0)
    return float((err[valid] <= radius[valid]).mean()) if valid.any() else float("nan")


def perturbed(coords: np.ndarray, root: int, noise: float, draws: int, seed: int = 0) -> np.ndarray:
    """``draws`` noisy copies of 2D poses, stacked on the individuals axis.

    Parameters
    ----------
    coords : np.ndarray
        ``(frames, individuals, keypoints, 2)``.
    root : int
        Root keypoint (never moved).
    noise : float
        Noise standard deviation as a fraction of each pose's 2D size.
    draws : int
        Copies.
    seed : int
        Seed: the same input gives the same radii.

    Returns
    -------
    np.ndarray
        ``(frames, individuals * draws, keypoints, 2)``: copy ``d`` of individual ``i`` at
        ``i * draws + d``.
    """
    rel = coords - coords[..., root : root + 1, :]
    with np.errstate(invalid="ignore"):
        size = np.sqrt(np.nanmean(np.nansum(rel**2, -1), -1))  # (frames, individuals)
    size = np.nan_to_num(size)
    rng = np.random.default_rng(seed)
    shape = (coords.shape[0], coords.shape[1], draws, *coords.shape[2:])
    jitter = rng.standard_normal(shape) * (noise * size)[:, :, None, None, None]
    jitter[..., root, :] = 0.0
    out = coords[:, :, None] + jitter
    return out.reshape(coords.shape[0], -1, *coords.shape[2:])


def ensemble_spread(
    run: Callable[[np.ndarray, np.ndarray], np.ndarray],
    coords: np.ndarray,
    conf: np.ndarray,
    root: int,
    noise: float,
    draws: int,
    seed: int = 0,
) -> np.ndarray:
    """Per-joint spread ``(frames, individuals, keypoints)`` of ``run`` over noisy inputs.

    ``run(coords, conf)`` lifts ``(frames, individuals, keypoints, 2)`` to ``(..., 3)``.
    """
    n_frames, n_ind, n_kp = coords.shape[:3]
    noisy = perturbed(coords, root, noise, draws, seed)
    conf_k = np.repeat(conf, draws, axis=1)
    out = run(noisy, conf_k).reshape(n_frames, n_ind, draws, n_kp, 3)
    dev = out - out.mean(axis=2, keepdims=True)
    return np.sqrt((dev**2).sum(-1).mean(axis=2))


def calibrate(
    lifter: Lifter,
    windows_2d: np.ndarray,
    confidence: np.ndarray,
    truth: np.ndarray,
    coverage: float = 0.8,
    draws: int | None = None,
    noise: float | None = None,
    seed: int = 0,
) -> dict:
    """Calibrate ``lifter``'s per-joint radii on validation windows; returns the metadata dict.

    Parameters
    ----------
    lifter : Lifter
        The model to calibrate (its network, normalisation and roots are used).
    windows_2d : np.ndarray
        ``(n, W, keypoints, 2)`` normalised root-relative 2D windows as training draws them
        (``PoseSamples.draw``): ``W = receptive_field + n_out - 1``; NaN where missing. They
        should look like the 2D the lifter will meet (detector noise included).
    confidence : np.ndarray
        ``(n, W, keypoints)``, 0 where missing.
    truth : np.ndarray
        The output frames ``half .. half + n_out - 1`` (``half = receptive_field // 2``) in
        :attr:`Lifter.network_frame`: root-relative points ``(n, n_out, keypoints, 3)`` or the
        offsets ``PoseSamples.draw`` returns ``(n, n_out, keypoints - 1, 3)``; NaN where unknown.
    coverage : float
        Probability that a radius holds the true point.
    draws : int, optional
        Noisy forward passes for the spread (default 0: one radius per joint, larger for hidden
        joints and estimated roots).
    noise : float, optional
        2D perturbation as a fraction of pose size (default: the training ``noise_2d`` when it
        is set and positive, else 0.02).
    seed : int
        Seed of the hidden keypoints and the perturbations.

    Returns
    -------
    dict
        JSON-able; store it as ``meta["uncertainty"]``. Besides the factors it records
        ``n_poses`` and the coverage measured on the validation windows themselves
        (``validation_coverage``; close to ``coverage`` by construction).

    Raises
    ------
    ValueError
        For arrays whose shapes do not fit together or with no valid joint.
    """
    if not 0.0 < coverage < 1.0:
        raise ValueError(f"coverage: expected a number in (0, 1), got {coverage!r}")
    x = np.asarray(windows_2d, dtype=np.float64)
    conf = np.asarray(confidence, dtype=np.float64)
    truth = np.asarray(truth, dtype=np.float64)
    n_kp = len(lifter.keypoints)
    if x.ndim != 4 or x.shape[2:] != (n_kp, 2) or conf.shape != x.shape[:3]:
        raise ValueError(
            f"windows_2d/confidence: expected (n, W, {n_kp}, 2) and (n, W, {n_kp}), got "
            f"{x.shape} and {conf.shape}"
        )
    if truth.ndim == 4 and truth.shape[2] == n_kp - 1:
        truth = lifter.layout.from_offsets(truth)
        truth[~np.isfinite(truth).all(-1).any(-1)] = np.nan  # keep NaN rows NaN
    half = lifter.receptive_field // 2
    n_out = x.shape[1] - lifter.receptive_field + 1
    if truth.shape != (len(x), n_out, n_kp, 3) or n_out < 1:
        raise ValueError(
            f"truth: expected ({len(x)}, {max(n_out, 1)}, {n_kp}, 3) for windows of "
            f"{x.shape[1]} frames, got {truth.shape}"
        )
    draws = _DEFAULT_DRAWS if draws is None else int(draws)
    if noise is None:
        trained = (lifter.meta.get("training") or {}).get("noise_2d")
        noise = float(trained) if isinstance(trained, int | float) and trained > 0 else None
        noise = _DEFAULT_NOISE if noise is None else noise
    root = lifter.layout.roots[0]
    out = slice(half, half + n_out)
    rng = np.random.default_rng(seed)

    def lifted(xs: np.ndarray, cs: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Predictions and spread of the output frames, windows as (frames, individuals)."""
        seq_x, seq_c = np.swapaxes(xs, 0, 1), np.swapaxes(cs, 0, 1)
        pred = np.swapaxes(lifter.network_3d(seq_x, seq_c), 0, 1)[:, out]
        spread = None
        if draws > 0:
            s = ensemble_spread(lifter.network_3d, seq_x, seq_c, root, noise, draws, seed)
            spread = np.swapaxes(s, 0, 1)[:, out]
        return pred, spread

    # 1. the windows as given
    pred, spread = lifted(x, conf)
    err = np.linalg.norm(pred - truth, axis=-1)  # (n, n_out, k)
    seen = np.isfinite(x[:, out]).all(-1)
    floor = _floor(spread, err, seen, n_kp)
    visible = _factors(err, spread, floor, seen, coverage)

    # 2. keypoints hidden in every frame of the window with probability HIDE_PROBABILITY
    hide = rng.random(x.shape[:3]) < HIDE_PROBABILITY
    hide[..., root] = False
    xh, ch = x.copy(), conf.copy()
    xh[hide], ch[hide] = np.nan, 0.0
    pred_h, spread_h = lifted(xh, ch)
    err_h = np.linalg.norm(pred_h - truth, axis=-1)
    hidden = np.maximum(_factors(err_h, spread_h, floor, hide[:, out] & seen, coverage), visible)

    # 3. the root hidden in the output frames (re-estimated as Lifter.lift does), with keypoints
    # hidden as in 2: a root is rarely lost alone (an occlusion hides its neighbours too)
    xr, cr = xh.copy(), ch.copy()
    xr[:, out, root], cr[:, out, root] = np.nan, 0.0
    seq = np.swapaxes(xr, 0, 1)
    seq, estimated = lifter.with_root(seq)
    xr = np.swapaxes(seq, 0, 1)
    cr[np.swapaxes(estimated, 0, 1), root] = 1.0
    pred_r, spread_r = lifted(xr, cr)
    err_r = np.linalg.norm(pred_r - truth, axis=-1)
    rootless = _factors(err_r, spread_r, floor, ~hide[:, out] & seen, coverage)
    rootless = np.maximum(rootless, visible)

    cal = Calibration(coverage, draws, noise, floor, visible, hidden, rootless)
    no_root = np.zeros(err.shape[:2], dtype=bool)
    radius = cal.radii(spread, ~seen, no_root)
    measured = {
        "n_poses": int(np.isfinite(err).any(-1).sum()),
        "validation_coverage": coverage_of(pred, truth, radius),
        "validation_mean_radius": float(np.nanmean(np.where(radius > 0, radius, np.nan))),
        "validation_mean_error": float(np.nanmean(np.where(radius > 0, err, np.nan))),
    }
    if not np.isfinite(visible).all():
        raise ValueError("truth: expected finite points for every keypoint in some window")
    return cal.to_dict(measured)


def _floor(spread: np.ndarray | None, err: np.ndarray, seen: np.ndarray, n_kp: int) -> np.ndarray:
    """``(keypoints,)`` median spread per joint (1 without a spread: the radius is then ``q_j``)."""
    if spread is None:
        return np.ones(n_kp)
    ok = seen & np.isfinite(err) & np.isfinite(spread)
    floor = np.array(
        [np.median(spread[..., j][ok[..., j]]) if ok[..., j].any() else 0.0 for j in range(n_kp)]
    )
    positive = floor[floor > 0]
    # a joint that never moves (the root) gets the smallest positive floor of the others
    return np.where(floor > 0, floor, positive.min() if len(positive) else 1.0)


def _factors(
    err: np.ndarray, spread: np.ndarray | None, floor: np.ndarray, use: np.ndarray, coverage: float
) -> np.ndarray:
    """Per joint, the conformal quantile of ``err / (spread + floor)`` over the ``use`` points."""
    scale = floor if spread is None else spread + floor
    score = err / scale
    out = np.zeros(len(floor))
    for j in range(len(floor)):
        picked = score[..., j][use[..., j] & np.isfinite(score[..., j])]
        q = conformal_quantile(picked, coverage)
        out[j] = 0.0 if not np.isfinite(q) else q
    return out
