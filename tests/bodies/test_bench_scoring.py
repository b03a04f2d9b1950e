"""The scoring of benchmarks/bench_bodymodel.py: similarity alignment, PA-MPJPE, sequence MPJPE."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from napari_liftpose.lifting.metrics import pa_mpjpe

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "bodymodel_scoring.py"
_spec = importlib.util.spec_from_file_location("bodymodel_scoring", _PATH)
scoring = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("bodymodel_scoring", scoring)
_spec.loader.exec_module(scoring)


@pytest.fixture(scope="module")
def mouse_3d(data_dir) -> np.ndarray:
    """The sleap-anipose session's triangulated mouse (120 frames x 15 keypoints, root Trunk = 6)."""
    from napari_liftpose.io import read_poses

    poses = read_poses(data_dir / "sleap_anipose_minimal_session" / "points3d.h5")
    return poses.coords[:, 0].astype(np.float64)


def _rotations(n: int, seed: int) -> np.ndarray:
    return Rotation.random(n, random_state=seed).as_matrix()


def test_similarity_fit_recovers_a_known_transform():
    rng = np.random.default_rng(0)
    source = rng.normal(size=(20, 3))
    rot = _rotations(1, 1)[0]
    target = 2.5 * source @ rot + np.array([1.0, -3.0, 7.0])
    fit = scoring.similarity_fit(source, target)
    np.testing.assert_allclose(fit.scale, 2.5, rtol=1e-12)
    np.testing.assert_allclose(fit.rotation, rot, atol=1e-12)
    np.testing.assert_allclose(fit.translation, [1.0, -3.0, 7.0], atol=1e-12)
    np.testing.assert_allclose(fit.apply(source), target, atol=1e-12)


def test_similarity_fit_never_mirrors():
    rng = np.random.default_rng(1)
    source = rng.normal(size=(30, 3))
    mirrored = source * np.array([1.0, -1.0, 1.0])  # left and right swapped
    fit = scoring.similarity_fit(source, mirrored)
    assert np.linalg.det(fit.rotation) == pytest.approx(1.0)
    assert np.linalg.norm(fit.apply(source) - mirrored, axis=-1).mean() > 0.1


def test_similarity_fit_refuses_what_it_cannot_align():
    with pytest.raises(ValueError, match="at least 3 points"):
        scoring.similarity_fit(np.zeros((2, 3)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="not all one point"):
        scoring.similarity_fit(np.ones((5, 3)), np.random.default_rng(0).normal(size=(5, 3)))
    with pytest.raises(ValueError, match="finite"):
        scoring.similarity_fit(np.full((4, 3), np.nan), np.zeros((4, 3)))
    with pytest.raises(ValueError, match="one shape"):
        scoring.similarity_fit(np.zeros((4, 3)), np.zeros((5, 3)))


def test_pa_mpjpe_is_zero_under_a_different_similarity_every_frame(mouse_3d):
    rots = _rotations(len(mouse_3d), 2)
    scales = np.linspace(0.01, 40.0, len(mouse_3d))  # mm -> m, and larger
    moved = scales[:, None, None] * np.einsum("fkj,fji->fki", mouse_3d, rots) + 5.0
    frames = scoring.pa_mpjpe_frames(moved, mouse_3d, root=6)
    assert frames.shape == (len(mouse_3d),)
    np.testing.assert_allclose(frames, 0.0, atol=1e-9)
    # ... but one alignment for the sequence cannot undo a rotation that changes every frame
    assert scoring.sequence_mpjpe(moved, mouse_3d, root=6) > 1.0


def test_sequence_mpjpe_is_zero_under_one_similarity_and_any_root_motion(mouse_3d):
    rot = _rotations(1, 3)[0]
    drift = np.random.default_rng(3).normal(0, 50.0, (len(mouse_3d), 1, 3))  # root moves freely
    moved = 0.1 * mouse_3d @ rot + drift
    assert scoring.sequence_mpjpe(moved, mouse_3d, root=6) == pytest.approx(0.0, abs=1e-9)
    assert scoring.sequence_mpjpe(moved, mouse_3d, root=[3, 5, 6]) == pytest.approx(0.0, abs=1e-9)


def test_sequence_errors_per_joint(mouse_3d):
    """One joint moved by a known amount in every frame: its error is that, the others' near 0."""
    pred = mouse_3d.copy()
    pred[:, 0] += np.array([0.0, 0.0, 0.5])  # the nose, 0.5 units off
    pred[7, 2] = np.nan
    errors = scoring.sequence_errors(pred, mouse_3d, root=6)
    assert errors.shape == mouse_3d.shape[:2]
    assert np.isnan(errors[:, 6]).all() and np.isnan(errors[7, 2])
    # the alignment moves a little to share one joint's offset: the nose keeps most of it
    assert 0.4 < np.nanmean(errors[:, 0]) <= 0.5
    others = np.delete(errors, [0, 6], axis=1)
    assert np.nanmax(others) < 0.1
    assert scoring.sequence_mpjpe(pred, mouse_3d, root=6) == pytest.approx(np.nanmean(errors))


def test_pa_mpjpe_agrees_with_the_package_metric(mouse_3d):
    """Same definition as lifting.metrics.pa_mpjpe on a noisy, rotated, scaled prediction."""
    rng = np.random.default_rng(4)
    pred = 3.0 * (mouse_3d + rng.normal(0, 2.0, mouse_3d.shape)) @ _rotations(1, 4)[0]
    pred[5, [0, 2]] = np.nan  # missing joints are left out by both
    got = scoring.score(pred, mouse_3d, root=6)
    assert got.pa_mpjpe == pytest.approx(pa_mpjpe(pred, mouse_3d, roots=6), rel=1e-9)
    assert got.n_frames == len(mouse_3d)
    assert got.n_joints == len(mouse_3d) * 14 - 2
    # noise of sd 2 per coordinate: about 2 * sqrt(3) * (1 - 4/14)^0.5 per joint after alignment
    assert 2.0 < got.pa_mpjpe < 3.5
    assert got.sequence_mpjpe > got.pa_mpjpe * 0.9


def test_a_known_error_survives_alignment():
    """Two frames, the prediction off by a rigid shift of half the keypoints: the value by hand."""
    square = np.array([[1.0, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0]])
    truth = np.stack([square, square])
    pred = truth.copy()
    pred[:, :, 2] = [0.1, 0.1, -0.1, -0.1]  # x-pair up, y-pair down: a saddle, no rotation fits
    # by symmetry no rotation or shift helps; the scale shrinks to 1 / 1.01 (least squares), and
    # every point is then off by sqrt((1 - s)^2 + (0.1 s)^2) = 0.1 / sqrt(1.01)
    expected = 0.1 / np.sqrt(1.01)
    frames = scoring.pa_mpjpe_frames(pred, truth, root=[0, 1, 2, 3])
    np.testing.assert_allclose(frames, expected, rtol=1e-12)
    assert scoring.sequence_mpjpe(pred, truth, root=[0, 1, 2, 3]) == pytest.approx(expected)


def test_missing_joints_and_frames():
    rng = np.random.default_rng(5)
    truth = rng.normal(size=(4, 6, 3))
    pred = truth.copy()
    pred[1, :4] = np.nan  # 2 valid joints: frame not scored
    pred[2] = np.nan
    frames = scoring.pa_mpjpe_frames(pred, truth, root=0)
    assert np.isnan(frames[1]) and np.isnan(frames[2])
    np.testing.assert_allclose(frames[[0, 3]], 0.0, atol=1e-12)
    got = scoring.score(pred, truth, root=0)
    assert (got.n_frames, got.n_joints) == (2, 10)
    empty = scoring.score(np.full_like(truth, np.nan), truth, root=0)
    assert np.isnan(empty.pa_mpjpe) and np.isnan(empty.sequence_mpjpe) and empty.n_frames == 0
    with pytest.raises(ValueError, match="one shape"):
        scoring.score(truth[:, :5], truth)


def test_a_constant_pose_scores_what_the_motion_is():
    """The trivial baseline: the mean pose of a sequence that only moves one joint."""
    rng = np.random.default_rng(6)
    base = rng.normal(size=(5, 3)) * 10
    truth = np.repeat(base[None], 50, axis=0)
    truth[:, 4, 2] += np.where(np.arange(50) % 2 == 0, 1.0, -1.0)  # one joint bobs +-1
    mean = np.repeat(truth.mean(0, keepdims=True), 50, axis=0)
    got = scoring.score(mean, truth, root=0)
    # one alignment for the sequence cannot do better than the identity here: joint 4 is 1 off
    assert got.sequence_mpjpe == pytest.approx(1.0 / 4, rel=1e-6)
    # a least-squares fit per frame spreads that joint's error over the others: the mean
    # Euclidean error grows (0.34 here), which is why the table gives both scores
    assert 0.25 < got.pa_mpjpe < 0.5


def test_motion_ignores_proportions_but_not_motion(mouse_3d):
    """Wrong proportions (a fixed offset per joint) cost nothing; a frozen pose costs the spread."""
    rng = np.random.default_rng(7)
    offsets = rng.normal(0, 5.0, (1, mouse_3d.shape[1], 3))
    offsets[:, 6] = 0.0  # the root stays the root
    wrong_build = 0.5 * (mouse_3d + offsets) @ _rotations(1, 7)[0]
    # the alignment is fitted with the wrong build, so it is slightly off: near 0, not 0
    wrong = scoring.sequence_mpjpe(wrong_build, mouse_3d, root=6)
    assert wrong > 4.0
    assert scoring.motion_mpjpe(wrong_build, mouse_3d, root=6) < 0.01 * wrong
    exact = 0.5 * mouse_3d @ _rotations(1, 8)[0] + 3.0
    assert scoring.motion_mpjpe(exact, mouse_3d, root=6) == pytest.approx(0.0, abs=1e-9)
    frozen = np.repeat(mouse_3d.mean(0, keepdims=True), len(mouse_3d), axis=0)
    rel = scoring.root_relative(mouse_3d, 6)
    spread = np.linalg.norm(rel - rel.mean(0), axis=-1)[:, np.arange(15) != 6].mean()
    assert scoring.motion_mpjpe(frozen, mouse_3d, root=6) == pytest.approx(spread, rel=0.05)
    # a joint missing in some frame is left out of this diagnostic, not of the scores
    holed = exact.copy()
    holed[3, 0] = np.nan
    assert scoring.motion_mpjpe(holed, mouse_3d, root=6) == pytest.approx(0.0, abs=1e-9)
    assert scoring.score(holed, mouse_3d, root=6).motion_mpjpe == pytest.approx(0.0, abs=1e-9)


def test_fraction_above():
    pts = np.zeros((5, 3, 3))
    pts[:, 0, 2] = [1, 1, 1, -1, np.nan]  # ear 1
    pts[:, 1, 2] = [1, -1, 2, 1, 1]  # ear 2
    pts[:, 2, 2] = 0.5  # tail base
    fraction, counted = scoring.fraction_above(pts, upper=[0, 1], lower=2)
    assert counted == 4
    assert fraction == pytest.approx(2 / 4)
    assert scoring.fraction_above(np.full((2, 3, 3), np.nan), [0, 1], 2) == (
        pytest.approx(np.nan, nan_ok=True),
        0,
    )
