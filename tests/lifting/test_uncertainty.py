"""Per-joint uncertainty: conformal calibration on validation, coverage on held-out real frames."""

from __future__ import annotations

import numpy as np
import pytest

from napari_liftpose.lifting import (
    KnownCamera,
    ModelFileError,
    TrainConfig,
    load_checkpoint,
    load_lifter,
    save_checkpoint,
    train,
)
from napari_liftpose.lifting.data import PoseSamples
from napari_liftpose.lifting.uncertainty import (
    Calibration,
    calibrate,
    conformal_quantile,
    coverage_of,
)
from napari_liftpose.poses import Poses

from .conftest import split_frames

NOISE_PX = 1.5  # detector noise on the test 2D (and on the calibration windows)


def test_conformal_quantile_is_the_ceil_n_plus_1_rank():
    scores = np.arange(1.0, 11.0)  # n = 10: rank ceil(11 * 0.8) = 9
    assert conformal_quantile(scores, 0.8) == 9.0
    assert conformal_quantile(np.append(scores, np.nan), 0.8) == 9.0
    assert conformal_quantile(scores[:2], 0.8) == 2.0  # too few: the largest
    assert np.isnan(conformal_quantile(np.array([np.nan]), 0.8))


def test_radii_are_larger_for_hidden_joints_and_estimated_roots():
    k = 4
    cal = Calibration(
        0.8, 0, 0.02, np.ones(k), np.array([0, 1.0, 1, 1]), np.array([0, 3.0, 3, 3]),
        np.array([0, 2.0, 2, 2]),
    )  # fmt: skip
    hidden = np.array([[False, False, True, False]] * 2)
    rootless = np.array([False, True])
    r = cal.radii(None, hidden, rootless)
    assert r.tolist() == [[0, 1, 3, 1], [0, 2, 3, 2]]


def _calibration_dict(k: int = 5) -> dict:
    return Calibration(0.8, 0, 0.02, *(np.ones(k),) * 4).to_dict({"n_poses": 10})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"method": "other"}, "expected method"),
        ({"coverage": 1.5}, "coverage: expected a number"),
        ({"draws": -1}, "draws: expected an integer"),
        ({"visible": [1.0, 2.0]}, "visible: expected 5 finite numbers"),
        ({"floor": [1, 1, 1, 1, float("nan")]}, "floor: expected 5 finite numbers"),
        ({"hidden": [1, 1, 1, 1, "x"]}, "hidden: expected 5 finite numbers"),
    ],
)
def test_a_malformed_calibration_is_refused(change, message):
    with pytest.raises(ValueError, match=message):
        Calibration.from_dict({**_calibration_dict(), **change}, 5)
    assert Calibration.from_dict(_calibration_dict(), 5).coverage == 0.8


# -- a real model on the real fly ----------------------------------------------------------------
@pytest.fixture(scope="module")
def fly_task(fly, fly_camera, tmp_path_factory):
    """A known-camera MLP trained on the first 80% of the fly; test 2D: the rest, 1.5 px noise."""
    library, test = split_frames(fly, 0.2)
    config = TrainConfig(epochs=15, noise_2d=0.03, seed=0, device="cpu")
    path = tmp_path_factory.mktemp("uncertainty") / "fly.safetensors"
    train(library, fly_camera, path, config)
    rng = np.random.default_rng(0)
    uv = fly_camera.project(test.coords)
    tracks = Poses(uv + rng.normal(0, NOISE_PX, uv.shape), fly.keypoints, units="px")
    return library, test, tracks, path, config


def _validation_windows(lifter, library, camera, config):
    """Validation windows as training draws them, with detector noise on every 2D point."""
    samples = PoseSamples([library], lifter.layout, KnownCamera(camera), window=1)
    _, val_idx = samples.split(config.val_fraction)
    x, conf, offsets = samples.draw(val_idx, np.random.default_rng(1))
    root = lifter.layout.roots[0]
    x = x + np.random.default_rng(2).normal(0, NOISE_PX, x.shape)  # pixels: the root moves too
    return x - x[..., root : root + 1, :], conf, offsets


@pytest.fixture(scope="module")
def calibrated(fly_task, fly_camera):
    library, _, _, path, config = fly_task
    lifter = load_lifter(path, device="cpu")
    assert lifter.calibration is not None  # train() calibrates on its validation draw
    return lifter, lifter.meta["uncertainty"]


def _truth(lifter, test):
    truth = lifter.truth_in_output_frame(test).coords
    return truth - truth[..., lifter.layout.roots[0] : lifter.layout.roots[0] + 1, :]


@pytest.mark.slow
def test_radii_hold_the_true_point_80_percent_of_the_time_on_test_frames(fly_task, calibrated):
    _, test, tracks, _, _ = fly_task
    lifter, cal = calibrated
    lifted = lifter.lift(tracks)
    assert lifted.uncertainty.shape == lifted.coords.shape[:3]
    assert 0.7 <= cal["validation_coverage"] <= 0.9
    coverage = coverage_of(lifted.coords, _truth(lifter, test), lifted.uncertainty)
    assert 0.7 <= coverage <= 0.9, coverage
    assert (lifted.uncertainty[..., lifter.layout.roots[0]] == 0).all()  # the origin
    assert lifter.lift(tracks, uncertainty=False).uncertainty is None


@pytest.mark.slow
def test_hidden_keypoints_and_lost_roots_get_larger_radii_that_still_cover(fly_task, calibrated):
    _, test, tracks, _, _ = fly_task
    lifter, _ = calibrated
    root = lifter.layout.roots[0]
    truth = _truth(lifter, test)
    full = lifter.lift(tracks).uncertainty
    rng = np.random.default_rng(3)
    hide = rng.random(tracks.coords.shape[:3]) < 0.2
    hide[..., root] = False
    coords = tracks.coords.copy()
    coords[hide] = np.nan
    lost = rng.random(tracks.coords.shape[:2]) < 0.3
    coords[lost, root] = np.nan
    lifted = lifter.lift(tracks.copy(coords=coords))
    only_hidden = hide & ~lost[..., None]
    assert lifted.uncertainty[only_hidden].mean() > 1.3 * full[only_hidden].mean()
    cov = coverage_of(
        lifted.coords[only_hidden], truth[only_hidden], lifted.uncertainty[only_hidden]
    )
    assert cov >= 0.7, cov
    rootless = lost[..., None] & ~hide
    rootless[..., root] = False
    assert lifted.uncertainty[rootless].mean() > full[rootless].mean()
    cov = coverage_of(lifted.coords[rootless], truth[rootless], lifted.uncertainty[rootless])
    assert cov >= 0.7, cov


@pytest.mark.slow
def test_the_calibration_lives_in_the_checkpoint_and_old_files_lift_without_one(
    fly_task, calibrated, tmp_path
):
    _, _, tracks, path, _ = fly_task
    lifter, cal = calibrated
    tensors, meta = load_checkpoint(path)
    meta.pop("uncertainty")  # as written before the calibration existed
    save_checkpoint(tmp_path / "old.safetensors", tensors, meta)
    old = load_lifter(tmp_path / "old.safetensors", device="cpu")
    lifted_old = old.lift(tracks)
    assert old.calibration is None and lifted_old.uncertainty is None
    save_checkpoint(tmp_path / "calibrated.safetensors", tensors, {**meta, "uncertainty": cal})
    new = load_lifter(tmp_path / "calibrated.safetensors", device="cpu")
    lifted = new.lift(tracks)
    np.testing.assert_array_equal(lifted.coords, lifted_old.coords)
    np.testing.assert_allclose(lifted.uncertainty, lifter.lift(tracks).uncertainty)
    bad = {**cal, "visible": cal["visible"][:-1]}
    save_checkpoint(tmp_path / "bad.safetensors", tensors, {**meta, "uncertainty": bad})
    with pytest.raises(ModelFileError, match="visible: expected 30 finite numbers"):
        load_lifter(tmp_path / "bad.safetensors", device="cpu")


@pytest.mark.slow
def test_the_ensemble_spread_option_also_covers(fly_task, fly_camera, calibrated):
    library, test, tracks, path, config = fly_task
    lifter = load_lifter(path, device="cpu")
    windows = _validation_windows(lifter, library, fly_camera, config)
    lifter.set_calibration(calibrate(lifter, *windows, draws=4))
    assert lifter.calibration.draws == 4
    lifted = lifter.lift(tracks)
    radius = lifted.uncertainty
    coverage = coverage_of(lifted.coords, _truth(lifter, test), radius)
    assert 0.7 <= coverage <= 0.9, coverage
    assert np.std(radius[:, 0, 5]) > 0  # the radius now varies from frame to frame
