"""Training as the data will be met: 2D noise in pixels, camera jitter, noisy validation."""

from __future__ import annotations

from dataclasses import asdict, replace

import numpy as np
import pytest

from napari_liftpose.lifting import (
    KnownCamera,
    RandomCameras,
    TrainConfig,
    load_lifter,
    mpjpe,
    train,
)
from napari_liftpose.lifting.checkpoint import load_checkpoint, save_checkpoint
from napari_liftpose.lifting.data import NOISE_DEFAULTS, Augmentation, PoseSamples
from napari_liftpose.lifting.skeleton import RootLayout

from .conftest import split_frames

TEST_NOISE_PX = 1.5


def _samples(fly, camera) -> PoseSamples:
    layout = RootLayout.from_names(list(fly.keypoints))
    return PoseSamples([fly], layout, KnownCamera(camera))


def _pixel_noise(fly, camera, augment: Augmentation) -> float:
    """Standard deviation (pixels) of what ``augment`` adds to root-relative known-camera 2D."""
    samples = _samples(fly, camera)
    frames = np.arange(0, fly.n_frames, 5)
    clean, _, _ = samples.draw(frames, np.random.default_rng(0))
    noisy, _, _ = samples.draw(frames, np.random.default_rng(0), augment)
    diff = (noisy - clean)[..., 1:, :]  # the root is exactly 0 in both
    return float(np.nanstd(diff))


def test_noise_px_is_in_pixels_whatever_the_focal_length(fly, fly_camera):
    long_lens = replace(fly_camera, matrix=fly_camera.matrix * [[2], [2], [1]])
    augment = Augmentation(noise_px=2.0)
    for camera in (fly_camera, long_lens):
        # root-relative: a keypoint's noise minus the root's, sqrt(2) x noise_px
        assert _pixel_noise(fly, camera, augment) == pytest.approx(2.0 * np.sqrt(2), rel=0.05)
    # noise_2d, a fraction of the pose's size, doubles with the focal length instead
    frac = [_pixel_noise(fly, c, Augmentation(noise_2d=0.02)) for c in (fly_camera, long_lens)]
    assert frac[1] == pytest.approx(2 * frac[0], rel=0.05)


def test_defaults_follow_the_source_of_2d(fly, fly_camera):
    config = TrainConfig()
    known = config.augmentation(source=KnownCamera(fly_camera))
    assert known.noise_px == NOISE_DEFAULTS["known"]["noise_px"] > 0
    assert known.camera_jitter_deg > 0 and known.camera_jitter_distance > 0
    assert known.noise_2d == 0
    random = config.augmentation(source=RandomCameras())
    assert random.noise_2d == NOISE_DEFAULTS["random"]["noise_2d"] > 0 and random.noise_px == 0
    pairs = config.augmentation(real_pairs=True)
    assert pairs.noise_2d == NOISE_DEFAULTS["pairs"]["noise_2d"] > 0
    # validation gets the same 2D noise, no camera jitter
    val = config.validation_augmentation(source=KnownCamera(fly_camera))
    assert (val.noise_px, val.noise_2d) == (known.noise_px, known.noise_2d)
    assert val.camera_jitter_deg == val.camera_jitter_distance == 0
    # what the user sets wins; 0 turns it off
    off = TrainConfig(noise_px=0.0, camera_jitter_deg=0.0).augmentation(
        source=KnownCamera(fly_camera)
    )
    assert off.noise_px == off.camera_jitter_deg == 0
    # without a source the camera-dependent defaults are left to PoseSamples.draw
    assert config.augmentation().noise_px is None
    assert config.augmentation().for_source(KnownCamera(fly_camera)) == known


def test_draw_fills_in_the_source_defaults(fly, fly_camera):
    samples = _samples(fly, fly_camera)
    frames = np.arange(0, fly.n_frames, 5)
    unset = Augmentation(noise_2d=None, noise_px=None)
    drawn, _, _ = samples.draw(frames, np.random.default_rng(0), unset)
    clean, _, _ = samples.draw(frames, np.random.default_rng(0))
    noise = float(np.nanstd((drawn - clean)[..., 1:, :]))
    assert noise == pytest.approx(NOISE_DEFAULTS["known"]["noise_px"] * np.sqrt(2), rel=0.05)


def test_camera_jitter_keeps_2d_and_3d_consistent(fly, fly_camera):
    known = KnownCamera(fly_camera)
    pts = fly.coords[:40].reshape(40, 1, fly.n_keypoints, 3)
    uv0, cam0 = known.project(pts)
    uv, cam = known.project(pts, np.random.default_rng(0), 3.0, 0.05, centers=pts[:, 0, 0])
    # the 2D is the projection of the returned 3D through the camera's intrinsics
    fx, cx = fly_camera.matrix[0, 0], fly_camera.matrix[0, 2]
    np.testing.assert_allclose(uv[..., 0], fx * cam[..., 0] / cam[..., 2] + cx, atol=1e-6)
    # a pure camera move: the body's shape (distances from the root) is unchanged
    dist0 = np.linalg.norm(cam0 - cam0[..., :1, :], axis=-1)
    np.testing.assert_allclose(np.linalg.norm(cam - cam[..., :1, :], axis=-1), dist0, atol=1e-9)
    # but the view is different: the root-relative 2D moves by pixels
    rel = lambda a: a - a[..., :1, :]  # noqa: E731
    moved = np.nanmean(np.linalg.norm(rel(uv) - rel(uv0), axis=-1))
    assert moved > 1.0
    with pytest.raises(ValueError, match="rng"):
        known.project(pts, None, 1.0, 0.0)


def test_config_validation_and_old_settings():
    for bad in (dict(noise_px=-1.0), dict(camera_jitter_deg=float("nan"))):
        with pytest.raises(ValueError, match=next(iter(bad))):
            TrainConfig(**bad)
    with pytest.raises(ValueError, match="camera_jitter_distance"):
        TrainConfig(camera_jitter_distance=1.5)
    config = TrainConfig(model="temporal", noise_px=2.0, camera_jitter_deg=0.5)
    assert TrainConfig.from_dict(asdict(config)) == config
    old = asdict(TrainConfig())
    for name in ("noise_px", "camera_jitter_deg", "camera_jitter_distance"):
        del old[name]  # a model file from before these settings existed
    assert TrainConfig.from_dict(old) == TrainConfig()
    with pytest.raises(ValueError, match="no_such_setting"):
        TrainConfig.from_dict({**old, "no_such_setting": 1})


def _noisy_test_error(lifter, camera, test, seed: int = 1) -> float:
    two_d = camera.project(test.coords)
    two_d = two_d + np.random.default_rng(seed).normal(0.0, TEST_NOISE_PX, two_d.shape)
    pred = lifter.lift(test.copy(coords=two_d))
    return mpjpe(pred.coords, test.coords)


@pytest.mark.slow
def test_validation_error_predicts_noisy_test_error(fly, fly_camera, tmp_path):
    """Defaults: validation within 25% of the test error on 1.5 px noisy 2D (before: 40% low)."""
    train_part, test_part = split_frames(fly, 0.2)
    ratios = {}
    settings = {"defaults": {}, "noise off": dict(noise_px=0.0, camera_jitter_deg=0.0)}
    for name, extra in settings.items():
        config = TrainConfig(epochs=30, seed=0, device="cpu", patience=0, **extra)
        out = tmp_path / f"{name}.safetensors"
        result = train(train_part, fly_camera, out, config)
        test_err = _noisy_test_error(load_lifter(out, device="cpu"), fly_camera, test_part)
        ratios[name] = result.val_mpjpe / test_err
    assert 0.75 <= ratios["defaults"] <= 1.25, ratios
    assert ratios["noise off"] < 0.75, ratios  # what the defaults fix


@pytest.mark.slow
def test_config_round_trips_through_the_model_file(fly, fly_camera, tmp_path):
    train_part, _ = split_frames(fly, 0.8)
    config = TrainConfig(epochs=1, seed=0, device="cpu", noise_px=2.5, camera_jitter_deg=0.5)
    out = tmp_path / "m.safetensors"
    train(train_part, fly_camera, out, config)
    tensors, meta = load_checkpoint(out)
    assert TrainConfig.from_dict(meta["training"]) == config
    # a model file written before the noise settings existed still loads
    for name in ("noise_px", "camera_jitter_deg", "camera_jitter_distance"):
        del meta["training"][name]
    old = tmp_path / "old.safetensors"
    save_checkpoint(old, tensors, meta)
    lifter = load_lifter(old, device="cpu")
    assert TrainConfig.from_dict(load_checkpoint(old)[1]["training"]).noise_px is None
    assert lifter.lift_arrays(fly_camera.project(train_part.coords[:5])).shape == (5, 1, 30, 3)
