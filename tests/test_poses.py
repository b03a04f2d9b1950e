"""The Poses data model checks what it is given and says what is wrong."""

from __future__ import annotations

import numpy as np
import pytest

from napari_liftpose import Poses


def _poses(**kwargs):
    base = {"coords": np.zeros((4, 2, 3, 2)), "keypoints": ["a", "b", "c"]}
    base.update(kwargs)
    return Poses(**base)


def test_defaults():
    poses = _poses()
    assert poses.individuals == ["individual_0", "individual_1"]
    assert poses.confidence.shape == (4, 2, 3) and np.isnan(poses.confidence).all()
    assert poses.edges.shape == (0, 2)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"coords": np.zeros((4, 3, 2))}, "expected shape (frames, individuals, keypoints, 2|3)"),
        ({"coords": np.zeros((4, 2, 3, 4))}, "got (4, 2, 3, 4)"),
        ({"keypoints": ["a", "b"]}, "keypoints: expected 3 names, got 2"),
        ({"keypoints": ["a", "b", "a"]}, "duplicates ['a']"),
        ({"individuals": ["x"]}, "individuals: expected 2 names, got 1"),
        ({"confidence": np.zeros((4, 2))}, "confidence: expected shape (4, 2, 3)"),
        ({"edges": [[0, 3]]}, "edges: expected indices in 0..2, got [[0, 3]]"),
        ({"fps": -1}, "fps: expected a positive number"),
    ],
)
def test_validation_messages(kwargs, message):
    with pytest.raises(ValueError) as info:
        _poses(**kwargs)
    assert message in str(info.value)


def test_select_keypoints_reorders_and_keeps_edges():
    coords = np.arange(4 * 1 * 3 * 2, dtype=float).reshape(4, 1, 3, 2)
    poses = _poses(coords=coords, edges=[[0, 1], [1, 2]], individuals=["m"])
    picked = poses.select_keypoints(["c", "b"])
    np.testing.assert_array_equal(picked.coords[:, :, 0], coords[:, :, 2])
    assert picked.edge_names() == [("b", "c")]
    with pytest.raises(ValueError, match=r"\['z'\]"):
        poses.select_keypoints(["z"])
