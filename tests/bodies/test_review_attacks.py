"""Regression tests for the hostile review's body-model and mapping-file attacks (5-8, 12).

Each bad file must give one :class:`BodyModelError` / :class:`PoseFileError` naming the file and
the problem, never a numpy/torch/recursion traceback or a model that trains to nonsense.
"""

from __future__ import annotations

import numpy as np
import pytest

from napari_liftpose.bodies import BodyModelError, load_body_model
from napari_liftpose.bodies.mapping import read_mapping_file
from napari_liftpose.bodies.model import MAX_KEYPOINTS
from napari_liftpose.io.errors import PoseFileError

VOLE = """
[model]
name = "vole"
species = "Microtus arvalis (adult)"
units = "mm"

[variation]
size_sd = 0.06
length_cv = 0.04

[keypoints.spine_mid]

[keypoints.nose]
parent = "spine_mid"
direction = [1, 0, -0.1]
length = 45.0
length_sd = 2.0
pitch = [-30, 30]
yaw = [-40, 40]

[keypoints.left_ear]
parent = "nose"
direction = [-1, 1, 0.5]
length = 12.0

[keypoints.right_ear]
parent = "nose"
direction = [-1, -1, 0.5]
length = 12.0

[edges]
display = [["spine_mid", "nose"], ["nose", "left_ear"], ["nose", "right_ear"]]

[motion]
neck = ["nose"]
behaviours = { still = 1, head_turn = 1 }
"""


def write(tmp_path, text, name="body.toml", encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def refused(path, *words):
    with pytest.raises(BodyModelError) as info:
        load_body_model(path)
    message = str(info.value)
    assert message.startswith(str(path)), message
    assert "\n" not in message and len(message) < 300, message
    for w in words:
        assert w in message, message
    return message


def chain(n: int) -> str:
    """A model whose keypoints form one chain of ``n`` bones below the root."""
    head = '[model]\nname = "chain"\nspecies = "test"\nunits = "mm"\n\n[keypoints.k0]\n'
    bones = "".join(
        f'[keypoints.k{i}]\nparent = "k{i - 1}"\ndirection = [1, 0, 0]\nlength = 1.0\n'
        for i in range(1, n + 1)
    )
    return head + bones


def test_the_base_file_loads(tmp_path):
    model = load_body_model(write(tmp_path, VOLE))
    assert model.keypoints == ["spine_mid", "nose", "left_ear", "right_ear"]


# -- 5: deep chains load in near-linear time; a cap on keypoints -----------------------------
def test_a_chain_of_the_most_keypoints_loads_and_is_a_chain(tmp_path):
    model = load_body_model(write(tmp_path, chain(MAX_KEYPOINTS - 1)))
    assert len(model.keypoints) == MAX_KEYPOINTS
    np.testing.assert_array_equal(model.parents, np.arange(-1, MAX_KEYPOINTS - 1))
    assert model.mean_pose()[-1, 0] == pytest.approx(MAX_KEYPOINTS - 1)


def test_more_keypoints_than_the_cap_are_refused(tmp_path):
    path = write(tmp_path, chain(MAX_KEYPOINTS))
    refused(path, f"{MAX_KEYPOINTS + 1} keypoints", f"at most {MAX_KEYPOINTS}")


def test_a_cycle_is_still_named_after_the_faster_tree_check(tmp_path):
    text = chain(5).replace(
        "[keypoints.k0]\n",
        '[keypoints.k0]\n[keypoints.k6]\nparent = "k7"\n'
        'direction = [1, 0, 0]\nlength = 1.0\n[keypoints.k7]\nparent = "k6"\n'
        "direction = [1, 0, 0]\nlength = 1.0\n",
    )
    refused(write(tmp_path, text), "parent cycle k6 -> k7 -> k6")


# -- 6: deeply nested TOML --------------------------------------------------------------------
def test_deeply_nested_body_model_is_not_toml(tmp_path):
    path = write(tmp_path, VOLE + "\n[extra]\nx = " + "[" * 5000 + "]" * 5000 + "\n")
    refused(path, "not TOML (nested too deeply)")


def test_deeply_nested_mapping_file_is_not_toml(tmp_path):
    path = write(tmp_path, "[mapping]\nx = " + "[" * 5000 + "]" * 5000 + "\n", "map.toml")
    with pytest.raises(PoseFileError) as info:
        read_mapping_file(path)
    assert str(info.value) == f"{path}: not TOML (nested too deeply)"


# -- 8: control characters in the model's name ------------------------------------------------
@pytest.mark.parametrize("field", ["name", "species", "units"])
def test_control_characters_in_model_strings_are_refused(tmp_path, field):
    text = VOLE.replace(f'{field} = "', f'{field} = "../x\\n\\u0000', 1)
    refused(write(tmp_path, text), f"[model] {field}", "control characters")


# -- 12: loader holes -------------------------------------------------------------------------
def test_all_zero_behaviour_weights_are_refused(tmp_path):
    text = VOLE.replace("{ still = 1, head_turn = 1 }", "{ still = 0, head_turn = 0 }")
    refused(write(tmp_path, text), "[motion] behaviours", "every weight is 0")


def test_one_zero_weight_among_others_is_fine(tmp_path):
    text = VOLE.replace("{ still = 1, head_turn = 1 }", "{ still = 0, head_turn = 1 }")
    assert load_body_model(write(tmp_path, text)).motion.behaviours == {
        "still": 0.0,
        "head_turn": 1.0,
    }


@pytest.mark.parametrize(
    ("old", "new", "words"),
    [
        ("length = 45.0", "length = 1e308", ("[keypoints.nose] length", "too large")),
        ("length = 45.0", "length = 99999999999999999999", ("[keypoints.nose] length", "1e+20")),
        ("length_sd = 2.0", "length_sd = 1e308", ("[keypoints.nose] length_sd", "<= 45")),
        ("length_sd = 2.0", "length_sd = 46", ("[keypoints.nose] length_sd", "<= 45")),
        ("size_sd = 0.06", "size_sd = 1e308", ("[variation] size_sd", "<= 1")),
        ("length_cv = 0.04", "length_cv = 100.0", ("[variation] length_cv", "<= 1")),
        ("length = 12.0", "length = 12.0\nlength_cv = 2", ("[keypoints.left_ear] length_cv",)),
    ],
)
def test_huge_lengths_and_spreads_are_refused(tmp_path, old, new, words):
    refused(write(tmp_path, VOLE.replace(old, new, 1)), *words)


def test_a_self_edge_is_refused(tmp_path):
    text = VOLE.replace('[["spine_mid", "nose"]', '[["nose", "nose"]')
    refused(write(tmp_path, text), "[edges] display", "'nose'", "itself")


def test_a_utf8_byte_order_mark_is_accepted(tmp_path):
    plain = load_body_model(write(tmp_path, VOLE, "plain.toml"))
    bom = load_body_model(write(tmp_path, VOLE, "bom.toml", encoding="utf-8-sig"))
    assert bom.keypoints == plain.keypoints and bom.name == "vole"
    np.testing.assert_array_equal(bom.mean_pose(), plain.mean_pose())


def test_a_mapping_file_with_a_byte_order_mark_is_accepted(tmp_path):
    path = write(tmp_path, '[mapping]\n"Tail 0" = "tail_base"\n', "map.toml", "utf-8-sig")
    assert read_mapping_file(path) == {"Tail 0": "tail_base"}


# -- 7: a library with a single keypoint ------------------------------------------------------
def test_train_refuses_a_library_with_one_keypoint(tmp_path):
    pytest.importorskip("torch")
    from napari_liftpose.lifting import RandomCameras
    from napari_liftpose.lifting.training import TrainConfig, train
    from napari_liftpose.poses import Poses

    rng = np.random.default_rng(0)
    library = Poses(coords=rng.normal(size=(50, 1, 1, 3)), keypoints=["root"], units="mm")
    output = tmp_path / "one.safetensors"
    with pytest.raises(ValueError, match="expected at least two keypoints .* got 1"):
        train(library, RandomCameras(), output, TrainConfig(epochs=1))
    assert not output.exists()
