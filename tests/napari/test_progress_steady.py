"""Steady under progress: no nested event processing in progress handlers.

napari's progress bar calls ``QApplication.processEvents()`` when it moves, so a handler that
moves it inside a queued progress signal is re-entered by the next epoch's signal. These tests
queue many updates at once from a worker thread (as a fast training does) into a real viewer
with the loss plot and napari's bar on screen, and run 20 short trainings in a row.
"""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest
from qtpy.QtCore import QObject, Signal

from napari_liftpose.napari.loss_plot import LossCurve, TrainingProgress

N_UPDATES = 60


class _Relay(QObject):
    progressed = Signal(object)


def _update(epoch: int) -> SimpleNamespace:
    return SimpleNamespace(
        epoch=epoch, train_loss=1.0 / epoch, val_loss=2.0 / epoch, val_mpjpe=0.1 * epoch
    )


def _burst(relay: _Relay, n: int) -> None:
    """Emit ``n`` updates from another thread: they queue up on the GUI thread at once."""
    thread = threading.Thread(
        target=lambda: [relay.progressed.emit(_update(e)) for e in range(1, n + 1)]
    )
    thread.start()
    thread.join()


@pytest.fixture
def curve_in_viewer(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    curve = LossCurve()
    viewer.window.add_dock_widget(curve, name="loss")
    qtbot.wait(50)
    return viewer, curve


def test_add_records_and_a_timer_redraws(curve_in_viewer, qtbot):
    _, curve = curve_in_viewer
    before = curve.redraws
    for epoch in range(1, 6):
        curve.add(epoch, 1.0 / epoch, None)
    assert curve.redraws == before  # nothing drawn inside add()
    qtbot.waitUntil(lambda: curve.redraws == before + 1, timeout=2000)
    assert curve.epochs == [1, 2, 3, 4, 5]
    assert curve.axes.lines[0].get_xdata().tolist() == [1, 2, 3, 4, 5]


def test_training_progress_is_never_reentered(curve_in_viewer, qtbot):
    from napari.utils import progress

    _, curve = curve_in_viewer
    bar = progress(total=N_UPDATES, desc="Training lifter")
    steady = TrainingProgress(curve, bar)
    relay = _Relay()
    relay.progressed.connect(steady.push)

    _burst(relay, N_UPDATES)
    qtbot.waitUntil(lambda: bar.n == N_UPDATES, timeout=10_000)

    assert steady.max_depth == 1
    assert curve.epochs == list(range(1, N_UPDATES + 1))
    assert bar.desc.startswith(f"Training: val MPJPE {0.1 * N_UPDATES:.3g}")
    steady.close()
    assert curve.axes.lines[0].get_xdata().tolist() == curve.epochs  # last epochs drawn


def test_a_handler_moving_napari_bar_nests(curve_in_viewer, qtbot):
    """Why the bar is moved from a timer: moved inside the handler, the handler nests."""
    from napari.utils import progress

    _, curve = curve_in_viewer
    bar = progress(total=N_UPDATES, desc="Training lifter")
    depth = [0, 0]

    def naive(update) -> None:
        depth[0] += 1
        depth[1] = max(depth)
        curve.add(update.epoch, update.train_loss, update.val_loss)
        bar.update(1)  # napari's bar processes events here
        depth[0] -= 1

    relay = _Relay()
    relay.progressed.connect(naive)
    _burst(relay, N_UPDATES)
    qtbot.waitUntil(lambda: bar.n == N_UPDATES, timeout=10_000)
    bar.close()
    assert depth[1] > 1


@pytest.mark.slow
def test_twenty_short_trainings_in_a_row(make_napari_viewer, demo, qtbot, tmp_path):
    import torch

    torch.set_num_threads(1)
    viewer = make_napari_viewer(show=True)
    _, widget = viewer.window.add_plugin_dock_widget("napari-liftpose", "LiftPose")
    widget.tabs.setCurrentIndex(0)  # the Train tab: the loss plot is on screen
    widget.library.value = [str(demo.library)]
    widget.camera_mode.value = "calibration file"
    widget.calibration.value = demo.calibration
    widget.camera_name.value = "demo"
    widget.roots.value = "Thorax"
    widget.epochs.value = 2
    widget.output.value = tmp_path / "stress.safetensors"
    qtbot.waitUntil(widget.loss_curve.isVisible, timeout=5000)

    results = []
    for run in range(20):
        widget.last_result = None
        widget.train_button.clicked()
        qtbot.waitUntil(
            lambda: widget.last_result is not None and widget.train_button.enabled,
            timeout=120_000,
        )
        results.append(widget.last_result)
        assert widget.loss_curve.epochs == [1, 2], f"run {run}"
    assert all(result.written for result in results)
    assert widget.lifter is not None
