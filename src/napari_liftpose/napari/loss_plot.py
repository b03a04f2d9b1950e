"""Matplotlib canvases for the dock: the live training loss curve and per-joint errors."""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure

__all__ = ["LossCurve", "JointErrorPlot"]


class LossCurve(FigureCanvasQTAgg):
    """Train and validation loss per epoch, redrawn as epochs finish."""

    def __init__(self):
        self.figure = Figure(figsize=(4, 2.6), layout="constrained")
        super().__init__(self.figure)
        self.axes = self.figure.add_subplot(111)
        self.epochs: list[int] = []
        self.train: list[float] = []
        self.val: list[float] = []
        self.reset()

    def reset(self) -> None:
        """Clear the curves."""
        self.epochs.clear()
        self.train.clear()
        self.val.clear()
        self._draw()

    def add(self, epoch: int, train_loss: float, val_loss: float | None) -> None:
        """Append one epoch and redraw."""
        self.epochs.append(epoch)
        self.train.append(train_loss)
        self.val.append(float("nan") if val_loss is None else val_loss)
        self._draw()

    def _draw(self) -> None:
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
