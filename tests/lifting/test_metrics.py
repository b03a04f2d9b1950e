import warnings

import numpy as np
import pytest

from napari_liftpose import Poses
from napari_liftpose.lifting import (
    bone_length_std,
    evaluate,
    mpjpe,
    mpjve,
    n_mpjpe,
    pa_mpjpe,
    per_joint_mpjpe,
    root_relative,
)
from napari_liftpose.lifting.cameras import look_at_rotation


@pytest.fixture
def poses():
    rng = np.random.default_rng(0)
    return rng.normal(size=(20, 8, 3))


def test_identical_is_zero(poses):
    assert mpjpe(poses, poses) == 0
    assert pa_mpjpe(poses, poses) == pytest.approx(0, abs=1e-12)
    assert mpjve(poses, poses) == 0


def test_mpjpe_is_root_relative_euclidean(poses):
    shifted = poses + np.array([5.0, -2.0, 1.0])  # a translation changes nothing
    assert mpjpe(shifted, poses) == pytest.approx(0, abs=1e-12)
    moved = poses.copy()
    moved[:, 3] += [3.0, 4.0, 0.0]  # one joint off by 5 of 7 non-root joints
    assert mpjpe(moved, poses) == pytest.approx(5 / 7)
    pj = per_joint_mpjpe(moved, poses)
    assert np.isnan(pj[0]) and pj[3] == pytest.approx(5) and np.nansum(pj) == pytest.approx(5)


def test_mpjpe_ignores_nan_joints(poses):
    moved = poses.copy()
    moved[:, 3] += [3.0, 4.0, 0.0]
    moved[:, 5] = np.nan
    truth = poses.copy()
    truth[:, 6] = np.nan
    assert mpjpe(moved, truth) == pytest.approx(5 / 5)
    # a missing root makes the whole pose invalid
    truth[:10, 0] = np.nan
    assert mpjpe(moved, truth) == pytest.approx(5 / 5)


def test_pa_mpjpe_of_rotated_scaled_copy_is_zero(poses):
    rot = look_at_rotation(33.0, 12.0, 40.0)[0]
    other = 2.5 * poses @ rot.T + 7.0
    assert mpjpe(other, poses) > 0.5
    assert pa_mpjpe(other, poses) == pytest.approx(0, abs=1e-9)
    assert n_mpjpe(other, poses) > 0.1  # scale alone cannot undo a rotation


def test_n_mpjpe_of_scaled_copy_is_zero(poses):
    rel = root_relative(poses)
    assert n_mpjpe(rel * 1.7, rel) == pytest.approx(0, abs=1e-12)
    assert mpjpe(rel * 1.7, rel) > 0.1


def test_multi_root_target_sets(poses):
    # joints 1,2 relative to root 0, joints 4,5,6,7 relative to root 3
    sets = [[1, 2], [4, 5, 6, 7]]
    moved = poses.copy()
    moved[:, [3, 4, 5, 6, 7]] += 10.0  # moving the second root with its set: only root 3 errs
    err = per_joint_mpjpe(moved, poses, roots=[0, 3], target_sets=sets)
    assert np.isnan(err[0]) and np.isnan(err[3])
    assert np.allclose(err[[1, 2, 4, 5, 6, 7]], 0)


def test_velocity_and_bone_metrics():
    t = np.linspace(0, 1, 50)
    truth = np.zeros((50, 2, 3))
    truth[:, 1, 0] = 1.0 + t  # a bone growing linearly
    pred = truth.copy()
    pred[:, 1, 1] = 0.5  # constant offset: no velocity error
    assert mpjve(pred, truth) == pytest.approx(0)
    assert mpjpe(pred, truth) == pytest.approx(0.5)
    assert bone_length_std(truth, [[0, 1]]) == pytest.approx(np.std(1.0 + t))
    steady = truth.copy()
    steady[:, 1, 0] = 1.0
    assert bone_length_std(steady, [[0, 1]]) == pytest.approx(0)


def test_evaluate_matches_keypoints_by_name(poses):
    names = [f"k{i}" for i in range(8)]
    pred = Poses(poses[:, None] * 1.1, names, edges=[[0, 1], [1, 2]], units="mm")
    order = names[::-1] + ["extra"]
    coords = np.concatenate([poses[:, ::-1], np.zeros((20, 1, 3))], axis=1)[:, None]
    truth = Poses(coords, order, units="mm")
    m = evaluate(pred, truth)
    assert m["mpjpe"] == pytest.approx(mpjpe(poses * 1.1, poses))
    assert m["n_mpjpe"] == pytest.approx(0, abs=1e-9)
    assert set(m["per_joint_mpjpe"]) == set(names)
    bad = Poses(poses[:, None, :5], names[:5])
    with pytest.raises(ValueError, match=r"missing: \['k5', 'k6', 'k7'\]"):
        evaluate(pred, bad)


def test_evaluate_one_frame_warns_nothing(poses):
    names = [f"k{i}" for i in range(8)]
    one = Poses(poses[:1, None], names, edges=[[0, 1]], units="mm")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's "Mean of empty slice" would fail here
        m = evaluate(one, one)
    assert m["mpjpe"] == 0
    assert np.isnan(m["mpjve"]) and np.isnan(m["bone_length_std"])


def test_training_validation_mpjpe_is_metrics_mpjpe_with_several_roots():
    """Training's printed validation error and ``evaluate``/the CLI use one definition."""
    from napari_liftpose.lifting.normalization import Normalization
    from napari_liftpose.lifting.skeleton import RootLayout
    from napari_liftpose.lifting.training import validation_mpjpe

    rng = np.random.default_rng(3)
    layout = RootLayout(10, roots=(0, 5), target_sets=((1, 2, 3, 4), (6, 7, 8)))  # 9: root 0
    truth = rng.normal(size=(50, 10, 3))
    truth[4, 7] = np.nan  # a missing target
    truth[9, 5] = np.nan  # a missing second root: its set has no valid joint
    pred = truth + rng.normal(scale=0.3, size=truth.shape)
    pred[np.isnan(pred)] = 0.0  # the network always predicts something
    norm = Normalization(
        input_mean=np.zeros(20),
        input_std=np.ones(20),
        target_mean=rng.normal(size=(9, 3)),
        target_std=rng.uniform(0.5, 2.0, size=(9, 3)),
    )
    pred_z = norm.normalize_targets(layout.to_offsets(pred)).reshape(50, -1)
    got = validation_mpjpe(pred_z, layout.to_offsets(truth), norm, layout)
    assert got == pytest.approx(mpjpe(pred, truth, layout.roots, layout.target_sets), rel=1e-12)
