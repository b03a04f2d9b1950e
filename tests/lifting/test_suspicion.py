"""The suspicion score: its parts on real data, and (slow) corrupted frames found on three tasks.

The slow tests train small lifters on the shared data, each split in time (first 80% train,
last 20% test): the fly with a known camera (1.5 px noise on the test 2D), the fly with random
cameras (tested from a camera outside the training's default angles), and the sleap-anipose
mouse with real 2D/3D pairs (top camera). 5% of the test poses are corrupted (left/right swap,
one keypoint moved by 20% of body size, one keypoint's confidence zeroed), ten draws pooled.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_liftpose import Poses
from napari_liftpose.io import read_poses
from napari_liftpose.lifting import (
    KnownCamera,
    PairedTracks,
    RandomCameras,
    TrainConfig,
    camera_from_angles,
    load_lifter,
    train,
)
from napari_liftpose.lifting.corruptions import KINDS, corrupt_frames
from napari_liftpose.lifting.metrics import roc_auc
from napari_liftpose.lifting.suspicion import (
    FEATURES,
    left_right_pairs,
    library_bone_stats,
    pose_size,
    suspicion_report,
)


@pytest.fixture(scope="module")
def mouse_2d(data_dir) -> Poses:
    return read_poses(
        data_dir / "sleap_anipose_minimal_session" / "top" / "minimal_top_proofread.analysis.h5"
    )


# -- roc_auc -------------------------------------------------------------------------------------
def test_roc_auc_counts_pairs_ranked_right_with_ties_as_half():
    assert roc_auc(np.array([0.1, 0.2, 0.8, 0.9]), np.array([0, 0, 1, 1])) == 1.0
    assert roc_auc(np.array([0.9, 0.8, 0.2, 0.1]), np.array([0, 0, 1, 1])) == 0.0
    # positives 0.5, 0.7; negatives 0.5, 0.1, 0.8: pairs won 0.5 (tie) + 1 + 0 + 1 + 1 + 0 = 3.5/6
    scores = np.array([0.5, 0.7, 0.5, 0.1, 0.8, np.nan])
    labels = np.array([1, 1, 0, 0, 0, 1], dtype=bool)  # the NaN score is left out
    assert roc_auc(scores, labels) == pytest.approx(3.5 / 6)
    assert np.isnan(roc_auc(np.array([0.3, 0.4]), np.array([True, True])))
    with pytest.raises(ValueError, match="same shape"):
        roc_auc(np.zeros(3), np.zeros(4, dtype=bool))


# -- names, sizes, library statistics ------------------------------------------------------------
def test_left_right_pairs_from_the_names_of_real_files(fly, mouse_2d):
    fly_pairs = left_right_pairs(fly.keypoints)
    assert len(fly_pairs) == 15
    names = {(fly.keypoints[a], fly.keypoints[b]) for a, b in fly_pairs}
    assert ("LF_Coxa", "RF_Coxa") in names and ("LH_Claw", "RH_Claw") in names
    mouse = {tuple(sorted((mouse_2d.keypoints[a], mouse_2d.keypoints[b])))
             for a, b in left_right_pairs(mouse_2d.keypoints)}  # fmt: skip
    assert mouse == {
        ("Ear_L", "Ear_R"), ("Shoulder_left", "Shoulder_right"), ("Haunch_left", "Haunch_right"),
    }  # fmt: skip
    assert left_right_pairs(["head", "Trunk", "Tail_0", "Lever"]) == []


def test_pose_size_barely_moves_when_one_keypoint_is_far_off(fly):
    pts = fly.coords[:50, 0]
    moved = pts.copy()
    moved[:, 4] += 10 * pose_size(pts)[:, None]
    assert np.allclose(pose_size(moved), pose_size(pts), rtol=0.1)
    assert np.isnan(pose_size(np.full((1, 5, 3), np.nan))).all()


def test_library_bone_stats_are_small_json_and_describe_the_library(fly):
    stats = library_bone_stats([fly], fly.edges)
    text = json.dumps(stats)
    assert len(text) < 5000
    assert stats["bones"][0] == ["LF_Coxa", "LF_Femur"] and len(stats["bones"]) == len(fly.edges)
    a, b = fly.edges[0]
    length = np.linalg.norm(fly.coords[:, 0, a] - fly.coords[:, 0, b], axis=-1)
    ratio = np.log(length / pose_size(fly.coords[:, 0]))
    assert stats["median"][0] == pytest.approx(np.median(ratio))
    assert all(s >= 0.01 for s in stats["spread"])
    with pytest.raises(ValueError, match="3D library"):
        library_bone_stats([fly.copy(coords=fly.coords[..., :2])], fly.edges)


# -- corruptions ---------------------------------------------------------------------------------
def test_corrupt_frames_damages_the_asked_fraction_in_the_three_ways(mouse_2d):
    bad, mask, kind = corrupt_frames(mouse_2d, fraction=0.25, rng=3)
    assert mask.sum() == 30 and set(kind[mask]) == set(KINDS) and (kind[~mask] == "").all()
    same = np.isclose(bad.coords, mouse_2d.coords).all(-1) & (bad.confidence == mouse_2d.confidence)
    assert same[~mask].all()
    left, right = mouse_2d.keypoints.index("Ear_L"), mouse_2d.keypoints.index("Ear_R")
    for f, i in np.argwhere(mask):
        changed = np.flatnonzero(~same[f, i])
        if kind[f, i] == "swap":
            assert np.allclose(bad.coords[f, i, left], mouse_2d.coords[f, i, right])
        elif kind[f, i] == "move":
            assert len(changed) == 1
            shift = np.linalg.norm(bad.coords[f, i, changed[0]] - mouse_2d.coords[f, i, changed[0]])
            span = np.nanmedian(
                [
                    np.max(np.linalg.norm(p[:, None] - p[None], axis=-1))
                    for p in mouse_2d.coords[:, i]
                ]
            )
            assert shift == pytest.approx(0.2 * span)
        else:
            assert len(changed) == 1 and bad.confidence[f, i, changed[0]] == 0
            assert np.array_equal(bad.coords[f, i], mouse_2d.coords[f, i])
    with pytest.raises(ValueError, match="expected 2D"):
        corrupt_frames(Poses(np.zeros((3, 1, 15, 3)), mouse_2d.keypoints))


# -- the score on trained lifters (slow) ---------------------------------------------------------
def _split(poses: Poses, cut: int) -> tuple[Poses, Poses]:
    def part(sl: slice) -> Poses:
        return poses.copy(coords=poses.coords[sl].copy(), confidence=poses.confidence[sl].copy())

    return part(slice(0, cut)), part(slice(cut, None))


def _task(name, data_dir, tmp_path_factory):
    """(lifter, clean test 2D) of a task; the lifter gets the library's bone statistics."""
    rng = np.random.default_rng(0)
    if name == "mouse":
        session = data_dir / "sleap_anipose_minimal_session"
        two = read_poses(session / "top" / "minimal_top_proofread.analysis.h5")
        three = read_poses(session / "points3d.h5").select_keypoints(two.keypoints)
        (train2d, test2d), (library, _) = _split(two, 96), _split(three, 96)
        source, roots, epochs = PairedTracks([train2d]), ["Trunk"], 40
    else:
        fly = read_poses(data_dir / "fly_df3d_210902" / "points3d.npz")
        library, test = _split(fly, 800)
        centre = np.nanmean(fly.coords.reshape(-1, 3), axis=0)
        angles = {"fly_known": (60, 25), "fly_random": (130, 35)}[name]
        camera = camera_from_angles(*angles, distance=20, target=centre, focal=1000)
        source = KnownCamera(camera) if name == "fly_known" else RandomCameras()
        noisy = camera.project(test.coords) + rng.normal(
            scale=1.5, size=test.coords.shape[:3] + (2,)
        )
        test2d = Poses(noisy, test.keypoints, edges=test.edges, units="px")
        roots, epochs = None, 15
    path = tmp_path_factory.mktemp("suspicion") / f"{name}.safetensors"
    train([library], source, path, TrainConfig(epochs=epochs, device="cpu", seed=0), roots=roots)
    lifter = load_lifter(path, device="cpu")
    lifter.meta.setdefault("bone_stats", library_bone_stats([library], library.edges))
    return lifter, test2d


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "minimum"),
    # measured: 0.985 (move 0.958), 0.977 (move 0.940), 0.993 (confidence 0.983)
    [("fly_known", 0.95), ("fly_random", 0.93), ("mouse", 0.95)],
)
def test_corrupted_frames_score_above_clean_ones(name, minimum, data_dir, tmp_path_factory):
    lifter, test2d = _task(name, data_dir, tmp_path_factory)
    scores, masks, kinds = [], [], []
    for seed in range(10):
        bad, mask, kind = corrupt_frames(test2d, 0.05, rng=seed)
        lifted = lifter.lift(bad)
        report = suspicion_report(lifter, bad, lifted)
        assert set(report.features) <= set(FEATURES)
        assert ((report.scores >= 0) & (report.scores <= 1)).all()
        assert set(np.unique(report.reasons)) <= set(report.features)
        scores.append(report.scores)
        masks.append(mask)
        kinds.append(kind)
    scores, masks, kinds = map(np.concatenate, (scores, masks, kinds))
    assert roc_auc(scores, masks) >= minimum
    for kind in KINDS:
        use = (kinds == kind) | ~masks
        assert roc_auc(scores[use], masks[use]) >= 0.9, kind
