"""The accuracy defaults of issue 10: heading turns for free-moving libraries, weight decay for
real pairs, and an MLP that sees which keypoints are hidden (older model files still load)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_liftpose import Poses
from napari_liftpose.lifting import (
    KnownCamera,
    PairedTracks,
    RandomCameras,
    TrainConfig,
    load_lifter,
    train,
)
from napari_liftpose.lifting.cameras import heading_spread, turn_about_up
from napari_liftpose.lifting.checkpoint import load_checkpoint, save_checkpoint
from napari_liftpose.lifting.data import HEADING_SPREAD_FREE, Augmentation, PoseSamples
from napari_liftpose.lifting.models import build_model, default_architecture
from napari_liftpose.lifting.skeleton import RootLayout
from napari_liftpose.synthetic import demo_camera, walking_insect


@pytest.fixture(scope="module")
def insect() -> Poses:
    """The package's free-walking insect (it turns through every heading)."""
    return walking_insect(n_frames=400, seed=0)


def _samples(poses: Poses, source, root: str | None = None) -> PoseSamples:
    layout = RootLayout.from_names(list(poses.keypoints), [root] if root else None)
    return PoseSamples([poses], layout, source)


def test_heading_spread_tells_a_tethered_fly_from_a_walking_insect(fly, fly_camera, insect):
    fly_spread = heading_spread(fly.coords[:, 0], 0)
    thorax = list(insect.keypoints).index("Thorax")
    insect_spread = heading_spread(insect.coords[:, 0], thorax)
    assert fly_spread < HEADING_SPREAD_FREE < insect_spread
    # the default turn follows: known camera, free animal only
    unset = Augmentation(heading_deg=None)
    fly_samples = _samples(fly, KnownCamera(fly_camera))
    insect_samples = _samples(insect, KnownCamera(demo_camera()), "Thorax")
    assert fly_samples.resolve(unset).heading_deg == 0.0
    assert insect_samples.resolve(unset).heading_deg == 180.0
    random = _samples(insect, RandomCameras(distance=(50.0, 60.0)), "Thorax")
    assert random.resolve(unset).heading_deg == 0.0
    assert insect_samples.resolve(Augmentation(heading_deg=30.0)).heading_deg == 30.0


def test_a_heading_turn_keeps_the_pose_and_its_height(fly):
    pts = fly.coords[:8, 0][None]  # (1 window, 8 frames, keypoints, 3)
    centre = pts[:, 4, 0]
    turned = turn_about_up(pts, centre, np.array([90.0]))
    np.testing.assert_allclose(turned[..., 2], pts[..., 2], atol=1e-12)  # z is the axis
    np.testing.assert_allclose(turned[:, 4, 0], centre, atol=1e-12)  # the pivot stays
    dist = np.linalg.norm(pts[..., :, None, :] - pts[..., None, :, :], axis=-1)
    dist_t = np.linalg.norm(turned[..., :, None, :] - turned[..., None, :, :], axis=-1)
    np.testing.assert_allclose(dist_t, dist, atol=1e-9)
    rel, rel_t = pts[0, 4, 5] - centre[0], turned[0, 4, 5] - centre[0]
    np.testing.assert_allclose(rel_t[:2], [-rel[1], rel[0]], atol=1e-9)  # +90 about z


def test_turned_training_2d_shows_the_insect_at_new_headings(insect):
    samples = _samples(insect, KnownCamera(demo_camera()), "Thorax")
    frames = np.arange(0, insect.n_frames, 2)
    plain, _, _ = samples.draw(frames, np.random.default_rng(0), Augmentation(heading_deg=0.0))
    turned, _, off = samples.draw(frames, np.random.default_rng(0), Augmentation(heading_deg=None))
    assert np.isfinite(off).all()
    # the 2D changes a lot (whole-body turns), not by a rounding error
    size = np.nanmean(np.linalg.norm(plain[:, 0], axis=-1))
    assert np.nanmean(np.linalg.norm(turned[:, 0] - plain[:, 0], axis=-1)) > 0.3 * size


def test_weight_decay_defaults_by_source_of_2d(fly, fly_camera):
    config = TrainConfig()
    assert config.resolved_weight_decay(PairedTracks([fly])) == 0.01
    assert config.resolved_weight_decay(KnownCamera(fly_camera)) == 0.0
    assert config.resolved_weight_decay(RandomCameras()) == 0.0
    assert TrainConfig(weight_decay=0.0).resolved_weight_decay(PairedTracks([fly])) == 0.0
    with pytest.raises(ValueError, match="weight_decay"):
        TrainConfig(weight_decay=-1.0)


def test_the_mlp_sees_hidden_keypoints_and_older_layouts_do_not():
    k = 6
    assert default_architecture("mlp")["inputs"] == "xyc"
    torch.manual_seed(0)
    new = build_model(default_architecture("mlp"), k, 3 * (k - 1)).eval()
    old = build_model({"type": "mlp", "width": 256, "blocks": 1}, k, 3 * (k - 1)).eval()
    assert new.inp[0].in_features == 3 * k and old.inp[0].in_features == 2 * k
    x = torch.randn(4, k, 3)
    x[..., 2] = 1.0
    hidden = x.clone()
    hidden[:, 3, 2] = 0.0  # same coordinates, confidence 0
    with torch.no_grad():
        assert not torch.allclose(new(x.reshape(4, -1)), new(hidden.reshape(4, -1)))
        torch.testing.assert_close(old(x.reshape(4, -1)), old(hidden.reshape(4, -1)))
        torch.testing.assert_close(old(x.reshape(4, -1)), old(x[..., :2].reshape(4, -1)))
    with pytest.raises(ValueError, match="inputs"):
        TrainConfig(architecture={"inputs": "xyz"})


@pytest.mark.slow
def test_model_files_record_the_defaults_and_old_mlp_files_still_lift(fly, fly_camera, tmp_path):
    short = fly.copy(coords=fly.coords[:300].copy(), confidence=fly.confidence[:300].copy())
    config = TrainConfig(epochs=2, device="cpu", architecture={"width": 32})
    new = train(short, fly_camera, tmp_path / "new.safetensors", config).path
    _, meta = load_checkpoint(new)
    assert meta["architecture"]["inputs"] == "xyc"
    assert meta["augmentation"]["heading_deg"] == 0.0  # tethered fly: decided and recorded
    assert meta["training"]["weight_decay"] is None

    config = TrainConfig(epochs=2, device="cpu", architecture={"width": 32, "inputs": "xy"})
    made = train(short, fly_camera, tmp_path / "xy.safetensors", config).path
    tensors, meta = load_checkpoint(made)
    del meta["architecture"]["inputs"]  # as written before the key existed
    old = save_checkpoint(tmp_path / "old.safetensors", tensors, meta)
    tracks = Poses(
        fly_camera.project(fly.coords[300:340]), list(fly.keypoints), edges=fly.edges
    )
    a = load_lifter(made, device="cpu").lift(tracks, uncertainty=False, suspicion=False)
    b = load_lifter(old, device="cpu").lift(tracks, uncertainty=False, suspicion=False)
    assert np.isfinite(b.coords).all()
    np.testing.assert_allclose(b.coords, a.coords, rtol=0, atol=1e-9)
