"""Training libraries from a body model: mapped subsets, real frames mixed in, roots, skeletons."""

from __future__ import annotations

import numpy as np
import pytest

from napari_liftpose import Poses
from napari_liftpose.bodies import load_body_model
from napari_liftpose.bodies.library import (
    REAL_SHARE,
    body_library,
    choose_root,
    contracted_edges,
    mix_real_frames,
    restrict_to_mapping,
    training_library,
)
from napari_liftpose.bodies.mapping import map_keypoints
from napari_liftpose.io import read_poses

OPENFIELD = ("dlc_openfield_csv", "openfield_dlc_inference_example.csv")


@pytest.fixture(scope="module")
def mouse():
    return load_body_model("mouse")


@pytest.fixture(scope="module")
def openfield(data_dir) -> Poses:
    return read_poses(data_dir.joinpath(*OPENFIELD))


@pytest.fixture(scope="module")
def df3d(data_dir) -> Poses:
    path = data_dir / "fly_df3d_210902" / "points3d.npz"
    z = np.load(path, allow_pickle=False)
    return Poses(
        z["points3d"][:, None],
        [str(k) for k in z["keypoints"]],
        edges=z["edges"],
        units="mm",
        source=str(path),
    )


def _connected(n: int, edges: np.ndarray) -> bool:
    reach, grew = {0}, True
    while grew:
        grew = False
        for a, b in edges:
            if (a in reach) != (b in reach):
                reach |= {int(a), int(b)}
                grew = True
    return len(reach) == n


def test_body_library_is_seeded_and_says_where_it_came_from(mouse):
    a = body_library(mouse, 640, seed=4, seq_len=32)
    b = body_library("mouse", 640, seed=4, seq_len=32)
    c = body_library(mouse, 640, seed=5, seq_len=32)
    assert a.coords.shape == (32, 20, len(mouse.keypoints), 3)
    np.testing.assert_array_equal(a.coords, b.coords)
    assert not np.allclose(a.coords, c.coords)
    assert a.source == "body model mouse (seed 4)"


def test_contracted_skeleton_stays_a_tree_on_any_subset(mouse):
    full = contracted_edges(mouse.keypoints, mouse.edges, mouse.keypoints)
    assert {tuple(e) for e in full} == {tuple(sorted(e)) for e in mouse.edges.tolist()}
    rng = np.random.default_rng(0)
    for size in (2, 4, 9, 20):
        keep = list(rng.choice(mouse.keypoints, size, replace=False))
        edges = contracted_edges(mouse.keypoints, mouse.edges, keep)
        assert len(edges) == size - 1 and _connected(size, edges)
    # a dropped keypoint between two kept ones becomes one bone between them
    keep = ["tail_base", "tail_2"]  # tail_1 dropped
    assert contracted_edges(mouse.keypoints, mouse.edges, keep).tolist() == [[0, 1]]


def test_root_is_the_models_or_the_most_central_mapped_keypoint(mouse):
    assert choose_root(mouse, mouse.keypoints) == mouse.root
    # open field: spine_mid is not tracked; tail_base is 2 bones from it, the nose 4
    assert choose_root(mouse, ["nose", "left_ear", "right_ear", "tail_base"]) == "tail_base"
    assert choose_root(mouse, mouse.keypoints, prefer=["tail_base"]) == "tail_base"
    with pytest.raises(ValueError, match="wing"):
        choose_root(mouse, ["nose", "wing"])


def test_openfield_subset_is_named_and_ordered_as_the_users(mouse, openfield):
    built = training_library(mouse, 1280, user_keypoints=openfield.keypoints, seed=1)
    (lib,) = built.libraries
    assert built.keypoints == list(openfield.keypoints) == list(lib.keypoints)
    assert built.roots == ["tailbase"] and built.body_model == "mouse"
    full = body_library(mouse, 1280, seed=1)
    expected = full.select_keypoints(["nose", "left_ear", "right_ear", "tail_base"]).coords
    np.testing.assert_array_equal(lib.coords, expected)
    assert lib.metadata["mapping"] == {
        "snout": "nose",
        "leftear": "left_ear",
        "rightear": "right_ear",
        "tailbase": "tail_base",
    }
    assert len(lib.edges) == 3 and _connected(4, lib.edges)
    assert "4 of 4 keypoints mapped" in built.describe()


def test_restrict_keeps_the_users_skeleton_where_both_ends_are_mapped(mouse):
    user = ["Nose", "lever", "TTI", "Ear_L"]
    mapping = map_keypoints(user, mouse.keypoints, aliases=mouse.aliases)
    lib = restrict_to_mapping(body_library(mouse, 64), mapping, edges=[[0, 1], [0, 2], [0, 3]])
    assert lib.keypoints == ["Nose", "TTI", "Ear_L"]
    assert lib.edges.tolist() == [[0, 1], [0, 2]]  # the bone to the unmapped lever is gone
    with pytest.raises(ValueError, match="no keypoint maps"):
        restrict_to_mapping(lib, map_keypoints(["lever"], mouse.keypoints))


def test_real_frames_are_repeated_to_their_share_and_set_the_scale(df3d):
    fly = load_body_model("fly")
    sampled = body_library(fly, 12_800, seed=0)
    mapping = map_keypoints(df3d.keypoints, fly.keypoints, aliases=fly.aliases)
    real = df3d.copy(keypoints=[mapping.pairs[k] for k in df3d.keypoints])
    mixed, report = mix_real_frames(sampled, [real])
    n_sampled = sampled.n_frames * sampled.n_individuals
    assert report.real_frames == 1000
    assert len(mixed) == 1 + report.repeats
    assert report.repeats == round(REAL_SHARE / (1 - REAL_SHARE) * n_sampled / 1000)
    assert report.share == pytest.approx(REAL_SHARE, abs=0.02)
    # the real frames go in unchanged, on the library's keypoint list (NaN where they lack one)
    thorax = fly.keypoints.index("thorax")
    assert np.isnan(mixed[1].coords[..., thorax, :]).all()
    legs = [fly.keypoints.index(m) for m in real.keypoints]
    np.testing.assert_array_equal(mixed[1].coords[:, :, legs], real.coords)
    assert all(np.array_equal(m.coords, mixed[1].coords, equal_nan=True) for m in mixed[2:])
    # the sampled poses are scaled to the real fly's size on the keypoints it has
    sizes = []
    for coords in (mixed[0].coords[:, :, legs], real.coords):
        flat = coords.reshape(-1, len(legs), 3)
        centred = flat - flat.mean(1, keepdims=True)
        sizes.append(np.median(np.sqrt((centred**2).sum(-1).mean(1))))
    assert sizes[0] == pytest.approx(sizes[1], rel=1e-6)
    np.testing.assert_allclose(mixed[0].coords, sampled.coords * report.scale)
    assert report.units == "mm" and "repeated" in report.describe()


def test_real_frames_in_the_users_names_follow_the_users_mapping(df3d):
    built = training_library("fly", 6400, user_keypoints=df3d.keypoints, real=[df3d], seed=0)
    assert built.keypoints == list(df3d.keypoints)
    assert built.roots == ["LF_Coxa"]  # the fly's thorax is not tracked: a coxa, 1 bone from it
    assert all(list(lib.keypoints) == list(df3d.keypoints) for lib in built.libraries)
    np.testing.assert_array_equal(built.libraries[1].coords, df3d.coords)
    assert built.mix is not None and built.mix.repeats >= 1


def test_bad_real_frames_get_one_clear_error(df3d):
    fly = load_body_model("fly")
    sampled = body_library(fly, 640)
    flat = df3d.copy(coords=df3d.coords[..., :2], keypoints=list(df3d.keypoints))
    with pytest.raises(ValueError, match="expected real 3D frames"):
        mix_real_frames(sampled, [flat])
    with pytest.raises(ValueError, match="LF_Coxa"):  # user names not mapped first
        mix_real_frames(sampled, [df3d])
    with pytest.raises(ValueError, match="share"):
        mix_real_frames(sampled, [], share=1.0)
    unnamed = df3d.copy(keypoints=[f"x{i}" for i in range(30)])
    with pytest.raises(ValueError, match="no keypoint of the real 3D frames"):
        training_library(fly, 640, real=[unnamed])
    empty = df3d.copy(coords=np.full_like(df3d.coords, np.nan))
    with pytest.raises(ValueError, match="no finite 3D point"):
        training_library(fly, 640, user_keypoints=df3d.keypoints, real=[empty])
