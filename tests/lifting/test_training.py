"""Training on real 3D libraries: known camera, random cameras, real 2D/3D pairs."""

import threading

import numpy as np
import pytest
import torch

from napari_liftpose import Poses
from napari_liftpose.lifting import (
    PairedTracks,
    RandomCameras,
    TrainConfig,
    camera_from_angles,
    evaluate,
    load_lifter,
    mpjpe,
    root_relative,
    train,
)
from napari_liftpose.lifting.training import resume_path

from .conftest import split_frames

pytestmark = pytest.mark.slow  # every test here trains a network (or uses one trained here)

FAST = dict(epochs=12, seed=0, device="cpu", patience=0)


def mean_pose_baseline(train_3d: np.ndarray, test_3d: np.ndarray) -> float:
    """MPJPE of always predicting the mean root-relative training pose."""
    mean = np.nanmean(root_relative(train_3d), axis=0)
    return mpjpe(np.broadcast_to(mean, test_3d.shape), test_3d)


def lift_error(lifter, camera, test: Poses) -> tuple[float, Poses]:
    pred = lifter.lift(test.copy(coords=camera.project(test.coords)))
    return evaluate(pred, lifter.truth_in_output_frame(test, camera))["mpjpe"], pred


@pytest.mark.slow
@pytest.mark.parametrize("model", ["mlp", "temporal"])
def test_known_camera_beats_mean_pose(fly, fly_camera, tmp_path, model):
    train_part, test_part = split_frames(fly, 0.2)
    out = tmp_path / "fly.safetensors"
    result = train(train_part, fly_camera, out, TrainConfig(model=model, **FAST))
    assert result.status == "finished" and result.path == out and out.is_file()
    lifter = load_lifter(out, device="cpu")
    err, pred = lift_error(lifter, fly_camera, test_part)
    base = mean_pose_baseline(
        fly_camera.to_camera_frame(train_part.coords[:, 0]),
        fly_camera.to_camera_frame(test_part.coords[:, 0]),
    )
    assert pred.coords.shape == (200, 1, 30, 3) and np.isfinite(pred.coords).all()
    assert err < 0.5 * base, (err, base)
    # missing joints degrade the pose gracefully instead of corrupting it
    two_d = fly_camera.project(test_part.coords)
    hide = np.random.default_rng(0).random(two_d.shape[:3]) < 0.1
    hide[..., 0] = False
    two_d[hide] = np.nan
    holey = lifter.lift(test_part.copy(coords=two_d)).coords
    truth = test_part.coords  # a known-camera lifter outputs the library's (world) axes
    assert np.isfinite(holey).all()
    assert mpjpe(holey, truth) < 0.8 * base, (mpjpe(holey, truth), base)


@pytest.mark.slow
def test_random_cameras_generalise_to_unseen_angle(fly, tmp_path):
    train_part, test_part = split_frames(fly, 0.2)
    cams = RandomCameras(
        azimuth=(-60, 60), azimuth_exclude=(10, 35), elevation=(0, 40), distance=(15, 30)
    )
    rng = np.random.default_rng(0)
    az = cams.sample_rotations(rng, 1000)[0]
    out = tmp_path / "agnostic.safetensors"
    train(train_part, cams, out, TrainConfig(epochs=25, seed=0, device="cpu", patience=0))
    lifter = load_lifter(out)
    # an azimuth in the excluded band, at a distance and focal length never seen
    unseen = camera_from_angles(azimuth=22, elevation=25, distance=40, focal=700)
    forward = unseen.rotation_matrix[2]
    seen_forward = az[:, 2]
    assert np.degrees(np.arccos(np.clip(seen_forward @ forward, -1, 1))).min() > 5
    err, _ = lift_error(lifter, unseen, test_part)
    base = mean_pose_baseline(
        unseen.to_camera_frame(train_part.coords[:, 0]),
        unseen.to_camera_frame(test_part.coords[:, 0]),
    )
    assert err < 0.6 * base, (err, base)


@pytest.mark.slow
def test_real_pairs_beat_mean_pose(mouse_pair, tmp_path):
    two_d, three_d = mouse_pair
    train_2d, test_2d = split_frames(two_d, 0.2)
    train_3d, test_3d = split_frames(three_d, 0.2)
    out = tmp_path / "mouse.safetensors"
    config = TrainConfig(epochs=80, seed=0, device="cpu", patience=0, batch_size=16)
    train(train_3d, PairedTracks([train_2d]), out, config, roots=["Trunk"])
    lifter = load_lifter(out)
    assert lifter.frame == "world" and lifter.keypoints[lifter.layout.roots[0]] == "Trunk"
    pred = lifter.lift(test_2d)
    metrics = evaluate(pred, test_3d, roots=["Trunk"])
    root = three_d.keypoints.index("Trunk")
    base = mean_pose_baseline(
        root_relative(train_3d.coords[:, 0], root), root_relative(test_3d.coords[:, 0], root)
    )
    assert metrics["mpjpe"] < 0.8 * base, (metrics["mpjpe"], base)


def test_same_seed_gives_identical_weights(fly, fly_camera, tmp_path):
    small = fly.copy(coords=fly.coords[:300].copy(), confidence=fly.confidence[:300].copy())
    config = TrainConfig(
        epochs=3, seed=7, device="cpu", noise_2d=0.02, bone_jitter=0.02, architecture={"width": 64}
    )
    a = train(small, fly_camera, tmp_path / "a.safetensors", config)
    b = train(small, fly_camera, tmp_path / "b.safetensors", config)
    c = train(
        small, fly_camera, tmp_path / "c.safetensors", TrainConfig(**{**config.__dict__, "seed": 8})
    )
    wa, wb, wc = (load_lifter(r.path).model.state_dict() for r in (a, b, c))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not all(torch.equal(wa[k], wc[k]) for k in wa)
    assert a.history == b.history


def test_progress_cancel_and_resume(fly, fly_camera, tmp_path):
    small = fly.copy(coords=fly.coords[:300].copy(), confidence=fly.confidence[:300].copy())
    out = tmp_path / "run.safetensors"
    config = TrainConfig(epochs=6, seed=1, device="cpu", architecture={"width": 64}, patience=0)
    cancel = threading.Event()
    seen = []

    def progress(p):
        seen.append(p)
        if p.epoch == 2:
            cancel.set()

    result = train(small, fly_camera, out, config, progress=progress, cancel=cancel)
    assert result.status == "cancelled" and result.epochs_run == 2
    assert [p.epoch for p in seen] == [1, 2] and seen[0].n_epochs == 6
    assert np.isfinite(seen[-1].train_loss) and np.isfinite(seen[-1].val_mpjpe)
    assert out.is_file() and resume_path(out).is_file()  # the best model so far is kept
    resumed = train(small, fly_camera, out, config, resume=True)
    assert resumed.status == "finished" and resumed.epochs_run == 6
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3, 4, 5, 6]
    assert not resume_path(out).exists()
    # a resumed run ends where an uninterrupted one does
    straight = train(small, fly_camera, tmp_path / "straight.safetensors", config)
    assert resumed.history[-1]["val_mpjpe"] == pytest.approx(
        straight.history[-1]["val_mpjpe"], rel=1e-4
    )


def test_cancel_before_start_keeps_nothing(fly, fly_camera, tmp_path):
    small = fly.copy(coords=fly.coords[:200].copy(), confidence=fly.confidence[:200].copy())
    out = tmp_path / "never.safetensors"
    result = train(small, fly_camera, out, TrainConfig(epochs=3, device="cpu"), cancel=lambda: True)
    assert result.status == "cancelled" and result.path is None and not out.exists()


def test_failure_keeps_last_good_checkpoint(fly, fly_camera, tmp_path):
    small = fly.copy(coords=fly.coords[:200].copy(), confidence=fly.confidence[:200].copy())
    out = tmp_path / "fail.safetensors"

    def progress(p):
        if p.epoch == 2:
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        train(
            small,
            fly_camera,
            out,
            TrainConfig(epochs=5, device="cpu", architecture={"width": 32}),
            progress=progress,
        )
    lifter = load_lifter(out)
    assert lifter.meta["metrics"]["best_epoch"] in (1, 2)


def test_bad_inputs_raise_clear_errors(fly, fly_camera, tmp_path):
    with pytest.raises(ValueError, match="model"):
        train(fly, fly_camera, tmp_path / "x.safetensors", TrainConfig(model="transformer"))
    with pytest.raises(ValueError, match="not one of the keypoints"):
        train(fly, fly_camera, tmp_path / "x.safetensors", TrainConfig(epochs=1), roots=["Tail"])
    flat = fly.copy(coords=fly.coords[..., :2].copy())
    with pytest.raises(ValueError, match="expected 3D"):
        train(flat, fly_camera, tmp_path / "x.safetensors", TrainConfig(epochs=1))


def test_several_roots_and_target_sets(fly, fly_camera, tmp_path):
    small = fly.copy(coords=fly.coords[:300].copy(), confidence=fly.confidence[:300].copy())
    names = list(fly.keypoints)
    roots = [f"{leg}_Coxa" for leg in ("LF", "LM", "LH", "RF", "RM", "RH")]
    sets = [[f"{r[:2]}_{seg}" for seg in ("Femur", "Tibia", "Tarsus", "Claw")] for r in roots]
    out = tmp_path / "legs.safetensors"
    train(
        small, fly_camera, out, TrainConfig(epochs=3, device="cpu"), roots=roots, target_sets=sets
    )
    lifter = load_lifter(out)
    assert lifter.meta["roots"] == roots and lifter.meta["target_sets"] == sets
    pred = lifter.lift(small.copy(coords=fly_camera.project(small.coords)))
    assert np.isfinite(pred.coords).all()
    assert np.allclose(pred.coords[:, :, names.index("LF_Coxa")], 0)
    truth = small.copy(coords=fly_camera.to_camera_frame(small.coords))
    metrics = evaluate(pred, truth, roots=roots, target_sets=sets)
    assert metrics["roots"] == roots and np.isfinite(metrics["mpjpe"])


@pytest.mark.parametrize(
    ("frames", "repeats"),
    [
        (96, 11),  # a hundred real pairs: min_epoch_frames (1024) rules, as before
        (800, 6),  # the fly / insect: library_passes (6) draws of every frame
        (2000, 5),  # 6 passes would pass PASSES_CAP_FRAMES: capped at 8192 frames
        (100_000, 1),  # a large library: one pass
    ],
)
def test_epoch_size_follows_library_size(frames, repeats):
    from napari_liftpose.lifting.train_config import PASSES_CAP_FRAMES

    config = TrainConfig()
    assert config.epoch_repeats(frames) == repeats
    assert TrainConfig(library_passes=1).epoch_repeats(800) == 2  # the rule before the field
    assert config.epoch_repeats(2000) * 2000 >= PASSES_CAP_FRAMES
    with pytest.raises(ValueError, match="library_passes"):
        TrainConfig(library_passes=0)
