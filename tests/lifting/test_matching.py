"""lifting/matching.py and lifting/camera_defaults.py: the checks and defaults the CLI calls."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from napari_liftpose import Poses
from napari_liftpose.io.errors import PoseFileError
from napari_liftpose.lifting.camera_defaults import animal_size, default_distance, up_vector
from napari_liftpose.lifting.matching import (
    keypoint_mismatch,
    require_keypoints,
    require_liftable,
    require_same_frames,
    require_space,
)


def poses(frames=4, keypoints=("a", "b", "c"), space=2, source="x.npz", fill=1.0):
    coords = np.full((frames, 1, len(keypoints), space), fill)
    return Poses(coords, list(keypoints), source=source)


def test_keypoint_mismatch_lists_missing_and_extra_only_when_something_is_missing():
    assert keypoint_mismatch(["a", "b"], ["b", "a", "z"]) is None  # order and extras are fine
    assert keypoint_mismatch(["a", "b"], ["a", "z"]) == "missing: ['b']; extra: ['z']"


def test_checks_name_the_file_and_the_problem():
    with pytest.raises(PoseFileError, match=r"^t\.h5: expected 2D tracks to lift, got 3D poses$"):
        require_space(poses(space=3), 2, "t.h5", "to lift")
    with pytest.raises(PoseFileError, match=r"x\.npz: keypoints do not match the model m: missing"):
        require_keypoints(poses(keypoints=("a",)), ["a", "b"], "the model m")
    with pytest.raises(PoseFileError, match=r"truth\.npz: expected 4 frames x 1 individuals like x\.npz, got 3 x 1"):
        require_same_frames(poses(3, source="truth.npz"), poses())
    require_space(poses(), 2)
    require_keypoints(poses(), ["c", "a"], "the model m")
    require_same_frames(poses(), poses())


def test_require_liftable_refuses_an_all_nan_result():
    require_liftable(poses(space=3))
    with pytest.raises(PoseFileError, match="nothing liftable.*'Trunk'"):
        require_liftable(poses(space=3, fill=np.nan), "in.slp", root="Trunk")


def test_default_distance_is_5_to_10_animal_sizes_in_any_units():
    rng = np.random.default_rng(0)
    body = rng.normal(size=(50, 1, 6, 3))
    body /= np.linalg.norm(body - body.mean(2, keepdims=True), axis=-1).max(-1)[..., None, None]
    mm = Poses(body * 2.0, list("abcdef"))  # every pose's largest radius: 2
    assert animal_size([mm]) == pytest.approx(2.0)
    assert default_distance([mm]) == pytest.approx((10.0, 20.0))
    metres = Poses(body * 0.002, list("abcdef"))
    assert default_distance([metres]) == pytest.approx((0.01, 0.02))
    spoiled = (body * 2.0).copy()
    spoiled[0, 0, 0, 1] = np.inf  # an infinite coordinate is a missing point, not a huge animal
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert animal_size([Poses(spoiled, list("abcdef"))]) == pytest.approx(2.0)
    empty = Poses(np.full((3, 1, 6, 3), np.nan), list("abcdef"))
    assert animal_size([empty]) == 1.0


def test_up_vector():
    assert up_vector("z") == (0.0, 0.0, 1.0) and up_vector("-y") == (0.0, -1.0, 0.0)
    with pytest.raises(ValueError, match="up: expected"):
        up_vector("w")
