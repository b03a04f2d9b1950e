"""Lifting with no 3D library from the dock: a built-in lifter on a lab's own skeleton, and a
lifter trained from a body model for a 2D layer's keypoints (issue 12)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_liftpose.napari.view3d import get_view3d
from napari_liftpose.napari.widgets import LiftPoseWidget

OPENFIELD = "dlc_openfield_csv/openfield_dlc_inference_example.csv"


def _colored_pixels(image: np.ndarray) -> int:
    rgb = image[..., :3].astype(int)
    return int(((rgb.max(-1) - rgb.min(-1)) > 80).sum())


@pytest.fixture
def openfield(make_napari_viewer, data_dir):
    """The real 4-keypoint open-field DLC file, opened as napari opens it, with the dock."""
    path = data_dir / OPENFIELD
    if not path.is_file():
        pytest.skip(f"{path} is not there")
    viewer = make_napari_viewer(show=True)
    viewer.open(path, plugin="napari-liftpose")
    widget = LiftPoseWidget(viewer)
    viewer.window.add_dock_widget(widget, name="LiftPose")
    return viewer, widget, viewer.layers[-1]


def test_a_builtin_lifter_lifts_a_four_keypoint_file_into_the_3d_view(openfield, qtbot):
    viewer, widget, layer = openfield
    widget.show_tab("Model")
    assert "mouse-top" in widget.builtin.choices
    widget.builtin.value = "mouse-top"
    widget.lift_layer.value = layer.name
    widget.builtin_button.clicked()
    assert widget.status.value == "Built-in lifter: mouse-top"
    assert "mapped" in widget.model_info.value  # the mapping onto the body model is said
    shown = []
    widget.lift_selected(then=shown.append)
    qtbot.waitUntil(lambda: len(shown) == 1, timeout=60_000)
    points3d = shown[0]
    lifted = points3d.metadata["poses"]
    assert sorted(lifted.keypoints) == sorted(["snout", "leftear", "rightear", "tailbase"])
    assert np.isfinite(lifted.coords).all(-1).mean() > 0.9
    # z is up: the ears sit above the tail base on most frames
    k = lifted.keypoints.index
    ears = lifted.coords[:, 0, [k("leftear"), k("rightear")], 2].mean(1)
    assert np.nanmean(ears > lifted.coords[:, 0, k("tailbase"), 2]) > 0.6
    view = get_view3d(viewer)
    qtbot.wait(200)
    assert _colored_pixels(view.qt_viewer.screenshot(flash=False)) > 50


def test_an_unknown_skeleton_says_what_it_could_not_map(openfield, qtbot):
    viewer, widget, layer = openfield
    widget.builtin.value = "fly-side"  # a mouse file onto the fly
    widget.lift_layer.value = layer.name
    widget.builtin_button.clicked()
    assert widget.lift_selected() is None
    assert "no keypoint maps" in widget.status.value


@pytest.mark.slow
def test_training_from_a_body_model_for_a_layer_lifts_it(openfield, qtbot, tmp_path):
    viewer, widget, layer = openfield
    widget.show_tab("Train")
    widget.poses_from.value = "body model: mouse"
    assert widget.body_layer.visible and not widget.paired_layer.visible
    assert (widget.elevation[0].value, widget.elevation[1].value) == (50.0, 89.0)  # from above
    widget.body_layer.value = layer.name
    widget.epochs.value = 2
    widget.output.value = tmp_path / "openfield_body.safetensors"
    widget.train_button.clicked()
    qtbot.waitUntil(lambda: widget._worker is None, timeout=240_000)
    assert widget.last_result.status == "finished", widget.status.value
    assert sorted(widget.lifter.keypoints) == sorted(layer.metadata["poses"].keypoints)
    widget.lift_layer.value = layer.name
    shown = []
    widget.lift_selected(then=shown.append)
    qtbot.waitUntil(lambda: len(shown) == 1, timeout=60_000)
    assert np.isfinite(shown[0].metadata["poses"].coords).all(-1).mean() > 0.9
