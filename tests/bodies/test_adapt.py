"""Adapting a body-model lifter to a lab's skeleton: exact, without retraining."""

from __future__ import annotations

import numpy as np
import pytest

from napari_liftpose import Poses
from napari_liftpose.bodies import load_body_model
from napari_liftpose.bodies.adapt import AdaptError, adapt_lifter, with_unmapped
from napari_liftpose.bodies.builtin import load_builtin
from napari_liftpose.bodies.library import body_library
from napari_liftpose.bodies.mapping import map_keypoints, to_model_poses
from napari_liftpose.io import read_poses

OPENFIELD = ("dlc_openfield_csv", "openfield_dlc_inference_example.csv")
TOP = ("sleap_anipose_minimal_session", "top", "minimal_top_proofread.analysis.h5")


@pytest.fixture(scope="module")
def mouse():
    return load_body_model("mouse")


@pytest.fixture(scope="module")
def full():
    return load_builtin("mouse-top")


def _same_lift(full, adapted, tracks, mapping):
    """The adapted lifter's 3D and radii, and the full lifter's on the model-only-missing 2D."""
    ours = adapted.lift(tracks, suspicion=False)
    theirs = full.lift(to_model_poses(tracks, mapping, complete=True), suspicion=False)
    index = [full.keypoints.index(mapping.pairs[u]) for u in adapted.keypoints]
    return ours, theirs.select_keypoints([full.keypoints[i] for i in index])


@pytest.mark.parametrize("where", [OPENFIELD, TOP])
def test_adapted_lifts_as_the_full_lifter_with_the_model_only_keypoints_missing(
    data_dir, mouse, full, where
):
    tracks = read_poses(data_dir.joinpath(*where))
    mapping = map_keypoints(tracks.keypoints, full.keypoints, aliases=mouse.aliases)
    adapted = adapt_lifter(full, mapping)
    assert type(adapted) is type(full)
    assert adapted.keypoints == [u for u in tracks.keypoints if u in mapping.pairs]
    ours, theirs = _same_lift(full, adapted, tracks, mapping)
    assert np.isfinite(ours.coords).all()
    np.testing.assert_allclose(ours.coords, theirs.coords, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ours.uncertainty, theirs.uncertainty, rtol=1e-6)
    assert ours.keypoints == adapted.keypoints and ours.frame == "upright"


def test_adapted_lifter_lifts_the_openfield_csv_with_suspicion(data_dir, mouse, full):
    tracks = read_poses(data_dir.joinpath(*OPENFIELD))
    mapping = map_keypoints(tracks.keypoints, full.keypoints, aliases=mouse.aliases)
    adapted = adapt_lifter(full, mapping, library=body_library(mouse, 1024))
    lifted = adapted.lift(tracks)
    assert lifted.coords.shape == (2330, 1, 4, 3)
    assert np.isfinite(lifted.coords).all()
    assert lifted.suspicion.shape == (2330, 1) and np.isfinite(lifted.suspicion).all()
    root = adapted.keypoints.index("tailbase")
    np.testing.assert_array_equal(lifted.coords[:, :, root], 0.0)
    # the bones of the contracted skeleton, with statistics from the body model's poses
    stats = adapted.meta["bone_stats"]
    assert [sorted(b) for b in stats["bones"]] == [
        sorted((adapted.keypoints[a], adapted.keypoints[b])) for a, b in adapted.edges
    ]
    assert adapted.meta["adapted"]["mapping"]["tailbase"] == "tail_base"
    assert "spine_mid" in adapted.meta["adapted"]["dropped"]


def test_calibration_normalisation_and_layout_are_sliced(mouse, full):
    user = ["TTI", "Nose", "Ear_L"]
    mapping = map_keypoints(user, full.keypoints, aliases=mouse.aliases)
    adapted = adapt_lifter(full, mapping)
    old = [full.keypoints.index(m) for m in ("tail_base", "nose", "left_ear")]
    np.testing.assert_array_equal(adapted.norm.input_mean, full.norm.input_mean[old])
    for name in ("floor", "visible", "hidden", "rootless"):
        got = adapted.meta["uncertainty"][name]
        assert got == [full.meta["uncertainty"][name][i] for i in old]
    assert adapted.layout.roots == (0,) and adapted.meta["roots"] == ["TTI"]
    assert adapted.calibration is not None and len(adapted.calibration.visible) == 3


def test_an_unmapped_root_is_one_error_naming_it(mouse, full):
    mapping = map_keypoints(["snout", "leftear", "rightear"], full.keypoints, aliases=mouse.aliases)
    with pytest.raises(
        AdaptError, match="root 'tail_base'.*Map one of your keypoints to 'tail_base'"
    ):
        adapt_lifter(full, mapping)
    with pytest.raises(AdaptError, match="no keypoint maps"):
        adapt_lifter(full, map_keypoints(["lever"], full.keypoints))
    with pytest.raises(AdaptError, match="only 'TTI' maps.*at least two"):
        adapt_lifter(full, map_keypoints(["TTI", "lever"], full.keypoints, aliases=mouse.aliases))


def test_unmapped_user_keypoints_are_named_and_come_back_as_nan(data_dir, mouse, full):
    tracks = read_poses(data_dir.joinpath(*OPENFIELD))
    lever = tracks.coords[:, :, :1] + 5.0
    tracks = tracks.copy(
        coords=np.concatenate([tracks.coords, lever], axis=2),
        confidence=np.concatenate([tracks.confidence, tracks.confidence[:, :, :1]], axis=2),
        keypoints=[*tracks.keypoints, "lever"],
        edges=np.zeros((0, 2), dtype=np.int64),
    )
    mapping = map_keypoints(tracks.keypoints, full.keypoints, aliases=mouse.aliases)
    assert "lever" in mapping.describe() and "carried through as NaN" in mapping.describe()
    adapted = adapt_lifter(full, mapping)
    assert "lever" not in adapted.keypoints
    out = with_unmapped(adapted.lift(tracks), mapping)
    assert out.keypoints == tracks.keypoints
    assert np.isnan(out.coords[:, :, 4]).all() and np.isfinite(out.coords[:, :, :4]).all()
    assert np.isnan(out.uncertainty[:, :, 4]).all()


@pytest.mark.slow
def test_temporal_lifter_is_sliced_exactly_too(tmp_path, data_dir, mouse):
    import torch

    from napari_liftpose.lifting import RandomCameras, TrainConfig, load_lifter, train

    torch.set_num_threads(1)
    library = body_library(mouse, 1536, seq_len=32)
    config = TrainConfig(
        model="temporal",
        architecture={"filter_widths": [3, 3], "channels": 32},
        epochs=1,
        device="cpu",
        subset_dropout=0.8,
    )
    path = train(
        library,
        RandomCameras(elevation=(50, 85)),
        tmp_path / "t.safetensors",
        config,
        roots=["tail_base"],
    ).path
    full = load_lifter(path, "cpu")
    tracks = read_poses(data_dir.joinpath(*TOP))
    mapping = map_keypoints(tracks.keypoints, full.keypoints, aliases=mouse.aliases)
    adapted = adapt_lifter(full, mapping)
    assert adapted.receptive_field == 9
    ours, theirs = _same_lift(full, adapted, tracks, mapping)
    np.testing.assert_allclose(ours.coords, theirs.coords, rtol=1e-5, atol=1e-5)


def test_user_edges_replace_the_contracted_skeleton(mouse, full):
    user = ["Nose", "Ear_L", "Ear_R", "TTI", "lever"]
    mapping = map_keypoints(user, full.keypoints, aliases=mouse.aliases)
    adapted = adapt_lifter(full, mapping, edges=[[0, 1], [0, 2], [1, 3], [3, 4]])
    assert adapted.keypoints == ["Nose", "Ear_L", "Ear_R", "TTI"]
    assert adapted.edges.tolist() == [[0, 1], [0, 2], [1, 3]]
    assert adapted.meta["bone_stats"] is None  # no library: relative lengths would be off
    poses = Poses(np.zeros((2, 1, 5, 2)) + np.arange(10).reshape(5, 2), user)
    assert np.isfinite(adapted.lift(poses, suspicion=False).coords).all()
