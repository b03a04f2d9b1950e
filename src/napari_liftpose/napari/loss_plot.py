"""Matplotlib canvases for the dock: the live training loss curve and per-joint errors.

Steady under progress: training progress arrives as queued signals, and napari's progress bar
calls ``QApplication.processEvents()`` when its value or description changes, so a handler that
updates the bar can be re-entered by the next epoch's signal (nesting 18 deep was measured, then
a ``RecursionError``). :class:`LossCurve` therefore only records data in :meth:`LossCurve.add`
and redraws from a timer at most every :data:`REDRAW_MS`; :class:`TrainingProgress` records each
update and applies it to napari's bar from a timer, never inside the signal handler, with a guard
so that events processed by the bar cannot start a second application.
"""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from qtpy.QtCore import QTimer

__all__ = ["LossCurve", "JointErrorPlot", "TrainingProgress", "REDRAW_MS"]

#: Shortest interval between two redraws of the loss curve or updates of the progress bar.
REDRAW_MS = 100


def _single_shot(parent, slot) -> QTimer:
    timer = QTimer(parent)
    timer.setSingleShot(True)
    timer.setInterval(REDRAW_MS)
    timer.timeout.connect(slot)
    return timer


class LossCurve(FigureCanvasQTAgg):
    """Train and validation loss per epoch, redrawn at most every :data:`REDRAW_MS`."""

    def __init__(self):
        self.figure = Figure(figsize=(4, 2.6), layout="constrained")
        super().__init__(self.figure)
        self.axes = self.figure.add_subplot(111)
        self.epochs: list[int] = []
        self.train: list[float] = []
        self.val: list[float] = []
        self.redraws = 0  # how many times the curve was drawn (for tests and benchmarks)
        self._redraw_timer = _single_shot(self, self._draw)
        self.reset()

    def reset(self) -> None:
        """Clear the curves (drawn now: a new run starts from an empty plot)."""
        self._redraw_timer.stop()
        self.epochs.clear()
        self.train.clear()
        self.val.clear()
        self._draw()

    def add(self, epoch: int, train_loss: float, val_loss: float | None) -> None:
        """Append one epoch; the curve is redrawn by a timer, never inside this call."""
        self.epochs.append(epoch)
        self.train.append(train_loss)
        self.val.append(float("nan") if val_loss is None else val_loss)
        if not self._redraw_timer.isActive():
            self._redraw_timer.start()

    def flush(self) -> None:
        """Draw what is pending now (the end of a run)."""
        if self._redraw_timer.isActive():
            self._redraw_timer.stop()
            self._draw()

    def _draw(self) -> None:
        self.redraws += 1
        ax = self.axes
        ax.clear()
        ax.plot(self.epochs, self.train, "o-", ms=3, color="tab:blue", label="train")
        ax.plot(self.epochs, self.val, "o-", ms=3, color="tab:orange", label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        if self.train:
            ax.set_yscale("log")
            ax.legend(loc="upper right", fontsize=8)
        ax.set_title("Training loss", fontsize=9)
        self.draw_idle()


class JointErrorPlot(FigureCanvasQTAgg):
    """A horizontal bar per keypoint: its mean 3D error."""

    def __init__(self):
        self.figure = Figure(figsize=(4, 5), layout="constrained")
        super().__init__(self.figure)
        self.axes = self.figure.add_subplot(111)

    def show_errors(self, names: Sequence[str], errors: Sequence[float | None], units: str) -> None:
        """Plot ``errors`` (None for joints without a value) against ``names``."""
        ax = self.axes
        ax.clear()
        values = [float("nan") if e is None else e for e in errors]
        ax.barh(range(len(names)), values, color="tab:blue")
        ax.set_yticks(range(len(names)), names, fontsize=6)
        ax.invert_yaxis()
        ax.set_xlabel(f"MPJPE ({units})" if units else "MPJPE")
        ax.set_title("Per-joint error", fontsize=9)
        self.draw_idle()


class TrainingProgress:
    """Feeds training updates to a :class:`LossCurve` and a napari progress bar, steadily.

    Call :meth:`push` from the progress signal's handler: it only records the update. The bar
    (whose updates process Qt events) is moved by a timer at most every :data:`REDRAW_MS`, and
    never re-entered: updates that arrive while the bar processes events are applied next time.

    Parameters
    ----------
    curve : LossCurve
        The loss plot.
    bar : napari.utils.progress, optional
        napari's progress bar of the run (``total`` = epochs).
    """

    def __init__(self, curve: LossCurve, bar=None):
        self.curve = curve
        self.bar = bar
        self.epochs_done = 0
        self.description: str | None = None
        self.depth = 0  # how deep push() is nested now ...
        self.max_depth = 0  # ... and at most (1 = never re-entered)
        self._applied = 0
        self._applying = False
        self._timer = _single_shot(curve, self._apply)

    def push(self, update) -> None:
        """Record one epoch's update (``epoch``, ``train_loss``, ``val_loss``, ``val_mpjpe``)."""
        self.depth += 1
        self.max_depth = max(self.max_depth, self.depth)
        try:
            self.curve.add(update.epoch, update.train_loss, update.val_loss)
            self.epochs_done += 1
            if getattr(update, "val_mpjpe", None) is not None:
                self.description = f"Training: val MPJPE {update.val_mpjpe:.3g}"
            if self.bar is not None and not self._timer.isActive():
                self._timer.start()
        finally:
            self.depth -= 1

    def _apply(self) -> None:
        bar = self.bar
        if self._applying or bar is None:
            return
        self._applying = True
        try:
            if self.description is not None:
                bar.set_description(self.description)
            step = self.epochs_done - self._applied
            self._applied = self.epochs_done
            if step > 0:
                bar.update(step)
        finally:
            self._applying = False
        if self.epochs_done > self._applied and not self._timer.isActive():
            self._timer.start()  # updates arrived while the bar processed events

    def close(self) -> None:
        """Stop the timer, draw the curve's last epochs and close the bar (the run ended)."""
        self._timer.stop()
        self.curve.flush()
        bar, self.bar = self.bar, None
        if bar is not None:
            bar.close()
