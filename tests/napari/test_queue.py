"""The annotator's queue in a real viewer: suspicious frames, keys, confidence cut-off, edits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from app_model.types import KeyBinding
from napari.layers import Layer

from napari_liftpose.napari.layers import points_tuple
from napari_liftpose.napari.queue import GREY, NEXT_KEY, PREVIOUS_KEY, AnnotatorQueue
from tests.napari.drag import drag_point
from tests.napari.fly_lift import fly_lift


def _colored(image: np.ndarray) -> np.ndarray:
    rgb = image[..., :3].astype(int)
    return (rgb.max(-1) - rgb.min(-1)) > 80


@pytest.fixture
def reaching(make_napari_viewer, data_dir):
    """The real DeepLabCut reaching file open in a viewer, with the queue docked."""
    path = data_dir / "dlc_reaching_2d" / "reachingDEMO_2D.h5"
    viewer = make_napari_viewer(show=True)
    [layer] = viewer.open(path, plugin="napari-liftpose")
    queue = AnnotatorQueue(viewer, points=layer)
    viewer.window.add_dock_widget(queue, name="Queue")
    likelihood = pd.read_hdf(path).xs("likelihood", axis=1, level=-1).to_numpy()
    return viewer, queue, layer, likelihood


def test_confidence_cutoff_greys_then_hides_the_unsure_points(reaching, qtbot):
    viewer, queue, layer, likelihood = reaching
    shown_rows = len(layer.data)
    expected = int((likelihood[np.isfinite(likelihood)] < 0.6).sum())
    # the frame with the most unsure points
    low_rows = layer.features["confidence"].to_numpy() < 0.6
    frame = int(np.bincount(layer.data[low_rows, 0].astype(int)).argmax())
    viewer.dims.set_point(0, frame)
    qtbot.wait(200)
    before = _colored(viewer.screenshot(canvas_only=True, flash=False)).sum()
    assert f"under confidence 0.00: 0 of {shown_rows}" in queue.cutoff_label.text()
    queue.cutoff_slider.setValue(60)  # what releasing the slider at 0.60 does
    assert queue.n_low == int(low_rows.sum()) == expected
    assert f"{expected} of {shown_rows}" in queue.cutoff_label.text()
    share = 100 * expected / shown_rows
    assert f"({share:.1f}%)" in queue.cutoff_label.text()
    assert 14 < share < 18  # the issue measured 15.8% of the reaching points under 0.6
    np.testing.assert_allclose(layer.face_color[low_rows], np.tile(GREY, (expected, 1)))
    assert layer.shown.all()
    qtbot.wait(200)
    greyed = _colored(viewer.screenshot(canvas_only=True, flash=False)).sum()
    queue.set_cutoff(0.6, mode="hide")
    assert not layer.shown[low_rows].any() and layer.shown[~low_rows].all()
    # back to 0: every point as it was
    queue.cutoff_slider.setValue(0)
    assert layer.shown.all() and queue.n_low == 0
    assert np.ptp(layer.face_color[low_rows][:, :3], axis=1).max() > 0.5  # colored again
    qtbot.wait(200)
    restored = _colored(viewer.screenshot(canvas_only=True, flash=False)).sum()
    assert greyed < before and restored == before


@pytest.fixture
def fly_queue(make_napari_viewer, data_dir, tmp_path_factory):
    """A lift of damaged fly 2D: the 2D layer in the viewer, the queue docked."""
    lift = fly_lift(data_dir, tmp_path_factory.mktemp("fly"))
    viewer = make_napari_viewer(show=True)
    layer = viewer.add_layer(Layer.create(*points_tuple(lift.poses_2d, name="fly 2D")))
    queue = AnnotatorQueue(viewer, points=layer, lifted=lift.lifted, report=lift.report)
    viewer.window.add_dock_widget(queue, name="Queue")
    return viewer, queue, layer, lift


@pytest.mark.slow
def test_the_queue_ranks_the_damaged_frames_first(fly_queue):
    viewer, queue, layer, lift = fly_queue
    damaged = lift.damaged[:, 0]
    ranked = queue.ranked_frames()
    items = [queue.suspicious_list.item(i).text() for i in range(queue.suspicious_list.count())]
    assert len(items) == len(ranked) > 0
    scores = lift.lifted.suspicion[ranked, 0]
    assert (np.diff(scores) <= 0).all()  # most suspicious first
    assert damaged[ranked[:10]].all()  # the damaged frames lead the list
    first = ranked[0]
    assert items[0] == f"frame {first}  {scores[0]:.2f}  {lift.report.reasons[first, 0]}"
    # the threshold decides what is listed
    queue.threshold_slider.setValue(95)
    assert (lift.lifted.suspicion[queue.suspicious_frames(), 0] >= 0.95).all()
    assert queue.suspicious_list.count() == len(queue.suspicious_frames())


@pytest.mark.slow
def test_next_and_previous_move_the_time_slider(fly_queue, qtbot):
    viewer, queue, layer, lift = fly_queue
    frames = queue.suspicious_frames()
    viewer.dims.set_point(0, 0)
    queue.next_button.click()
    assert viewer.dims.point[0] == frames[frames > 0][0]
    queue.next_button.click()
    assert viewer.dims.point[0] == frames[frames > 0][1]
    queue.previous_button.click()
    assert viewer.dims.point[0] == frames[frames > 0][0]
    # the keys bound on the viewer do the same
    viewer.keymap[KeyBinding.from_str(NEXT_KEY)](viewer)
    assert viewer.dims.point[0] == frames[frames > 0][1]
    viewer.keymap[KeyBinding.from_str(PREVIOUS_KEY)](viewer)
    assert viewer.dims.point[0] == frames[frames > 0][0]
    # a click in the list and on the timeline go there too
    queue.suspicious_list.itemClicked.emit(queue.suspicious_list.item(0))
    assert viewer.dims.point[0] == queue.ranked_frames()[0]
    queue.timeline.clicked.emit(42)
    assert viewer.dims.point[0] == 42 and queue.timeline.current == 42


@pytest.mark.slow
def test_edited_frames_are_listed(fly_queue):
    viewer, queue, layer, lift = fly_queue
    assert queue.edited_list.count() == 0
    for frame in (17, 5):
        viewer.dims.set_point(0, frame)
        row = int(np.nonzero(layer.data[:, 0] == frame)[0][3])
        drag_point(layer, row, [0, 4, -3])
        features = layer.features.copy()
        features.loc[row, "edited"] = True  # what the plugin's editing does on a move
        layer.features = features
    listed = [queue.edited_list.item(i).text() for i in range(queue.edited_list.count())]
    assert listed == ["frame 5", "frame 17"]
    queue.edited_list.itemClicked.emit(queue.edited_list.item(1))
    assert viewer.dims.point[0] == 17
