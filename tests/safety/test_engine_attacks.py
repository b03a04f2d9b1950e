"""Hostile and unlucky input for the engine's new surfaces: uncertainty, suspicion, ``flags``.

Model files whose ``uncertainty`` or ``bone_stats`` metadata is malformed, pose files whose
``uncertainty`` / ``suspicion`` arrays are not what they claim, anipose CSVs with odd ``_error``
columns, and 2D tracks at the edges (one frame, missing frames, one keypoint, no left/right
names, 3D, an individual never seen). Each is built here and fed through the paths users take
(the installed CLI, ``read_poses``, ``load_lifter``); the promise is one error naming the file
(exit 2 and one line for the CLI), never a traceback, and a good file keeps working.
"""

from __future__ import annotations

import copy
import os

import h5py
import numpy as np
import pytest

from napari_liftpose import Poses
from napari_liftpose.io import PoseFileError, read_poses, write_poses
from napari_liftpose.lifting import (
    ModelFileError,
    TrainConfig,
    camera_from_angles,
    load_checkpoint,
    load_lifter,
    save_checkpoint,
    train,
)
from napari_liftpose.lifting.corruptions import _body_size, corrupt_frames

from .conftest import assert_one_line_error, run_cli

CAMERA = dict(azimuth=90, elevation=20, distance=20)


# -- a tiny trained model and its 2D ---------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(fly_small, tmp_path_factory):
    """A tiny known-camera MLP (with uncertainty and bone_stats) and 60 frames of its 2D."""
    work = tmp_path_factory.mktemp("engine")
    camera = camera_from_angles(**CAMERA)
    model = work / "good.safetensors"
    config = TrainConfig(model="mlp", epochs=1, device="cpu", architecture={"width": 8})
    train(
        fly_small.copy(
            coords=fly_small.coords[:150].copy(), confidence=fly_small.confidence[:150].copy()
        ),
        camera,
        model,
        config,
    )
    tensors, meta = load_checkpoint(model)
    assert meta.get("uncertainty") and meta.get("bone_stats")  # the fields under attack exist
    image = camera.project(fly_small.coords[150:])
    tracks = work / "tracks.npz"
    write_poses(Poses(image, fly_small.keypoints, units="px"), tracks)
    return {
        "work": work,
        "model": model,
        "tensors": tensors,
        "meta": meta,
        "image": image,
        "keypoints": list(fly_small.keypoints),
        "tracks": tracks,
    }


def variant(trained, tmp_path, change, name="variant.safetensors"):
    """The trained model with ``change(meta)`` applied, written with save_checkpoint."""
    meta = copy.deepcopy(trained["meta"])
    change(meta)
    return save_checkpoint(tmp_path / name, trained["tensors"], meta)


def refused(path, *needles: str) -> str:
    with pytest.raises(ModelFileError) as info:
        load_lifter(path, device="cpu")
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "\n" not in message, message
    for needle in needles:
        assert needle in message, (needle, message)
    return message


def nested(depth: int) -> list:
    out: list = []
    for _ in range(depth):
        out = [out]
    return out


def _set(*keys_and_value):
    """A metadata change: ``meta[k1][k2]... = value`` (value last)."""
    *keys, value = keys_and_value

    def change(meta):
        target = meta
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value(meta) if callable(value) else value

    return change


def _pop(*keys):
    def change(meta):
        target = meta
        for key in keys[:-1]:
            target = target[key]
        target.pop(keys[-1])

    return change


K = 30  # keypoints of the fly
BONES = 24


def _bones(value):
    return lambda meta: [value] * len(meta["bone_stats"]["bones"])


# -- model metadata ------------------------------------------------------------------------------
UNCERTAINTY_ATTACKS = {
    "a string": _set("uncertainty", "abc"),
    "a list": _set("uncertainty", [1, 2]),
    "NaN floor": _set("uncertainty", "floor", [float("nan")] * K),
    "inf factors": _set("uncertainty", "visible", [float("inf")] * K),
    "negative factors": _set("uncertainty", "hidden", [-1.0] * K),
    "a million factors": _set("uncertainty", "visible", [1.0] * 1_000_000),
    "nested factors": _set("uncertainty", "visible", nested(500)),
    "text factors": _set("uncertainty", "visible", ["1"] * K),
    "boolean factors": _set("uncertainty", "visible", [True] * K),
    "an integer too large for a float": _set("uncertainty", "visible", [10**400] * K),
    "radii that overflow": lambda m: m["uncertainty"].update(
        floor=[1e200] * K, visible=[1e200] * K
    ),
    "missing factors": _pop("uncertainty", "rootless"),
    "coverage as text": _set("uncertainty", "coverage", "0.8"),
    "coverage NaN": _set("uncertainty", "coverage", float("nan")),
    "a huge integer coverage": _set("uncertainty", "coverage", 10**400),
    "negative draws": _set("uncertainty", "draws", -1),
    "no version": _set("uncertainty", "version", None),
}

BONE_STATS_ATTACKS = {
    "a string": _set("bone_stats", "abc"),
    "a list": _set("bone_stats", [1, 2]),
    "bones an integer": _set("bone_stats", "bones", 5),
    "no medians": _pop("bone_stats", "median"),
    "fewer medians than bones": _set("bone_stats", "median", [0.0] * 3),
    "text medians": _set("bone_stats", "median", _bones("x")),
    "NaN medians": _set("bone_stats", "median", _bones(float("nan"))),
    "zero spreads": _set("bone_stats", "spread", _bones(0.0)),
    "negative spreads": _set("bone_stats", "spread", _bones(-1.0)),
    "infinite spreads": _set("bone_stats", "spread", _bones(float("inf"))),
    "huge integer medians": _set("bone_stats", "median", _bones(10**400)),
    "bones not in the keypoints": _set("bone_stats", "bones", _bones(["nope", "nada"])),
    "three-name bones": _set("bone_stats", "bones", _bones(["LF_Coxa", "LF_Femur", "LF_Tibia"])),
    "index bones": _set("bone_stats", "bones", _bones([1, 2])),
    "nested bones": _set("bone_stats", "bones", nested(500)),
    "200,000 bones": _set(
        "bone_stats",
        lambda m: {
            "bones": [["LF_Coxa", "LF_Femur"]] * 200_000,
            "median": [0.0] * 200_000,
            "spread": [0.1] * 200_000,
        },
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("attack", list(UNCERTAINTY_ATTACKS))
def test_malformed_uncertainty_metadata_is_refused_naming_the_file(trained, tmp_path, attack):
    path = variant(trained, tmp_path, UNCERTAINTY_ATTACKS[attack])
    refused(path, "uncertainty")


@pytest.mark.slow
@pytest.mark.parametrize("attack", list(BONE_STATS_ATTACKS))
def test_malformed_bone_stats_are_refused_naming_the_file(trained, tmp_path, attack):
    path = variant(trained, tmp_path, BONE_STATS_ATTACKS[attack])
    refused(path, "bone_stats")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("field", "attack"),
    [
        ("uncertainty", "an integer too large for a float"),
        ("bone_stats", "bones an integer"),
        ("bone_stats", "fewer medians than bones"),
    ],
)
def test_malformed_engine_metadata_through_the_cli(trained, tmp_path, field, attack):
    """Before the fix: ``unexpected OverflowError`` / ``TypeError`` / a zip() message, no file
    named, and for bone_stats only after the whole lift had run."""
    attacks = UNCERTAINTY_ATTACKS if field == "uncertainty" else BONE_STATS_ATTACKS
    path = variant(trained, tmp_path, attacks[attack])
    out = tmp_path / "lifted.npz"
    assert_one_line_error(run_cli("flags", path, trained["tracks"]), str(path), field)
    assert_one_line_error(run_cli("lift", path, trained["tracks"], "-o", out), str(path), field)
    assert not out.exists()


@pytest.mark.slow
@pytest.mark.parametrize(
    "change",
    [
        _set("bone_stats", None),
        _set("bone_stats", {}),
        lambda m: m["bone_stats"].update(bones=[], median=[], spread=[]),
        _set("bone_stats", "median", _bones(None)),  # bones never seen in the library
        lambda m: m.update(edges=[], bone_stats=None),  # a lifter with no skeleton
        _pop("uncertainty"),  # an older file
        _set("uncertainty", "draws", 2),  # an ensemble spread
    ],
    ids=[
        "no bone_stats",
        "empty",
        "no bones",
        "null medians",
        "no edges",
        "no uncertainty",
        "draws",
    ],
)
def test_well_formed_variants_still_lift_and_score(trained, tmp_path, change):
    lifter = load_lifter(variant(trained, tmp_path, change), device="cpu")
    lifted = lifter.lift(read_poses(trained["tracks"]))
    assert np.isfinite(lifted.coords).all()
    assert ((lifted.suspicion >= 0) & (lifted.suspicion <= 1)).all()
    if "uncertainty" in lifter.meta:
        radius = lifted.uncertainty[:, :, 1:]  # the root's radius is 0
        assert np.isfinite(radius).all() and (radius > 0).all()
    else:
        assert lifted.uncertainty is None


@pytest.mark.slow
def test_self_loop_bones_of_a_real_library_still_load(trained, tmp_path):
    """A library may list an edge twice or from a keypoint to itself: its model must load."""

    def change(meta):
        stats = meta["bone_stats"]
        stats["bones"] += [["LF_Coxa", "LF_Coxa"], stats["bones"][0]]
        stats["median"] += [None, stats["median"][0]]
        stats["spread"] += [None, stats["spread"][0]]

    lifter = load_lifter(variant(trained, tmp_path, change), device="cpu")
    assert np.isfinite(lifter.lift(read_poses(trained["tracks"])).suspicion).all()


# -- flags and lift on unlucky tracks -------------------------------------------------------------
def _tracks(trained, name, coords, keypoints=None, **kwargs):
    path = trained["work"] / f"{name}.npz"
    write_poses(Poses(coords, keypoints or trained["keypoints"], units="px", **kwargs), path)
    return path


def _rows(stdout: str) -> list[list[str]]:
    return [
        line.split()
        for line in stdout.splitlines()
        if line.split()[:1] and line.split()[0].isdigit()
    ]


@pytest.mark.slow
@pytest.mark.parametrize("number", ["0", "-1", "abc", "1.5", "nan"])
def test_flags_bad_counts_are_one_line(trained, number):
    result = run_cli("flags", trained["model"], trained["tracks"], "-n", number)
    assert_one_line_error(result, "-n")


@pytest.mark.slow
def test_flags_huge_count_lists_every_pose(trained):
    result = run_cli("flags", trained["model"], trained["tracks"], "-n", str(10**22))
    assert result.returncode == 0, result.stderr
    rows = _rows(result.stdout)
    assert len(rows) == len(trained["image"])
    scores = [float(r[3]) for r in rows]
    assert scores == sorted(scores, reverse=True)


@pytest.mark.slow
def test_flags_on_unlucky_tracks(trained):
    image, model = trained["image"], trained["model"]
    # one frame: scored, and a score of 0 is given no (false) reason
    one = _tracks(trained, "one_frame", image[:1])
    result = run_cli("flags", model, one)
    assert result.returncode == 0, result.stderr
    (row,) = _rows(result.stdout)
    assert row[1:3] == ["0", "individual_0"] and float(row[3]) == 0.0 and row[4] == "-"
    assert "  -: no feature above" in result.stdout
    # missing frames are left out, the rest scored
    gaps = image.copy()
    gaps[10:20] = np.nan
    result = run_cli("flags", model, _tracks(trained, "gaps", gaps), "-n", "100")
    assert result.returncode == 0, result.stderr
    frames = {int(r[1]) for r in _rows(result.stdout)}
    assert frames == set(range(len(image))) - set(range(10, 20))
    # two individuals, one never tracked: --individual names it -> one line naming the file
    two = np.concatenate([image, np.full_like(image, np.nan)], axis=1)
    path = _tracks(trained, "two", two, individuals=["fly", "ghost"])
    result = run_cli("flags", model, path, "-n", "100")
    assert result.returncode == 0 and {r[2] for r in _rows(result.stdout)} == {"fly"}
    assert_one_line_error(run_cli("flags", model, path, "--individual", "ghost"), str(path))
    assert_one_line_error(run_cli("flags", model, path, "--individual", "nobody"), "nobody")


@pytest.mark.slow
@pytest.mark.parametrize("case", ["all missing", "one keypoint", "other names", "3D"])
def test_flags_and_lift_refuse_unliftable_tracks_in_one_line(trained, tmp_path, case, fly_small):
    image, names = trained["image"], trained["keypoints"]
    coords, keypoints = {
        "all missing": (np.full_like(image, np.nan), names),
        "one keypoint": (image[:, :, :1], names[:1]),
        "other names": (image, [f"k{i}" for i in range(len(names))]),
        "3D": (fly_small.coords[:20], names),
    }[case]
    path = _tracks(trained, case.replace(" ", "_"), coords, keypoints)
    assert_one_line_error(run_cli("flags", trained["model"], path), str(path))
    out = tmp_path / "out.h5"
    assert_one_line_error(run_cli("lift", trained["model"], path, "-o", out), str(path))
    assert not out.exists()


@pytest.mark.slow
def test_lift_without_confidences_or_left_right_names(trained, tmp_path):
    """All-NaN confidences lift like full confidence; a model whose names have no sides scores."""
    image = trained["image"]
    path = _tracks(trained, "no_conf", image, confidence=np.full(image.shape[:3], np.nan))
    out = tmp_path / "lifted.h5"
    result = run_cli("lift", trained["model"], path, "-o", out)
    assert result.returncode == 0, result.stderr
    lifted = read_poses(out)
    assert np.isfinite(lifted.coords).all() and np.isfinite(lifted.suspicion).all()
    assert np.isfinite(lifted.uncertainty).all()
    plain = load_lifter(trained["model"], device="cpu").lift(read_poses(trained["tracks"]))
    np.testing.assert_allclose(lifted.coords, plain.coords, atol=1e-9)

    names = [f"p{i}" for i in range(len(trained["keypoints"]))]

    def rename(meta):
        meta.update(keypoints=names, roots=["p0"], bone_stats=None)
        meta.pop("target_sets", None)

    model = variant(trained, tmp_path, rename, "sideless.safetensors")
    result = run_cli("flags", model, _tracks(trained, "sideless", image, names), "-n", "5")
    assert result.returncode == 0, result.stderr
    assert len(_rows(result.stdout)) == 5 and "left_right" not in result.stdout


# -- pose files with hostile uncertainty / suspicion ------------------------------------------------
def _base(n_frames=20, n_kp=4):
    rng = np.random.default_rng(0)
    return {
        "points": rng.normal(size=(n_frames, 1, n_kp, 3)),
        "keypoints": np.array([f"k{i}" for i in range(n_kp)]),
    }


ARRAY_ATTACKS = {
    "uncertainty": {
        "wrong shape": np.ones((20, 1)),
        "extra axis": np.ones((20, 1, 4, 1)),
        "a scalar": np.float64(1.0),
        "empty": np.zeros(0),
        "negative": -np.ones((20, 1, 4)),
        "infinite": np.full((20, 1, 4), np.inf),
        "text": np.full((20, 1, 4), "x"),
        "booleans": np.ones((20, 1, 4), bool),
        "complex": np.ones((20, 1, 4), complex),
        "records": np.zeros((20, 1, 4), dtype=[("a", "f8")]),
    },
    "suspicion": {
        "above 1": np.full((20, 1), 2.0),
        "negative": np.full((20, 1), -0.1),
        "infinite": np.full((20, 1), np.inf),
        "per keypoint": np.ones((20, 1, 4)),
        "flat": np.ones(20),
        "bytes": np.full((20, 1), b"x"),
    },
}
ARRAY_CASES = [(f, n) for f, cases in ARRAY_ATTACKS.items() for n in cases]


def _write_h5(path, arrays):
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "napari-liftpose"
        for key, value in arrays.items():
            if key == "keypoints":
                value = np.array([str(k).encode() for k in value])
            f[key] = value
    return path


@pytest.mark.parametrize(("field", "attack"), ARRAY_CASES)
@pytest.mark.parametrize("ext", [".npz", ".h5"])
def test_bad_uncertainty_and_suspicion_arrays_are_refused(tmp_path, field, attack, ext):
    value = ARRAY_ATTACKS[field][attack]
    arrays = {**_base(), field: value}
    path = tmp_path / f"bad{ext}"
    if ext == ".npz":
        np.savez(path, **arrays)
    else:
        try:
            _write_h5(path, arrays)
        except TypeError:
            pytest.skip(f"h5py cannot store {value.dtype}")
    with pytest.raises(PoseFileError) as info:
        read_poses(path)
    message = str(info.value)
    assert message.startswith(str(path)) and field in message and "\n" not in message


@pytest.mark.parametrize("ext", [".npz", ".h5"])
def test_nan_and_integer_arrays_are_read(tmp_path, ext):
    """NaN means "unknown" and integers are numbers: both read, as float."""
    arrays = {
        **_base(),
        "uncertainty": np.full((20, 1, 4), np.nan),
        "suspicion": np.ones((20, 1), np.uint8),
    }
    path = tmp_path / f"ok{ext}"
    np.savez(path, **arrays) if ext == ".npz" else _write_h5(path, arrays)
    poses = read_poses(path)
    assert np.isnan(poses.uncertainty).all() and (poses.suspicion == 1.0).all()
    assert poses.suspicion.dtype == np.float64


def test_pickled_uncertainty_never_runs(tmp_path, marker):
    """An object array is stored as a pickle: refused as such, its payload never runs."""

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    evil = np.empty((20, 1, 4), dtype=object)
    evil[...] = Payload()
    path = tmp_path / "evil.npz"
    np.savez(path, **_base(), uncertainty=evil)
    with pytest.raises(PoseFileError, match="Python objects") as info:
        read_poses(path)
    assert str(info.value).startswith(str(path)) and "uncertainty" in str(info.value)
    assert not marker.exists()


# -- anipose CSV _error columns -----------------------------------------------------------------------
def _csv(tmp_path, extra: dict[str, list[str]]) -> os.PathLike:
    cols = {f"{k}_{a}": [str(i + 0.5), "1.5", "2.5"] for i, k in enumerate("ab") for a in "xyz"}
    cols.update(extra)
    path = tmp_path / "pose3d.csv"
    lines = [",".join(cols)] + [",".join(v[r] for v in cols.values()) for r in range(3)]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(
    ("cells", "needle"),
    [
        (["-1", "1", "1"], "got -1"),
        (["inf", "1", "1"], "got inf"),
        (["1e400", "1", "1"], "got inf"),
        (["1", "1", "oops"], "line 4"),
        (["True", "False", "True"], "true/false"),
    ],
)
def test_bad_error_columns_name_the_column(tmp_path, cells, needle):
    path = _csv(tmp_path, {"a_error": cells})
    with pytest.raises(PoseFileError) as info:
        read_poses(path)
    message = str(info.value)
    assert message.startswith(str(path)) and "'a_error'" in message and needle in message


def test_odd_error_columns_that_are_fine(tmp_path):
    # empty cells are unknown radii; an _error without x/y/z is not a keypoint
    poses = read_poses(_csv(tmp_path, {"a_error": ["1", "", "2"], "zz_error": ["1", "1", "1"]}))
    np.testing.assert_array_equal(poses.uncertainty[:, 0, 0], [1.0, np.nan, 2.0])
    assert np.isnan(poses.uncertainty[:, 0, 1]).all() and poses.keypoints == ["a", "b"]
    # anipose's own _error (with _ncams) is a reprojection error, not a radius: not read as one
    poses = read_poses(_csv(tmp_path, {"a_error": ["-5", "1", "1"], "a_ncams": ["2", "2", "2"]}))
    assert poses.uncertainty is None


# -- corruptions -------------------------------------------------------------------------------------
def test_a_swap_with_every_paired_keypoint_missing_becomes_a_move():
    rng = np.random.default_rng(0)
    coords = rng.normal(size=(30, 1, 5, 2))
    names = ["L_a", "R_a", "L_b", "R_b", "head"]
    coords[:, :, :4] = np.nan  # only 'head' and ... nothing else: add one more unpaired point
    coords = np.concatenate([coords, rng.normal(size=(30, 1, 1, 2))], axis=2)
    poses = Poses(coords, [*names, "tail"])
    bad, mask, kind = corrupt_frames(poses, 1.0, rng=0, kinds=("swap",))
    assert mask.all() and set(kind.ravel()) == {"move"}
    moved = np.isfinite(bad.coords).all(-1) & (bad.coords != poses.coords).any(-1)
    assert moved.sum(-1).ravel().tolist() == [1] * 30  # every "corrupted" pose really changed


def test_body_size_in_chunks_equals_all_at_once():
    coords = np.random.default_rng(1).normal(size=(50, 2, 6, 2))
    coords[3, 0] = np.nan
    coords[7, 1, :5] = np.nan
    np.testing.assert_allclose(_body_size(coords, chunk=7), _body_size(coords, chunk=10_000))
