"""Body-model files: the shipped ones load; each bad file gets one message naming it and the problem."""

from __future__ import annotations

import numpy as np
import pytest

from napari_liftpose.bodies import BodyModelError, load_body_model, shipped_models
from napari_liftpose.io.errors import PoseFileError

with open(shipped_models()["mouse"], encoding="utf-8") as _f:
    MOUSE_TEXT = _f.read()

MINIMAL = """
[model]
name = "worm"
species = "test"
units = "mm"

[keypoints.a]
[keypoints.b]
parent = "a"
direction = [1, 0, 0]
length = 2.0
pitch = [-10, 10]
"""


def write(tmp_path, text, name="body.toml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("name", ["mouse", "fly"])
def test_shipped_models_load(name):
    model = load_body_model(name)
    assert model.name == name
    assert len(set(model.keypoints)) == len(model.keypoints)
    assert model.edges.shape == (len(model.keypoints) - 1, 2)  # the tree
    pose = model.mean_pose()
    assert np.isfinite(pose).all() and np.isclose(pose[:, 2].min(), 0.0)
    lengths = model.bone_lengths(pose)
    assert np.isnan(lengths[model.index(model.root)])
    finite = np.isfinite(lengths)
    np.testing.assert_allclose(lengths[finite], model.lengths[finite], rtol=1e-9)
    for a, b in model.pairs:  # the rest pose is mirror-symmetric
        np.testing.assert_allclose(
            pose[model.index(a)] * [1, -1, 1], pose[model.index(b)], atol=1e-9
        )
    assert all(
        k.source is None or k.source in {c["id"] for c in model.citations} for k in model.nodes
    )


def test_shipped_names_match_the_agreed_canonical_names():
    mouse = load_body_model("mouse")
    expected = (
        "nose left_eye right_eye left_ear right_ear head neck spine_front spine_mid spine_back "
        "tail_base tail_1 tail_2 tail_3 tail_tip"
    ).split()
    for side in ("left", "right"):
        expected += [f"{side}_{j}" for j in ("shoulder", "elbow", "wrist", "forepaw")]
        expected += [f"{side}_{j}" for j in ("hip", "knee", "ankle", "hindpaw")]
    assert sorted(mouse.keypoints) == sorted(expected)
    fly = load_body_model("fly")
    expected = ["head", "thorax", "abdomen", "left_antenna", "right_antenna"]
    for side in ("left", "right"):
        for leg in ("front", "middle", "hind"):
            expected += [f"{side}_{leg}_{j}" for j in ("coxa", "femur", "tibia", "tarsus", "claw")]
    assert sorted(fly.keypoints) == sorted(expected)
    assert "LF_Coxa" in fly.aliases["left_front_coxa"]
    assert len(fly.pairs) == 16 and len(mouse.pairs) == 10


def test_minimal_file_and_mean_pose(tmp_path):
    model = load_body_model(write(tmp_path, MINIMAL))
    assert model.keypoints == ["a", "b"] and model.root == "a"
    np.testing.assert_allclose(model.mean_pose(), [[0, 0, 0], [2, 0, 0]])
    assert model.behaviours == ["still"]
    # +pitch turns a forward bone down (right-hand rule about y)
    angles = np.zeros((2, 3))
    angles[1, 1] = 90
    np.testing.assert_allclose(model.forward_kinematics(angles)[1], [0, 0, -2], atol=1e-12)


BAD = [
    (MINIMAL.replace('parent = "a"', 'parent = "c"'), "[keypoints.b] parent: unknown keypoint 'c'"),
    (
        MINIMAL.replace("length = 2.0", "length = -2.0"),
        "[keypoints.b] length: out of range value -2",
    ),
    (
        MINIMAL.replace("pitch = [-10, 10]", "pitch = [10, -10]"),
        "[keypoints.b] pitch: min 10 > max -10",
    ),
    (MINIMAL + "\n[keypoints.c]\n", "2 roots (a, c)"),
    (
        MINIMAL.replace("[keypoints.b]", "[keypoints.b]\nlength_cv = -0.1"),
        "length_cv: negative value",
    ),
    (MINIMAL.replace("direction = [1, 0, 0]", "direction = [0, 0, 0]"), "zero vector"),
    (MINIMAL.replace("pitch =", "pitchh ="), "[keypoints.b]: unknown key 'pitchh'"),
    (MINIMAL.replace('units = "mm"', ""), "[model]: missing 'units'"),
    (MINIMAL.replace("length = 2.0", 'length = "long"'), "length: expected a number"),
    (MINIMAL + "\n[motion]\nlegs = ['x']\n", "[motion] legs: unknown keypoint 'x'"),
    (MINIMAL + "\n[edges]\ndisplay = [['a', 'z']]\n", "[edges] display: unknown keypoint 'z'"),
    (MINIMAL + "\n[symmetry]\npairs = [['a', 'b']]\n", "not mirror images"),
    (MINIMAL.replace("pitch = [-10, 10]", 'aliases = ["A"]'), "aliases: 'A' already names 'a'"),
    (
        MINIMAL.replace("[keypoints.b]", "[keypoints.b]\nsource = 'nowhere'"),
        "not a [[citations]] id",
    ),
    (MINIMAL + "\n[motion]\nbehaviours = { fly_away = 1 }\n", "unknown behaviour 'fly_away'"),
]


@pytest.mark.parametrize("text, problem", BAD)
def test_bad_files_name_the_file_and_the_problem(tmp_path, text, problem):
    path = write(tmp_path, text)
    with pytest.raises(BodyModelError) as info:
        load_body_model(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    assert problem in message
    assert "\n" not in message
    assert isinstance(info.value, PoseFileError)  # the CLI reports these as one line


def test_cycle_without_root_is_named(tmp_path):
    text = MINIMAL.replace(
        "[keypoints.a]", '[keypoints.a]\nparent = "b"\ndirection = [1, 0, 0]\nlength = 1.0'
    )
    with pytest.raises(BodyModelError, match=r"parent cycle (a -> b -> a|b -> a -> b)"):
        load_body_model(write(tmp_path, text))


def test_toml_syntax_error_gives_the_line(tmp_path):
    path = write(tmp_path, MOUSE_TEXT.replace("length = 20.0", "length = 20.0 mm", 1))
    with pytest.raises(BodyModelError, match=r"TOML syntax error: .*line \d+") as info:
        load_body_model(path)
    assert str(info.value).startswith(str(path))


def test_missing_file_and_unknown_name(tmp_path):
    with pytest.raises(BodyModelError, match="file not found"):
        load_body_model(tmp_path / "nope.toml")
    with pytest.raises(BodyModelError, match="no such body model; shipped models: mouse"):
        load_body_model("elephant")
    with pytest.raises(BodyModelError, match="is a folder"):
        load_body_model(tmp_path)
