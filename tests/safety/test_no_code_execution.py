"""No pose file ever runs code: crafted DeepLabCut ``.h5`` files with pickled objects.

PyTables (under ``pandas.read_hdf``) unpickles byte-string attributes that end with ``.`` and
the rows of object ``VLArray`` datasets (pandas "fixed" tables with an object column or index).
Each crafted file below holds a pickle whose ``__reduce__`` creates a marker file. The first test
proves every one of them really runs code through plain pandas; every other test goes through
one of our entry points (``read_poses``, ``detect_format``, napari's reader, the installed CLI)
and asserts the marker never appears and the refusal names the file.
"""

from __future__ import annotations

import pathlib
import pickle
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from napari_liftpose import Poses
from napari_liftpose.io import PoseFileError, detect_format, read_poses, write_poses
from napari_liftpose.io.hdf5_safety import check_no_pickles, is_literal_pickle
from tests.safety.conftest import assert_one_line_error, run_cli

REACHING = Path("dlc_reaching_2d") / "reachingDEMO_2D.h5"
KEY = "df_with_missing"


class Touch:
    """Pickles to a call of ``Path.touch(marker)``: unpickling it creates the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))

    def __eq__(self, other):  # pandas compares index values while writing
        return isinstance(other, Touch) and other.marker == self.marker

    def __hash__(self) -> int:
        return hash(self.marker)


def _dlc_table(data_dir: Path, frames: int = 40) -> pd.DataFrame:
    return pd.read_hdf(data_dir / REACHING).iloc[:frames]


def _table_file(frame: pd.DataFrame, path: Path, layout: str = "table") -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PerformanceWarning: object columns are pickled
        frame.to_hdf(path, key=KEY, format=layout, mode="w")
    return path


def _group_attribute(frame, path, marker):
    """pandas' own metadata attribute ``info`` replaced by a protocol-0 pickle (as PyTables)."""
    _table_file(frame, path)
    with h5py.File(path, "a") as f:
        f[KEY].attrs["info"] = np.bytes_(pickle.dumps(Touch(marker), 0))
    return path


def _table_attribute(frame, path, marker):
    """The table's ``values_block_0_kind`` as a binary (protocol 4) pickle."""
    _table_file(frame, path)
    with h5py.File(path, "a") as f:
        f[KEY]["table"].attrs["values_block_0_kind"] = np.bytes_(pickle.dumps(Touch(marker), 4))
    return path


def _vlen_attribute(frame, path, marker):
    """An extra variable-length ASCII string attribute (PyTables reads it as bytes too)."""
    _table_file(frame, path)
    payload = pickle.dumps(Touch(marker), 0)
    with h5py.File(path, "a") as f:
        f[KEY].attrs.create("note", payload, dtype=h5py.string_dtype("ascii"))
    return path


def _root_attribute(frame, path, marker):
    """An attribute of the file's root group."""
    _table_file(frame, path)
    with h5py.File(path, "a") as f:
        f.attrs["note"] = np.bytes_(pickle.dumps(Touch(marker), 2))
    return path


def _pandas_type(frame, path, marker):
    """``pandas_type``, the attribute ``HDFStore.keys()`` reads on every group to list them."""
    _table_file(frame, path)
    with h5py.File(path, "a") as f:
        f[KEY].attrs["pandas_type"] = np.bytes_(pickle.dumps(Touch(marker), 0))
    return path


def _object_column(frame, path, marker):
    """A "fixed" table with one object column holding the object (pandas pickles it)."""
    frame = frame.astype(object)
    frame.iloc[0, 0] = Touch(marker)
    return _table_file(frame, path, "fixed")


def _object_index(frame, path, marker):
    """A "fixed" table whose row index is object-typed and holds the object."""
    frame = frame.copy()
    frame.index = pd.Index([Touch(marker), *range(1, len(frame))], dtype=object)
    return _table_file(frame, path, "fixed")


CRAFTS: dict[str, Callable] = {
    "group attribute": _group_attribute,
    "table attribute": _table_attribute,
    "vlen attribute": _vlen_attribute,
    "root attribute": _root_attribute,
    "pandas_type": _pandas_type,
    "object column": _object_column,
    "object index": _object_index,
}


@pytest.fixture(scope="module")
def crafted(data_dir, tmp_path_factory) -> tuple[dict[str, Path], Path]:
    """Every crafted file (``{kind: path}``) and the marker they would create."""
    folder = tmp_path_factory.mktemp("crafted")
    marker = folder / "PWNED"
    frame = _dlc_table(data_dir)
    files = {
        kind: craft(frame, folder / f"{kind.replace(' ', '_')}.h5", marker)
        for kind, craft in CRAFTS.items()
    }
    assert not marker.exists()
    return files, marker


@pytest.fixture
def no_marker(crafted):
    """Assert after the test that no crafted pickle ran."""
    _, marker = crafted
    marker.unlink(missing_ok=True)
    yield marker
    ran = marker.exists()
    marker.unlink(missing_ok=True)  # each test on its own
    assert not ran, "a crafted pickle ran"


@pytest.mark.parametrize("kind", CRAFTS)
def test_crafted_files_do_run_code_through_plain_pandas(kind, data_dir, tmp_path):
    """The attack is real: plain pandas creates the marker (so the other tests can fail)."""
    marker = tmp_path / "PWNED"
    path = CRAFTS[kind](_dlc_table(data_dir, 5), tmp_path / "crafted.h5", marker)
    try:
        pd.read_hdf(path)
    except Exception:
        pass  # some crafts break pandas after the pickle ran
    assert marker.exists()


@pytest.mark.parametrize("kind", CRAFTS)
def test_read_poses_and_detection_refuse_without_running_code(kind, crafted, no_marker):
    path = crafted[0][kind]
    assert detect_format(path) == "dlc"  # claimed (by h5py), so the refusal below names it
    assert not no_marker.exists(), "detection ran the pickle"
    with pytest.raises(PoseFileError) as err:
        read_poses(path)
    message = str(err.value)
    assert message.startswith(str(path)) and "\n" not in message
    assert "pickled Python objects" in message and "could run code" in message
    with pytest.raises(PoseFileError, match="pickled"):
        read_poses(path, format="dlc")


def test_napari_reader_reports_and_runs_nothing(crafted, no_marker, monkeypatch):
    pytest.importorskip("napari")
    import napari.utils.notifications as notifications

    from napari_liftpose.napari.reader import get_reader

    shown: list[str] = []
    monkeypatch.setattr(notifications, "show_error", shown.append)
    paths = [str(p) for p in crafted[0].values()]
    reader = get_reader(paths)
    assert reader is not None
    assert reader(paths) == [(None,)]
    assert len(shown) == len(paths)
    for path, message in zip(paths, shown, strict=True):
        assert message.startswith(path) and "pickled Python objects" in message


@pytest.fixture(scope="module")
def cli_files(data_dir, tmp_path_factory) -> dict[str, Path]:
    """A tiny model (1 epoch) with the reaching file's bodyparts, and a 3D library for it."""
    from napari_liftpose.lifting import RandomCameras, TrainConfig, train

    folder = tmp_path_factory.mktemp("cli")
    bodyparts = list(dict.fromkeys(_dlc_table(data_dir, 1).columns.get_level_values(1)))
    rng = np.random.default_rng(0)
    library = Poses(rng.normal(size=(64, 1, len(bodyparts), 3)), bodyparts, units="mm")
    lib = write_poses(library, folder / "library.npz")
    model = folder / "tiny.safetensors"
    config = TrainConfig(epochs=1, architecture={"width": 16, "blocks": 1}, device="cpu")
    train(library, RandomCameras(), model, config)
    return {"model": model, "library": lib, "tracks": data_dir / REACHING}


def _cli_runs(files: dict[str, Path], crafted: Path, model: Path) -> dict[str, tuple]:
    """Every CLI path that reads a pose file, with the crafted file in that place."""
    return {
        "lift": ("lift", files["model"], crafted, "-o", model.with_suffix(".npz")),
        "train library": ("train", crafted, "-o", model, "--random-camera", "--epochs", "1"),
        "train tracks": ("train", files["library"], "--tracks-2d", crafted, "-o", model),
        "evaluate tracks": ("evaluate", files["model"], crafted, files["library"]),
        "evaluate truth": ("evaluate", files["model"], files["tracks"], crafted),
    }


# every CLI path once and every crafted file once (each run starts Python and torch: ~3 s)
CLI_CASES = [
    ("lift", "group attribute"),
    ("lift", "object index"),
    ("lift", "pandas_type"),
    ("train library", "object column"),
    ("train tracks", "table attribute"),
    ("evaluate tracks", "vlen attribute"),
    ("evaluate truth", "root attribute"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("command", "kind"), CLI_CASES)
def test_cli_refuses_in_one_line(command, kind, crafted, cli_files, no_marker, tmp_path):
    path = crafted[0][kind]
    model = tmp_path / "m.safetensors"
    result = run_cli(*_cli_runs(cli_files, path, model)[command])
    assert_one_line_error(result, str(path), "pickled Python objects")
    assert list(tmp_path.iterdir()) == []  # no output of any kind


def test_an_hdf5_file_that_is_no_pandas_table_is_never_opened_by_pytables(tmp_path, marker):
    """Not claimed by any format (detection is h5py only): "not recognised", nothing runs."""
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f.attrs["note"] = np.bytes_(pickle.dumps(Touch(marker), 0))
        f.create_group("df").attrs["info"] = np.bytes_(pickle.dumps(Touch(marker), 0))
    assert detect_format(path) is None
    with pytest.raises(PoseFileError, match="not recognised"):
        read_poses(path)
    assert not marker.exists()


# -- the check itself ---------------------------------------------------------------------------
def test_literal_pickles_pass_and_others_do_not():
    literal = [None, True, 1, 2**80, 1.5, "é", [1, (2, "a")], {"a": [1]}, {"k": (None, 1.0)}]
    for value in literal:
        for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
            assert is_literal_pickle(pickle.dumps(value, protocol)), (value, protocol)
    for value in (b"x", bytearray(b"x"), {1}, frozenset({2})):  # native from protocol 3 or 5
        assert is_literal_pickle(pickle.dumps(value, 5)), value
    assert not is_literal_pickle(pickle.dumps(Touch(Path("x")), 0))
    assert not is_literal_pickle(pickle.dumps(np.float64(1.0), 2))  # numpy scalars: a GLOBAL
    assert not is_literal_pickle(b"(lp0\nI1\n")  # no STOP: pickle.loads would still run it
    assert not is_literal_pickle(b"(lp0\nI1\nZ.")  # an unknown opcode before the STOP
    assert not is_literal_pickle(b"Plain text.")


def test_links_and_variable_length_datasets_are_refused(data_dir, tmp_path):
    base = _table_file(_dlc_table(data_dir, 5), tmp_path / "base.h5")
    check_no_pickles(base)  # a plain pandas table passes
    cases = {
        "soft link": lambda f: f.__setitem__("alias", h5py.SoftLink(f"/{KEY}")),
        "external link": lambda f: f.__setitem__("other", h5py.ExternalLink("x.h5", "/")),
        "variable-length": lambda f: f.create_dataset("v", (1,), dtype=h5py.vlen_dtype(np.uint8)),
        "object strings": lambda f: f.create_dataset("s", data=["a"], dtype=h5py.string_dtype()),
        "opaque": lambda f: f.create_dataset("o", data=np.void(b"abcd")),
        "VLARRAY": lambda f: f[KEY]["table"].attrs.__setitem__("CLASS", b"VLARRAY"),
    }
    for name, edit in cases.items():
        path = tmp_path / f"{name}.h5"
        shutil.copy(base, path)
        with h5py.File(path, "a") as f:
            edit(f)
        with pytest.raises(PoseFileError, match="refused") as err:
            check_no_pickles(path)
        assert str(err.value).startswith(str(path)), name


def test_real_dlc_file_reads_identically(data_dir, tmp_path):
    """The check passes real DLC files; values equal pandas' own reading of the trusted file."""
    path = data_dir / REACHING
    frame = pd.read_hdf(path)
    poses = read_poses(path)
    for layout in ("table", "fixed"):
        copy = _table_file(frame, tmp_path / f"{layout}.h5", layout)
        again = read_poses(copy)
        np.testing.assert_array_equal(again.coords, poses.coords)
        np.testing.assert_array_equal(again.confidence, poses.confidence)
    for column, key in enumerate(frame.columns):
        kp = poses.keypoints.index(key[1])
        values = poses.confidence[:, 0, kp] if key[2] == "likelihood" else None
        if values is None:
            values = poses.coords[:, 0, kp, "xy".index(key[2])]
        np.testing.assert_array_equal(values, frame.iloc[:, column].to_numpy())
    assert poses.metadata["dlc_index"].equals(frame.index)
    assert poses.metadata["dlc_columns"].equals(frame.columns)
