"""Keypoint mapping onto body models: real skeletons of the shared recordings, spellings,
synonyms, ambiguity, overrides and mapping files."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from napari_liftpose.bodies.mapping import (
    format_mapping_file,
    map_keypoints,
    read_mapping_file,
    read_name,
    to_model_poses,
    to_user_poses,
)
from napari_liftpose.io import read_poses
from napari_liftpose.io.errors import PoseFileError
from napari_liftpose.poses import Poses

# The canonical names agreed for the shipped body models (the body-model files use these).
MOUSE = [
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "head", "neck", "spine_front",
    "spine_mid", "spine_back", "tail_base", "tail_1", "tail_2", "tail_3", "tail_tip",
    "left_shoulder", "left_elbow", "left_wrist", "left_forepaw", "right_shoulder", "right_elbow",
    "right_wrist", "right_forepaw", "left_hip", "left_knee", "left_ankle", "left_hindpaw",
    "right_hip", "right_knee", "right_ankle", "right_hindpaw",
]  # fmt: skip
LEGS = {"LF": "left_front", "LM": "left_middle", "LH": "left_hind"}
LEGS |= {"RF": "right_front", "RM": "right_middle", "RH": "right_hind"}
JOINTS = ("coxa", "femur", "tibia", "tarsus", "claw")
FLY = ["head", "thorax", "abdomen", "left_antenna", "right_antenna"]
FLY += [f"{leg}_{joint}" for leg in LEGS.values() for joint in JOINTS]


# -- the real skeletons of the shared recordings ------------------------------------------------
def test_sleap_anipose_session_maps_every_node(data_dir):
    poses = read_poses(data_dir / "sleap_anipose_minimal_session/top/minimal_top_proofread.slp")
    mapping = map_keypoints(poses.keypoints, MOUSE)
    assert mapping.pairs == {
        "Nose": "nose",
        "Ear_R": "right_ear",
        "Ear_L": "left_ear",
        "TTI": "tail_base",
        "TailTip": "tail_tip",
        "Head": "head",
        "Trunk": "spine_mid",
        "Tail_0": "tail_1",
        "Tail_1": "tail_2",
        "Tail_2": "tail_3",
        "Shoulder_left": "left_shoulder",
        "Shoulder_right": "right_shoulder",
        "Haunch_left": "left_hip",
        "Haunch_right": "right_hip",
        "Neck": "neck",
    }
    assert mapping.unmapped_user == []
    assert "left_eye" in mapping.unmapped_model and "nose" not in mapping.unmapped_model


def test_openfield_dlc_four_keypoints(data_dir):
    poses = read_poses(data_dir / "dlc_openfield_csv/openfield_dlc_inference_example.csv")
    mapping = map_keypoints(poses.keypoints, MOUSE)
    assert mapping.pairs == {
        "snout": "nose",
        "leftear": "left_ear",
        "rightear": "right_ear",
        "tailbase": "tail_base",
    }
    model = to_model_poses(poses, mapping)
    assert model.keypoints == ["nose", "left_ear", "right_ear", "tail_base"]  # model order
    column = poses.keypoints.index("tailbase")
    np.testing.assert_array_equal(model.coords[..., 3, :], poses.coords[..., column, :])
    np.testing.assert_array_equal(model.confidence[..., 3], poses.confidence[..., column])


def test_dlc_reaching_33_bodyparts(data_dir):
    folder = data_dir / "dlc_reaching_2d"
    poses = read_poses(folder / "reachingDEMO_2D.h5")
    config = yaml.safe_load((folder / "config.yaml").read_text())
    skeleton_names = {name for bone in config["skeleton"] for name in bone}
    assert skeleton_names <= set(poses.keypoints)
    mapping = map_keypoints(poses.keypoints, MOUSE)
    assert mapping.pairs == {
        "nose": "nose",
        "Left_wrist": "left_wrist",
        "left_backofhand": "left_forepaw",
        "Left_elbow": "left_elbow",
        "Right_wrist": "right_wrist",
        "Right_backofhand": "right_forepaw",
        "Right_elbow": "right_elbow",
        "R_shoulder": "right_shoulder",
    }
    assert len(mapping.unmapped_user) == 33 - 8
    for name in ("R_Finger1_Tip", "R_Wrist_Top", "joystick", "L_Finger2"):
        assert mapping.reasons[name] == "no body-model keypoint of that name"
    message = mapping.describe()
    assert "8 of 33 keypoints mapped" in message
    assert "carried through as NaN" in message and "joystick" in message


def test_deepfly3d_fly_legs(data_dir):
    with np.load(data_dir / "fly_df3d_210902/points3d.npz", allow_pickle=False) as z:
        names = [str(n) for n in z["keypoints"]]
    mapping = map_keypoints(names, FLY)
    expected = {f"{code}_{joint.capitalize()}": f"{leg}_{joint}" for code, leg in LEGS.items()
                for joint in JOINTS}  # fmt: skip
    assert mapping.pairs == expected
    assert mapping.unmapped_model == ["head", "thorax", "abdomen", "left_antenna", "right_antenna"]


# -- spellings ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name",
    ["left_ear", "Left_Ear", "LeftEar", "leftear", "L_ear", "l-ear", "Ear_L", "ear_l", "EarL",
     "lEar", "ear.left", "Lft ear", "lt_ear", "ear Left", "EAR_LEFT"],
)  # fmt: skip
def test_left_spellings(name):
    assert map_keypoints([name], MOUSE).pairs == {name: "left_ear"}
    assert read_name(name) == ("left", None, "ear")


@pytest.mark.parametrize(
    ("name", "model"),
    [("R_hip", "right_hip"), ("Rgt_Haunch", "right_hip"), ("hip_right", "right_hip"),
     ("rt-shoulder", "right_shoulder"), ("RightHindPaw", "right_hindpaw"),
     ("hind_paw_r", "right_hindpaw"), ("R_foot", "right_hindpaw"), ("rear_paw_R", "right_hindpaw"),
     ("left_front_paw", "left_forepaw"), ("L_hand", "left_forepaw"), ("fore_paw_L", "left_forepaw"),
     ("LF_paw", "left_forepaw"), ("RH_paw", "right_hindpaw"), ("Snout", "nose"),
     ("tail_root", "tail_base"), ("base_of_tail", "tail_base"), ("TailBase", "tail_base"),
     ("tail-end", "tail_tip"), ("tailend", "tail_tip"), ("centroid", "spine_mid"),
     ("body", "spine_mid"), ("back", "spine_mid"), ("mid_spine", "spine_mid"),
     ("withers", "spine_front"), ("lumbar", "spine_back"), ("skull", "head"),
     ("L_hock", "left_ankle")],
)  # fmt: skip
def test_mouse_synonyms(name, model):
    assert map_keypoints([name], MOUSE).pairs == {name: model}


@pytest.mark.parametrize(
    ("name", "model"),
    [("L1_coxa", "left_front_coxa"), ("R2-Femur", "right_middle_femur"),
     ("T3_L_tibia", "left_hind_tibia"), ("left_fore_tarsus", "left_front_tarsus"),
     ("mid_leg_right_claw", None), ("RM_tip", "right_middle_claw"),
     ("hind_left_TarsusTip", "left_hind_claw"), ("L1A", "left_front_coxa"),
     ("R3E", "right_hind_claw"), ("FL_Femur", "left_front_femur"), ("Thorax", "thorax"),
     ("abdomen_tip", "abdomen"), ("R_antenna", "right_antenna")],
)  # fmt: skip
def test_fly_leg_codes(name, model):
    mapping = map_keypoints([name], FLY)
    assert mapping.pairs == ({name: model} if model else {})


def test_exact_and_closer_spellings_win_over_synonyms():
    mapping = map_keypoints(["snout", "nose"], MOUSE)
    assert mapping.pairs == {"nose": "nose"}
    assert mapping.reasons["snout"] == "nose is taken by nose (spelled closer)"
    mapping = map_keypoints(["Spine_Mid", "trunk"], MOUSE)
    assert mapping.pairs == {"Spine_Mid": "spine_mid"}


def test_two_synonyms_of_one_model_keypoint_are_left_unmapped():
    mapping = map_keypoints(["Trunk", "centroid", "snout"], MOUSE)
    assert mapping.pairs == {"snout": "nose"}
    assert mapping.unmapped_user == ["Trunk", "centroid"]
    assert mapping.reasons["Trunk"] == "ambiguous: Trunk and centroid could both be spine_mid"
    assert "ambiguous" in mapping.describe() and "spine_mid" in mapping.describe()
    assert len(set(mapping.pairs.values())) == len(mapping.pairs)


def test_a_name_that_could_be_two_model_keypoints_is_left_unmapped():
    mapping = map_keypoints(["trunk"], ["spine_mid", "body_centre"])
    assert mapping.pairs == {}
    assert mapping.reasons["trunk"] == "ambiguous: could be spine_mid or body_centre"


def test_side_is_never_guessed():
    mapping = map_keypoints(["ear", "paw", "Finger1"], MOUSE)
    assert mapping.pairs == {}
    assert mapping.unmapped_user == ["ear", "paw", "Finger1"]
    assert mapping.reasons["ear"] == "no side given: left_ear or right_ear?"
    assert mapping.reasons["paw"] == "no body-model keypoint of that name"


def test_body_model_aliases():
    mapping = map_keypoints(["whisker_pad", "Nose"], MOUSE, aliases={"nose": ["whisker pad"]})
    assert mapping.pairs == {"Nose": "nose"}  # exact-reading Nose beats the alias
    mapping = map_keypoints(["WhiskerPad", "TTI"], MOUSE, aliases={"nose": ["whisker_pad"]})
    assert mapping.pairs == {"WhiskerPad": "nose", "TTI": "tail_base"}
    with pytest.raises(ValueError, match="not keypoints of the body model"):
        map_keypoints(["x"], MOUSE, aliases={"whiskers": ["x"]})


# -- numbered tail points -------------------------------------------------------------------
def test_numbered_tail_points_in_order():
    users = ["TailBase", "tail1", "tail3", "tail2", "TailTip"]  # order of the numbers counts
    mapping = map_keypoints(users, MOUSE)
    assert [mapping.pairs[u] for u in ("tail1", "tail2", "tail3")] == ["tail_1", "tail_2", "tail_3"]


def test_numbered_tail_points_spanning_base_to_tip():
    users = [f"Tail_{i}" for i in range(5)]
    mapping = map_keypoints(users, MOUSE)
    assert [mapping.pairs[u] for u in users] == MOUSE[10:15]


def test_numbered_tail_points_that_do_not_fit_stay_unmapped():
    mapping = map_keypoints(["tail_base", "Tail0", "Tail1"], MOUSE)
    assert mapping.pairs == {"tail_base": "tail_base"}
    assert "2 numbered tail points cannot be placed" in mapping.reasons["Tail0"]
    assert "mapping file" in mapping.describe()


# -- overrides and mapping files ------------------------------------------------------------
def test_overrides_win_and_drop():
    users = ["Nose", "Trunk", "Head", "TTI"]
    mapping = map_keypoints(users, MOUSE, overrides={"Trunk": "spine_back", "Head": ""})
    assert mapping.pairs == {"Nose": "nose", "Trunk": "spine_back", "TTI": "tail_base"}
    assert mapping.reasons["Head"] == "dropped by the mapping"
    assert mapping.overridden == ["Trunk", "Head"]
    # an override's target is not offered to the automatic mapping
    mapping = map_keypoints(users, MOUSE, overrides={"Head": "nose"})
    assert mapping.pairs["Head"] == "nose" and "Nose" in mapping.unmapped_user


def test_overrides_for_absent_names_are_reported():
    mapping = map_keypoints(["snout"], MOUSE, overrides={"Snout_typo": "nose"})
    assert mapping.pairs == {"snout": "nose"}
    assert mapping.ignored_overrides == ["Snout_typo"]
    assert "Snout_typo" in mapping.describe()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [({"a": "whiskers"}, "'whiskers' is not a keypoint of the body model"),
     ({"a": "nose", "b": "nose"}, "'a' and 'b' both map to 'nose'")],
)  # fmt: skip
def test_bad_overrides(overrides, message):
    with pytest.raises(ValueError, match=message):
        map_keypoints(["a", "b"], MOUSE, overrides=overrides)


def test_duplicate_user_names_are_refused():
    with pytest.raises(ValueError, match="duplicates"):
        map_keypoints(["nose", "nose"], MOUSE)


def test_mapping_file_round_trip(tmp_path, data_dir):
    poses = read_poses(data_dir / "sleap_anipose_minimal_session/top/minimal_top_proofread.slp")
    auto = map_keypoints(poses.keypoints + ['Odd name "x"'], MOUSE)
    path = tmp_path / "mapping.toml"
    path.write_text(format_mapping_file(auto), encoding="utf-8")
    read = read_mapping_file(path, MOUSE)
    assert {u: m for u, m in read.items() if m} == auto.pairs
    assert read['Odd name "x"'] == ""
    again = map_keypoints(poses.keypoints + ['Odd name "x"'], MOUSE, overrides=read)
    assert again.pairs == auto.pairs


def test_mapping_file_overrides(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('[mapping]\n"Tail 0" = "tail_base"\nTrunk = ""\nblob = "spine_back"\n')
    overrides = read_mapping_file(path, MOUSE)
    mapping = map_keypoints(["Tail 0", "Trunk", "blob", "snout"], MOUSE, overrides=overrides)
    assert mapping.pairs == {"Tail 0": "tail_base", "blob": "spine_back", "snout": "nose"}


@pytest.mark.parametrize(
    ("text", "problem"),
    [('[mapping]\nsnout = "nose"\nnose = \n', "not a TOML mapping file"),
     ('snout = "nose"\n', "expected a [mapping] table"),
     ('mapping = "nose"\n', "expected a [mapping] table of user_name = \"model_name\", got str"),
     ('[mapping]\nsnout = 3\n', "[mapping] 'snout': expected a body-model keypoint name"),
     ('[mapping]\nsnout = "nose"\nNose = "nose"\n', "'snout' and 'Nose' both map to 'nose'"),
     ('[mapping]\nsnout = "snoot"\n', "'snoot' is not a keypoint of the body model"),
     ('[mapping]\nsnout = "nose"\nsnout = "head"\n', "not a TOML mapping file")],
)  # fmt: skip
def test_bad_mapping_files(tmp_path, text, problem):
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PoseFileError) as err:
        read_mapping_file(path, MOUSE)
    assert str(err.value).startswith(f"{path}: ")
    assert problem in str(err.value)


def test_mapping_file_not_utf8_or_missing(tmp_path):
    path = tmp_path / "latin.toml"
    path.write_bytes('[mapping]\n"Öhr" = "left_ear"\n'.encode("latin-1"))
    with pytest.raises(PoseFileError, match="not UTF-8"):
        read_mapping_file(path)
    with pytest.raises(PoseFileError, match="file not found"):
        read_mapping_file(tmp_path / "absent.toml")
    with pytest.raises(PoseFileError, match="folder"):
        read_mapping_file(tmp_path)


def test_mapping_file_without_model_names_checks_duplicates_only(tmp_path):
    path = tmp_path / "m.toml"
    path.write_text('[mapping]\nsnout = "anything"\n', encoding="utf-8")
    assert read_mapping_file(path) == {"snout": "anything"}


# -- applying a mapping to poses --------------------------------------------------------------
def test_model_poses_and_back_to_user_keypoints(data_dir):
    poses = read_poses(data_dir / "sleap_anipose_minimal_session/top/minimal_top_proofread.slp")
    poses = poses.copy(keypoints=["Blob" if k == "Trunk" else k for k in poses.keypoints])
    mapping = map_keypoints(poses.keypoints, MOUSE)
    assert mapping.unmapped_user == ["Blob"]

    model = to_model_poses(poses, mapping)
    assert model.keypoints == [m for m in MOUSE if m in mapping.pairs.values()]
    assert ("tail_base", "head") in model.edge_names()  # TTI-Head bone, renamed
    complete = to_model_poses(poses, mapping, complete=True)
    assert complete.keypoints == MOUSE
    assert np.isnan(complete.coords[:, :, MOUSE.index("left_eye")]).all()
    np.testing.assert_array_equal(
        complete.coords[:, :, MOUSE.index("tail_1")],
        poses.coords[:, :, poses.keypoints.index("Tail_0")],
    )

    # a "lifted" 3D result on the complete model skeleton goes back onto the user's keypoints
    rng = np.random.default_rng(0)
    lifted = Poses(
        coords=rng.normal(size=(*complete.coords.shape[:3], 3)),
        keypoints=MOUSE,
        uncertainty=np.abs(rng.normal(size=complete.coords.shape[:3])),
        units="mm",
    )
    back = to_user_poses(lifted, mapping, edges=poses.edges)
    assert back.keypoints == poses.keypoints and back.n_space == 3
    assert back.edge_names() == poses.edge_names()
    blob = poses.keypoints.index("Blob")
    assert np.isnan(back.coords[:, :, blob]).all() and np.isnan(back.uncertainty[:, :, blob]).all()
    for user, model_name in mapping.pairs.items():
        i, j = poses.keypoints.index(user), MOUSE.index(model_name)
        np.testing.assert_array_equal(back.coords[:, :, i], lifted.coords[:, :, j])
        np.testing.assert_array_equal(back.uncertainty[:, :, i], lifted.uncertainty[:, :, j])


def test_applying_a_mapping_that_does_not_fit(data_dir):
    poses = read_poses(data_dir / "dlc_openfield_csv/openfield_dlc_inference_example.csv")
    with pytest.raises(ValueError, match="no keypoint maps onto the body model"):
        to_model_poses(poses, map_keypoints(poses.keypoints, FLY))
    mapping = map_keypoints(poses.keypoints, MOUSE)
    lifted = Poses(coords=np.zeros((2, 1, 2, 3)), keypoints=["nose", "left_ear"])
    with pytest.raises(ValueError, match=r"lack the mapped body-model keypoints \['right_ear'"):
        to_user_poses(lifted, mapping)


# -- the shipped body model's own names and aliases -------------------------------------------
def test_shipped_mouse_model_with_its_aliases(data_dir):
    model_module = pytest.importorskip("napari_liftpose.bodies.model")
    body = model_module.load_body_model("mouse")
    assert sorted(body.keypoints) == sorted(MOUSE)
    poses = read_poses(data_dir / "sleap_anipose_minimal_session/top/minimal_top_proofread.slp")
    with_aliases = map_keypoints(poses.keypoints, body.keypoints, aliases=body.aliases)
    assert with_aliases.pairs == map_keypoints(poses.keypoints, MOUSE).pairs
    poses = read_poses(data_dir / "dlc_openfield_csv/openfield_dlc_inference_example.csv")
    with_aliases = map_keypoints(poses.keypoints, body.keypoints, aliases=body.aliases)
    assert with_aliases.pairs == map_keypoints(poses.keypoints, MOUSE).pairs
