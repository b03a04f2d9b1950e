"""What an annotator does that the happy path does not: two files, a layer deleted or renamed
while it is lifted, the 3D dock hidden or closed between lifts, empty file fields. Each test is a
defect found by driving the dock in a real viewer (opened as napari opens plugin widgets)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from napari_liftpose.napari.view3d import get_view3d

DATA = Path(os.environ.get("LIFTPOSE_TEST_DATA", "/work/shared/data"))
SLEAP_PKG = DATA / "sleap_small" / "minimal_instance.pkg.slp"
DLC_CSV = DATA / "dlc_openfield_csv" / "openfield_dlc_inference_example.csv"


def _keys(layer) -> list[tuple[int, str, str]]:
    frames = np.rint(layer.data[:, 0]).astype(int)
    return list(
        zip(
            frames.tolist(),
            layer.features["individual"].astype(str),
            layer.features["keypoint"].astype(str),
            strict=True,
        )
    )


def _dock(viewer):
    _, widget = viewer.window.add_plugin_dock_widget("napari-liftpose", "LiftPose")
    return widget


@pytest.mark.skipif(not DLC_CSV.is_file() or not SLEAP_PKG.is_file(), reason="no test data")
def test_a_layer_the_annotate_tab_does_not_show_still_adds_the_chosen_keypoint(
    make_napari_viewer, tmp_path
):
    # two files open; the Annotate tab shows the first; the annotator adds on the second
    for path in (SLEAP_PKG, DLC_CSV):
        shutil.copy(path, tmp_path / path.name)
    viewer = make_napari_viewer(show=True)
    widget = _dock(viewer)
    viewer.open(tmp_path / SLEAP_PKG.name, plugin="napari-liftpose")
    viewer.open(tmp_path / DLC_CSV.name, plugin="napari-liftpose")
    assert widget.annotate_layer.value == SLEAP_PKG.name
    layer = viewer.layers[DLC_CSV.name]
    frame = 3
    rows = np.flatnonzero(np.rint(layer.data[:, 0]) == frame)
    keypoints = layer.features["keypoint"].astype(str).to_numpy()
    deleted = next(r for r in rows if keypoints[r] == "tailbase")
    layer.selected_data = {int(deleted)}
    layer.remove_selected()
    snout = next(i for i, key in enumerate(_keys(layer)) if key[0] == frame and key[2] == "snout")
    layer.selected_data = {snout}  # napari's own add would copy this point's keypoint
    layer.mode = "add"
    n_rows = len(layer.data)
    layer.add(np.array([frame, 40.0, 50.0]))  # what a click in add mode calls
    keys = _keys(layer)
    assert len(keys) == len(set(keys))  # no keypoint placed twice in a frame
    assert len(layer.data) <= n_rows + 1
    # the annotator turns to that layer, chooses the deleted keypoint and places it
    widget.annotate_layer.value = DLC_CSV.name
    editor = widget._chooser.editor
    assert editor.layer.name == DLC_CSV.name
    shown = [c for c in widget._choosers.values() if not c.native.isHidden()]
    assert shown == [widget._chooser]  # the tab shows that layer's chooser only
    editor.choose(keypoint="tailbase")
    layer.add(np.array([frame, 41.0, 51.0]))
    keys = _keys(layer)
    assert len(keys) == len(set(keys)) and (frame, keys[-1][1], "tailbase") in keys
    # a layer removed from the list gives its editing back and loses its chooser
    viewer.layers.remove(SLEAP_PKG.name + " bones")
    viewer.layers.remove(SLEAP_PKG.name)
    assert len(widget._choosers) == 1


def _walk(make_napari_viewer, demo, folder, show: bool = True):
    for path in (demo.tracks, demo.video):
        shutil.copy(path, folder / path.name)
    viewer = make_napari_viewer(show=show)
    viewer.open(folder / demo.tracks.name, plugin="napari-liftpose")
    widget = _dock(viewer)
    assert widget.load_model(demo.model)
    return viewer, widget, demo.tracks.name


@pytest.fixture
def walk_viewer(make_napari_viewer, demo, tmp_path):
    return _walk(make_napari_viewer, demo, tmp_path)


def _lift(widget, qtbot):
    shown = []
    worker = widget.lift_selected(then=shown.append)
    assert worker is not None
    qtbot.waitUntil(lambda: len(shown) == 1, timeout=30_000)
    return shown[0]


@pytest.mark.slow
def test_a_layer_removed_while_it_is_lifted_is_said_not_crashed(
    make_napari_viewer, demo, tmp_path, qtbot, notifications
):
    viewer, widget, name = _walk(make_napari_viewer, demo, tmp_path, show=True)
    worker = widget.lift_selected()
    finished = []
    worker.finished.connect(lambda: finished.append(True))
    viewer.layers.remove(f"{name} bones")
    viewer.layers.remove(name)  # before the worker returns
    qtbot.waitUntil(lambda: bool(finished), timeout=30_000)
    qtbot.wait(50)
    assert "removed while it was lifted" in widget.status.value
    assert [n for n in notifications if "removed" in n] == [widget.status.value]
    assert not widget.session.has_lifted(name)


@pytest.mark.slow
def test_a_renamed_layer_is_lifted_under_its_new_name(walk_viewer, qtbot):
    viewer, widget, name = walk_viewer
    viewer.layers[name].name = "walk (mine)"
    assert widget.lift_layer.choices == ("walk (mine)",)
    assert widget.annotate_layer.value == "walk (mine)"
    widget.lift_layer.value = "walk (mine)"
    layer3d = _lift(widget, qtbot)
    assert layer3d.name == "walk (mine) 3D" and widget.session.has_lifted("walk (mine)")


@pytest.mark.slow
def test_the_3d_dock_hidden_or_closed_comes_back_with_the_next_lift(walk_viewer, qtbot):
    viewer, widget, name = walk_viewer
    _lift(widget, qtbot)
    view = get_view3d(viewer)
    view.dock.close()  # the dock title bar's "hide this panel"
    qtbot.wait(50)
    assert not view.dock.isVisible()
    _lift(widget, qtbot)
    assert get_view3d(viewer) is view and view.dock.isVisible()
    viewer.window.remove_dock_widget(view.dock)  # "close this panel"
    qtbot.wait(50)
    _lift(widget, qtbot)
    new_view = get_view3d(viewer)
    assert new_view is not view and new_view.dock.isVisible()
    panel = widget._panel3d
    assert panel.view is new_view  # its layer panel controls the view on screen
    panel.checks[f"{name} 3D"].setChecked(False)
    assert not new_view.model.layers[f"{name} 3D"].visible


@pytest.mark.slow
def test_empty_file_fields_say_what_to_choose(walk_viewer, qtbot, notifications):
    viewer, widget, name = walk_viewer
    _lift(widget, qtbot)
    notifications.clear()
    widget.evaluate_button.changed.emit()  # no truth file chosen
    widget.export_button.changed.emit()  # no export file chosen
    assert notifications == [
        "Evaluate: choose the 3D ground-truth file first",
        "Export 3D: choose the file to write first (.npz, .h5, .csv, .nc or .nwb)",
    ]


def test_deleting_the_tracks_layer_of_a_file_with_video_keeps_napari_alive(
    make_napari_viewer, demo, tmp_path, qtbot
):
    """It crashed in glDrawArrays (segfault) when the bones were removed in the same breath."""
    for path in (demo.tracks, demo.video):
        shutil.copy(path, tmp_path / path.name)
    viewer = make_napari_viewer(show=True)
    viewer.open(tmp_path / demo.tracks.name, plugin="napari-liftpose")
    qtbot.wait(300)
    viewer.layers.remove(demo.tracks.name)
    qtbot.waitUntil(lambda: len(viewer.layers) == 1, timeout=5_000)  # the bones follow it out
    viewer.dims.set_current_step(0, 3)
    qtbot.wait(300)
    assert viewer.screenshot(flash=False).any()  # still drawing: the video frame
    assert [layer.name for layer in viewer.layers] == [f"{demo.tracks.name} video"]
