"""Hostile pose and calibration files: one PoseFileError naming the file and the problem.

Every file is built here: npz archives with foreign members, lying headers and malformed fields,
napari-liftpose HDF5 files with groups where datasets belong, sleap-anipose and anipose CSV
variants, and anipose calibrations with broken camera tables.
"""

from __future__ import annotations

import io
import zipfile

import h5py
import numpy as np
import pytest

from napari_liftpose import Poses
from napari_liftpose.io import read_calibration, read_poses
from napari_liftpose.io.anipose import read_anipose_csv, read_sleap_anipose
from napari_liftpose.io.errors import PoseFileError
from napari_liftpose.io.liftpose_h5 import read_liftpose_h5, write_liftpose_h5
from napari_liftpose.io.numpy_format import read_npy, read_npz, write_npz

from .conftest import run_cli

POINTS = np.arange(24, dtype=np.float64).reshape(4, 1, 3, 2)
NAMES = np.array(["a", "b", "c"])


def refused(reader, path, *needles: str) -> str:
    with pytest.raises(PoseFileError) as info:
        reader(path)
    message = str(info.value)
    assert message.startswith(f"{path}: "), message
    for needle in needles:
        assert needle in message, (needle, message)
    return message


def npz(path, **arrays):
    np.savez(path, **{"points": POINTS, "keypoints": NAMES, **arrays})
    return path


def npy_bytes(array) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def lying_npy(shape=(10**10, 1, 3, 2)) -> bytes:
    """A .npy header claiming 480 GB, followed by 64 bytes."""
    buf = io.BytesIO()
    header = {"descr": "<f8", "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(buf, header)
    return buf.getvalue() + b"\0" * 64


# -- npz / npy ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("arrays", "needles"),
    [
        ({"fps": np.array([30.0, 60.0])}, ("fps: expected one positive number", "(2,)")),
        ({"fps": np.inf}, ("fps: expected one positive number, got inf",)),
        ({"fps": -3}, ("fps", "-3")),
        ({"fps": 0}, ("fps",)),
        ({"fps": "fast"}, ("fps",)),
        ({"keypoints": np.array("a")}, ("keypoints: expected a 1-D array of names", "0-d")),
        ({"individuals": np.array("x")}, ("individuals: expected a 1-D array of names", "0-d")),
        ({"keypoints": np.array([1, 2, 3])}, ("keypoints: expected a 1-D array of names",)),
        ({"keypoints": np.array(["a", "a", "c"])}, ("duplicates",)),
        ({"keypoints": np.array(["a", "b"])}, ("keypoints: expected 3 names, got 2",)),
        ({"points": np.array([["a"]])}, ("points: expected numbers",)),
        ({"points": POINTS + 1j}, ("points: expected numbers", "complex")),
        ({"points": POINTS[0, 0]}, ("points: expected shape",)),
        ({"units": np.array(["mm", "px"])}, ("units: expected one string",)),
        ({"confidence": np.zeros(3)}, ("confidence: expected shape",)),
        ({"confidence": np.full((4, 1, 3), "x")}, ("confidence: expected numbers",)),
        ({"edges": np.array([[0, np.nan]])}, ("edges: expected integer keypoint indices",)),
        ({"edges": np.array([[0, 7]])}, ("edges: expected indices in 0..2",)),
        ({"edges": np.array([0, 1, 2])}, ("edges: expected pairs",)),
    ],
)
def test_malformed_npz_fields(tmp_path, arrays, needles):
    refused(read_npz, npz(tmp_path / "bad.npz", **arrays), *needles)


def test_npz_members_that_are_not_arrays(tmp_path):
    text_as_points = tmp_path / "text.npz"
    with zipfile.ZipFile(text_as_points, "w") as z:
        z.writestr("points.npy", "hello")
        z.writestr("keypoints.npy", npy_bytes(NAMES))
    refused(read_npz, text_as_points, "member 'points.npy'", "not a NumPy array")
    # an unrelated extra member (notes) is ignored; the poses read as usual
    notes = npz(tmp_path / "notes.npz")
    with zipfile.ZipFile(notes, "a") as z:
        z.writestr("notes.txt", "recorded on Monday")
    assert read_npz(notes).keypoints == ["a", "b", "c"]
    pickled = tmp_path / "object.npz"
    np.savez(pickled, points=np.array([{"x": 1}], dtype=object), keypoints=NAMES)
    refused(read_npz, pickled, "pickle")


def test_lying_npy_headers_are_refused_before_allocating(tmp_path):
    archive = tmp_path / "huge.npz"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("points.npy", lying_npy())
        z.writestr("keypoints.npy", npy_bytes(NAMES))
    refused(read_npz, archive, "truncated", "480,000,000,000 bytes")
    bare = tmp_path / "huge.npy"
    bare.write_bytes(lying_npy())
    refused(read_npy, bare, "truncated")
    cut = tmp_path / "cut.npy"
    cut.write_bytes(npy_bytes(POINTS)[:-5])
    refused(read_npy, cut, "truncated")


def test_malformed_npy(tmp_path):
    for name, value, needle in [
        ("text.npy", np.array([["a", "b"]]), "expected numbers"),
        ("scalar.npy", np.float64(3), "expected shape"),
        ("record.npy", np.zeros(3, dtype=[("a", "f8")]), "expected numbers"),
    ]:
        np.save(tmp_path / name, value)
        refused(read_npy, tmp_path / name, needle)
    folder = tmp_path / "folder.npy"
    folder.mkdir()
    refused(read_npy, folder, "cannot read")


def test_utf8_names_round_trip(tmp_path):
    poses = Poses(POINTS, ["Kopf", "Schwänzchen", "ç"], individuals=["mäuschen"], fps=30.0)
    for path in (tmp_path / "u.npz", tmp_path / "u.h5"):
        (write_npz if path.suffix == ".npz" else write_liftpose_h5)(poses, path)
        back = read_poses(path)
        assert back.keypoints == poses.keypoints and back.individuals == ["mäuschen"]
        assert np.array_equal(back.coords, poses.coords) and back.fps == 30.0


# -- napari-liftpose HDF5 ----------------------------------------------------------------
def h5(path, replace: dict | None = None, attrs: dict | None = None):
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "napari-liftpose"
        datasets = {"points": POINTS, "keypoints": NAMES.astype("S"), **(replace or {})}
        for name, value in datasets.items():
            if isinstance(value, str) and value == "group":
                f.create_group(name)
            elif value is not None:
                f.create_dataset(name, data=value)
        for key, value in (attrs or {}).items():
            f.attrs[key] = value
    return path


@pytest.mark.parametrize(
    ("replace", "attrs", "needles"),
    [
        ({"points": "group"}, None, ("points: expected a dataset, got a group",)),
        ({"keypoints": "group"}, None, ("keypoints: expected a dataset, got a group",)),
        ({"confidence": "group"}, None, ("confidence: expected a dataset",)),
        ({"edges": "group"}, None, ("edges: expected a dataset",)),
        ({"individuals": "group"}, None, ("individuals: expected a dataset",)),
        ({"keypoints": b"a"}, None, ("keypoints: expected a 1-D array of names", "0-d")),
        ({"points": np.full((4, 1, 3, 2), b"x")}, None, ("points: expected numbers",)),
        ({"edges": np.array([[0.5, 1.0]])}, None, ("edges: expected integer",)),
        (None, {"fps": np.array([1.0, 2.0])}, ("fps: expected one positive number",)),
        (None, {"fps": "x"}, ("fps",)),
        (None, {"fps": -1.0}, ("fps",)),
        (None, {"units": np.array([1, 2])}, ("units attribute: expected one string",)),
        ({"keypoints": None}, None, ("missing 'points' or 'keypoints'",)),
    ],
)
def test_malformed_liftpose_h5(tmp_path, replace, attrs, needles):
    refused(read_liftpose_h5, h5(tmp_path / "bad.h5", replace, attrs), *needles)


def test_external_link_is_refused(tmp_path):
    other = h5(tmp_path / "other.h5")
    path = h5(tmp_path / "linked.h5", {"points": None})
    with h5py.File(path, "a") as f:
        f["points"] = h5py.ExternalLink(str(other), "/points")
    refused(read_liftpose_h5, path, "points: expected a dataset in this file")


# -- anipose -----------------------------------------------------------------------------
def test_malformed_sleap_anipose(tmp_path):
    group = tmp_path / "points3d.h5"
    with h5py.File(group, "w") as f:
        f.create_group("tracks")
    refused(read_sleap_anipose, group, "tracks: expected a dataset, got a group")
    text = tmp_path / "text.h5"
    with h5py.File(text, "w") as f:
        f["tracks"] = np.array([b"a"])
    refused(read_sleap_anipose, text, "tracks: expected numbers")


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ("a_x,a_y,a_z\n1,2,x\n", ("column 'a_z', line 2: expected a number, got 'x'",)),
        ("a_x,a_y,a_z,a_x\n1,2,3,4\n", ("duplicate columns ['a_x']",)),
        ("a_x,a_y,a_z\n1,2,3\n4,5\n", ("line 3: expected 3 fields, got 2",)),
        ("a_x,a_y,a_z\n1,2,3,4\n", ("line 2: expected 3 fields, got 4",)),
        ("individual,a_x,a_y,a_z\n,1,2,3\n", ("individual: expected a name",)),
        ("", ("empty file",)),
    ],
)
def test_malformed_anipose_csv(tmp_path, text, needles):
    path = tmp_path / "pose-3d.csv"
    path.write_text(text)
    refused(read_anipose_csv, path, *needles)


def test_anipose_csv_values_are_bit_exact(tmp_path):
    path = tmp_path / "pose-3d.csv"
    values = ["314.1013268998794", "0.1", "429.11819458007807"]
    path.write_text("a_x,a_y,a_z\n" + ",".join(values) + "\n")
    assert read_anipose_csv(path).coords[0, 0, 0].tolist() == [float(v) for v in values]


# -- calibrations ------------------------------------------------------------------------
CAMERA = """name = "{name}"
size = [640, 480]
matrix = [[1000.0, 0.0, 320.0], [0.0, 1000.0, 240.0], [0.0, 0.0, 1.0]]
distortions = [0.0, 0.0, 0.0, 0.0, 0.0]
rotation = [0.0, 0.0, 0.0]
translation = [0.0, 0.0, 20.0]
"""


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ("cam_0 = 5\n", ("[cam_0]: expected a table of camera fields, got int 5",)),
        (
            "[cam_0]\n" + CAMERA.format(name="a").replace("[640, 480]", "5"),
            ("camera [cam_0] ('a'): size: expected [width, height]",),
        ),
        (
            "[cam_0]\n" + CAMERA.format(name="a").replace("1000.0", "0.0"),
            ("camera [cam_0] ('a'): matrix: expected positive focal lengths",),
        ),
        (
            "[cam_0]\n" + CAMERA.format(name="a").replace("1000.0", "nan"),
            ("camera [cam_0] ('a'): matrix: expected finite numbers",),
        ),
        (
            "[cam_0]\n" + CAMERA.format(name="a").replace("[0.0, 0.0, 20.0]", "[0.0, inf, 20.0]"),
            ("translation: expected finite numbers",),
        ),
        (
            "[cam_0]\n" + CAMERA.format(name="a").replace("[0.0, 0.0, 0.0]\n", "[nan, 0, 0]\n"),
            ("rotation: expected finite numbers",),
        ),
        (
            "[cam_0]\n" + CAMERA.format(name="a").replace("[0.0, 0.0, 0.0]\n", "[[1, 0, 0]]\n"),
            ("rotation: expected a Rodrigues vector",),
        ),
        (
            "[cam_0]\n" + CAMERA.format(name="a").replace("[0.0, 0.0, 20.0]", '"far"'),
            ("translation",),
        ),
        (
            "[cam_0]\n" + CAMERA.format(name="a") + "\n[cam_1]\n" + CAMERA.format(name="a"),
            ("cameras [cam_0] and [cam_1] are both named 'a'",),
        ),
        ("[cam_0]\nname = 5\n", ("incomplete: missing ['matrix', 'rotation', 'translation']",)),
        ("[cam_0]\n" + CAMERA.replace('"{name}"', "5"), ("[cam_0] name: expected",)),
        ("title = 'x'\n", ("no [cam_*] tables",)),
        ("[cam_0\n", ("not a TOML calibration file",)),
    ],
)
def test_malformed_calibrations(tmp_path, text, needles):
    path = tmp_path / "calibration.toml"
    path.write_text(text)
    refused(read_calibration, path, *needles)


def test_calibration_that_is_a_folder(tmp_path):
    folder = tmp_path / "calibration.toml"
    folder.mkdir()
    refused(read_calibration, folder, "is a folder")


def test_the_cli_reports_a_bad_calibration_in_one_line(tmp_path, data_dir):
    calibration = tmp_path / "calibration.toml"
    calibration.write_text("cam_0 = 5\n")
    library = data_dir / "fly_df3d_210902" / "points3d.npz"
    result = run_cli("train", library, "-o", tmp_path / "m.safetensors", "--camera", calibration)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert str(calibration) in result.stderr and "cam_0" in result.stderr
    assert not (tmp_path / "m.safetensors").exists()


def test_a_huge_sparse_dataset_is_refused_unread(tmp_path):
    path = tmp_path / "sparse.h5"
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "napari-liftpose"
        f.create_dataset("points", shape=(10**9, 1, 3, 2), dtype="f8", chunks=(1024, 1, 3, 2))
        f.create_dataset("keypoints", data=NAMES.astype("S"))
    assert path.stat().st_size < 100_000
    refused(read_liftpose_h5, path, "points: its shape", "refusing to allocate")


def test_sleap_analysis_claiming_a_huge_shape_is_refused_unread(tmp_path):
    path = tmp_path / "bomb.analysis.h5"
    with h5py.File(path, "w") as f:  # 640 GB declared, nothing stored
        f.create_dataset("tracks", shape=(2, 2, 20, 10**9), dtype="f8", chunks=(1, 1, 1, 1024))
        f.create_dataset("node_names", data=np.array([b"a"] * 20))
    with pytest.raises(PoseFileError, match="refusing to allocate"):
        read_poses(path)
