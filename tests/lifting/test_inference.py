import numpy as np
import pytest

from napari_liftpose.lifting import TrainConfig, load_lifter, train

pytestmark = pytest.mark.slow  # every test here trains a network (or uses one trained here)


@pytest.fixture(scope="module", params=["mlp", "temporal"])
def lifter_and_tracks(request, fly, fly_camera, tmp_path_factory):
    small = fly.copy(coords=fly.coords[:300].copy(), confidence=fly.confidence[:300].copy())
    path = tmp_path_factory.mktemp("inf") / "m.safetensors"
    train(small, fly_camera, path, TrainConfig(model=request.param, epochs=2, device="cpu"))
    two = np.concatenate([fly.coords[300:400], fly.coords[500:600]], axis=1)  # 2 individuals
    tracks = fly.copy(
        coords=fly_camera.project(two),
        confidence=np.full(two.shape[:3], 0.9),
        individuals=["a", "b"],
    )
    return load_lifter(path, device="cpu"), tracks


def test_lift_keeps_individuals_confidence_and_marks_unusable(lifter_and_tracks):
    lifter, tracks = lifter_and_tracks
    coords = tracks.coords.copy()
    coords[10, 1] = np.nan  # nothing visible: this pose cannot be lifted
    coords[30, 0, 0] = np.nan  # no root: lifted around an estimated root
    coords[20, 0, 5] = np.nan  # a missing non-root joint still gives a full pose
    tracks = tracks.copy(coords=coords)
    out = lifter.lift(tracks, batch_size=64)
    assert out.coords.shape == (100, 2, 30, 3) and out.n_space == 3
    assert out.individuals == ["a", "b"] and out.units == "mm"
    assert np.array_equal(out.confidence, tracks.confidence)
    assert np.isnan(out.coords[10, 1]).all() and np.isfinite(out.coords[10, 0]).all()
    assert np.isfinite(out.coords[20, 0]).all() and np.isfinite(out.coords[30, 0]).all()
    assert np.allclose(out.coords[:, :, 0][np.isfinite(out.coords[:, :, 0])], 0)
    # batch size does not change the result
    assert np.allclose(
        lifter.lift(tracks, batch_size=7).coords, out.coords, atol=1e-5, equal_nan=True
    )


def test_lift_rejects_3d_input(lifter_and_tracks, fly):
    lifter, _ = lifter_and_tracks
    with pytest.raises(ValueError, match="expected 2D"):
        lifter.lift(fly)
