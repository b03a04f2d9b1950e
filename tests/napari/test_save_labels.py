"""Save labels: a 2D layer read from DLC / SLEAP goes back in its source's format, beside it.

Each test opens a copy of a real file in a real viewer, moves one keypoint the way a drag does
(new layer data), saves with the Save labels action and reads both files with pandas / sleap-io:
only the moved keypoint differs, the source is byte-for-byte unchanged.
"""

from __future__ import annotations

import hashlib
import shutil

import numpy as np
import pandas as pd
import pytest
import sleap_io as sio
from app_model.types import KeyBinding

from napari_liftpose.napari.convert import POSES_KEY, poses_from_layer_data
from napari_liftpose.napari.save_labels import (
    PLUGIN,
    READER_PATTERNS,
    SAVE_LABELS_KEY,
    attach_save_labels,
    offer_reader,
    reader_remembered,
    save_labels_action,
)

MOVE = np.array([3.0, -2.0])  # (dy, dx) in napari's (t, y, x)


@pytest.fixture(autouse=True)
def offer_state(tmp_path, monkeypatch):
    """Keep the "offered once" record and napari's reader preference out of the user's config."""
    from napari.settings import get_settings

    monkeypatch.setenv("NAPARI_LIFTPOSE_STATE", str(tmp_path / "state.json"))
    prefs = dict(get_settings().plugins.extension2reader)
    yield tmp_path / "state.json"
    get_settings().plugins.extension2reader = prefs


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def layer_poses(layer):
    return poses_from_layer_data(layer.data, layer.features, layer.metadata)


def _not_equal(a, b) -> np.ndarray:
    a, b = np.asarray(a, float), np.asarray(b, float)
    return ~((a == b) | (np.isnan(a) & np.isnan(b)))


def _open_and_move(viewer, source, tmp_path):
    """Open a copy of ``source``, move one visible keypoint; returns (copy, layer, frame, kp, new yx)."""
    copy = tmp_path / source.name
    shutil.copy(source, copy)
    layers = viewer.open(copy, plugin="napari-liftpose")
    layer = next(layer for layer in layers if layer._type_string == "points")
    row = len(layer.data) // 2
    data = layer.data.copy()
    data[row, 1:] += MOVE
    layer.data = data
    viewer.layers.selection.active = layer
    frame = int(round(data[row, 0]))
    return copy, layer, frame, str(layer.features["keypoint"].iloc[row]), data[row, 1:]


@pytest.mark.parametrize(
    "relative",
    ["dlc_openfield_csv/openfield_dlc_inference_example.csv", "dlc_reaching_2d/reachingDEMO_2D.h5"],
)
def test_dlc_labels_go_back_as_dlc(make_napari_viewer, data_dir, tmp_path, relative, notifications):
    viewer = make_napari_viewer()
    attach_save_labels(viewer, offer=False)
    source = data_dir / relative
    copy, layer, frame, keypoint, yx = _open_and_move(viewer, source, tmp_path)
    before = _digest(copy)

    written = save_labels_action(viewer)

    assert written == copy.with_name(copy.name.replace(copy.suffix, ".refined" + copy.suffix))
    assert _digest(copy) == before
    assert any(str(written) in message for message in notifications)
    if copy.suffix == ".csv":
        old = pd.read_csv(copy, header=[0, 1, 2], index_col=0)
        new = pd.read_csv(written, header=[0, 1, 2], index_col=0)
    else:
        old, new = pd.read_hdf(copy), pd.read_hdf(written)
    assert list(new.columns) == list(old.columns) and list(new.index) == list(old.index)
    differs = _not_equal(old.to_numpy(), new.to_numpy())
    bodyparts = old.columns.get_level_values("bodyparts")
    coords = old.columns.get_level_values("coords")
    moved = bodyparts == keypoint
    expected = np.zeros_like(differs)
    expected[frame, moved & np.isin(coords, ["x", "y"])] = True
    differs[frame, moved & (coords == "likelihood")] = False  # checked below
    np.testing.assert_array_equal(differs, expected)  # only the moved keypoint's x and y
    row = new.iloc[frame]
    x, y, likelihood = (row[moved & (coords == c)].item() for c in ("x", "y", "likelihood"))
    np.testing.assert_allclose([y, x], yx, rtol=0, atol=1e-4)
    # the likelihood is the confidence the edit gives the point (convert.py decides which)
    edited = layer_poses(layer)
    k = edited.keypoints.index(keypoint)
    np.testing.assert_array_equal(likelihood, edited.confidence[frame, 0, k])


def _instance_points(labels) -> list[np.ndarray]:
    return [inst.numpy() for frame in labels.labeled_frames for inst in frame.instances]


@pytest.mark.parametrize(
    "relative", ["sleap_small/small_robot_minimal.slp", "sleap_small/minimal_instance.pkg.slp"]
)
def test_sleap_labels_go_back_as_sleap(make_napari_viewer, data_dir, tmp_path, relative):
    viewer = make_napari_viewer()
    attach_save_labels(viewer, offer=False)
    copy, layer, frame, keypoint, yx = _open_and_move(viewer, data_dir / relative, tmp_path)
    before = _digest(copy)

    written = save_labels_action(viewer)

    assert written.name == copy.name.replace(".slp", "").replace(".pkg", "") + (
        ".refined.pkg.slp" if copy.name.endswith(".pkg.slp") else ".refined.slp"
    )
    assert _digest(copy) == before
    old, new = sio.load_slp(str(copy)), sio.load_slp(str(written))
    assert [f.frame_idx for f in new.labeled_frames] == [f.frame_idx for f in old.labeled_frames]
    old_points, new_points = _instance_points(old), _instance_points(new)
    assert len(new_points) == len(old_points)
    nodes = [node.name for node in old.skeletons[0].nodes]
    moved = [
        np.argwhere(_not_equal(a, b).any(axis=-1))
        for a, b in zip(old_points, new_points, strict=True)
    ]
    assert sum(len(m) for m in moved) == 1  # exactly one point of one instance moved
    instance = next(i for i, m in enumerate(moved) if len(m))
    node = int(moved[instance][0][0])
    assert nodes[node] == keypoint
    np.testing.assert_allclose(new_points[instance][node][::-1], yx, rtol=0, atol=1e-4)
    if copy.name.endswith(".pkg.slp"):  # the embedded frame travels with the labels
        np.testing.assert_array_equal(new.videos[0][0], old.videos[0][0])


def test_napari_csv_of_dlc_labels_warns_and_save_labels_does_not(
    make_napari_viewer, data_dir, tmp_path, notifications
):
    viewer = make_napari_viewer()
    attach_save_labels(viewer, offer=False)
    source = data_dir / "dlc_openfield_csv/openfield_dlc_inference_example.csv"
    copy, layer, *_ = _open_and_move(viewer, source, tmp_path)

    generic = tmp_path / "generic.csv"
    written = viewer.layers.save(str(generic), selected=True, plugin="napari")
    assert written and generic.read_text().startswith("index,")  # napari's own points CSV
    warnings = [m for m in notifications if "not napari-liftpose's" in m]
    assert len(warnings) == 1 and str(generic) in warnings[0] and "Save labels" in warnings[0]

    notifications.clear()
    ours = viewer.layers.save(str(tmp_path / "ours.csv"), selected=True, plugin="napari-liftpose")
    assert ours and not [m for m in notifications if "not napari-liftpose's" in m]


def test_shortcut_is_bound_on_the_viewer_and_refuses_non_labels(make_napari_viewer, notifications):
    viewer = make_napari_viewer()
    button = attach_save_labels(viewer, offer=False)
    assert "Ctrl+Shift+L" in button.text
    action = viewer.keymap[KeyBinding.from_str(SAVE_LABELS_KEY)]
    viewer.add_points(np.zeros((2, 3)), name="plain points")
    assert action(viewer) is None  # the bound action: nothing to save
    assert any("select the 2D pose layer" in message for message in notifications)


def test_works_with_the_proxy_napari_gives_plugin_widgets(make_napari_viewer, data_dir, tmp_path):
    # add_plugin_dock_widget hands widgets this proxy (private module: imported by the test only)
    from napari.utils._proxies import PublicOnlyProxy

    viewer = make_napari_viewer()
    proxy = PublicOnlyProxy(viewer)
    slp = data_dir / "sleap_small/small_robot_minimal.slp"
    with _no_future_warning():
        attach_save_labels(proxy, offer=False)
        copy, layer, *_ = _open_and_move(viewer, slp, tmp_path)
        written = save_labels_action(proxy)
    assert written is not None and written.is_file()
    assert layer.metadata[POSES_KEY].source == str(copy)


class _no_future_warning:
    """Fail on napari's private-attribute FutureWarning inside the block."""

    def __enter__(self):
        import warnings

        self._catch = warnings.catch_warnings()
        self._catch.__enter__()
        warnings.simplefilter("error", FutureWarning)

    def __exit__(self, *exc):
        self._catch.__exit__(*exc)


def test_reader_offer_is_made_once_and_sets_napari_preference(
    make_napari_viewer, data_dir, tmp_path, offer_state
):
    from napari.settings import get_settings

    viewer = make_napari_viewer()
    get_settings().plugins.extension2reader = {}
    answers = []
    assert offer_reader(on_answer=answers.append)
    assert offer_state.is_file()
    assert not offer_reader()  # once: the record says it was offered

    # napari's notification carries the button; press it as the user would
    from napari.utils.notifications import notification_manager

    offer = notification_manager.records[-1]
    label, accept = offer.actions[0]
    assert "LiftPose" in label
    accept(None)
    assert answers == [True] and reader_remembered()
    prefs = get_settings().plugins.extension2reader
    assert {pattern: prefs[pattern] for pattern in READER_PATTERNS} == dict.fromkeys(
        READER_PATTERNS, PLUGIN
    )
    # ... and napari now opens a DLC .csv without asking (File > Open passes plugin=None;
    # napari 0.9's viewer.open defaults to plugin="napari", so a script passes None for this)
    copy = tmp_path / "openfield.csv"
    shutil.copy(data_dir / "dlc_openfield_csv/openfield_dlc_inference_example.csv", copy)
    layers = viewer.open(copy, plugin=None)
    assert any(POSES_KEY in layer.metadata for layer in layers)
