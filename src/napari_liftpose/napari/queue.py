"""The annotator's queue: which frames to look at next, and which 2D points to trust.

A Qt widget for the main viewer. It lists the lifted frames by suspicion (the engine's per-frame
score, ``Poses.suspicion``, with the reason from
:func:`~napari_liftpose.lifting.suspicion.suspicion_report` when given), draws them as a
timeline, moves the viewer's time slider to the next or previous suspicious frame (buttons and
keys), greys or hides 2D points whose confidence is under a cut-off, and lists the edited frames.
It reads the data it is given; it changes only the time slider and how the 2D points are drawn.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from qtpy.QtCore import QRectF, Qt, Signal
from qtpy.QtGui import QColor, QPainter
from qtpy.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from napari_liftpose.napari.convert import POSES_KEY, point_colors, time_point
from napari_liftpose.poses import Poses

__all__ = [
    "AnnotatorQueue",
    "SuspicionTimeline",
    "frame_scores",
    "low_confidence",
    "edited_frames",
    "cutoff_colors",
]

#: Keys bound on the viewer: next / previous suspicious frame.
NEXT_KEY, PREVIOUS_KEY = "n", "Shift-N"
#: How a point under the confidence cut-off is drawn in "grey" mode (RGBA).
GREY = np.array([0.55, 0.55, 0.55, 0.35])


def frame_scores(lifted: Poses, report=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-frame suspicion: the most suspicious individual of each frame.

    Returns
    -------
    scores : np.ndarray
        ``(frames,)`` in [0, 1]; NaN where nothing was lifted (or no scores at all).
    individual : np.ndarray
        ``(frames,)`` int: which individual gave the score.
    reasons : np.ndarray
        ``(frames,)`` str: ``report.reasons`` of that individual, ``""`` without a report.
    """
    suspicion = lifted.suspicion
    if suspicion is None and report is not None:
        suspicion = report.scores
    if suspicion is None:
        nan = np.full(lifted.n_frames, np.nan)
        return nan, np.zeros(lifted.n_frames, int), np.full(lifted.n_frames, "", dtype=object)
    filled = np.where(np.isfinite(suspicion), suspicion, -1.0)
    individual = np.argmax(filled, axis=1)
    frames = np.arange(len(filled))
    scores = np.where(filled[frames, individual] >= 0, filled[frames, individual], np.nan)
    reasons = np.full(len(frames), "", dtype=object)
    if report is not None and report.reasons.shape == suspicion.shape:
        reasons = report.reasons[frames, individual].astype(object)
    return scores, individual, reasons


def low_confidence(features: pd.DataFrame, cutoff: float) -> np.ndarray:
    """Rows whose confidence is under ``cutoff`` (NaN confidence, e.g. a user's point: no)."""
    if "confidence" not in features:
        return np.zeros(len(features), dtype=bool)
    confidence = features["confidence"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        return confidence < cutoff


def cutoff_colors(poses: Poses, features: pd.DataFrame, low: np.ndarray) -> np.ndarray:
    """The layer's own colors (:func:`.convert.point_colors`) with the ``low`` rows greyed."""
    colors = point_colors(poses, features)
    colors[low] = GREY
    return colors


def edited_frames(layer) -> list[int]:
    """Frames of a 2D Points layer with at least one point flagged ``edited``, in order."""
    if "edited" not in layer.features or not len(layer.data):
        return []
    edited = layer.features["edited"].to_numpy(dtype=bool)
    return sorted({int(round(t)) for t in np.asarray(layer.data)[edited, 0]})


class SuspicionTimeline(QWidget):
    """A strip of one bar per frame, as tall as its suspicion; red above the threshold.

    Clicking a frame emits :attr:`clicked` with it. The current frame is a white line.
    """

    clicked = Signal(int)

    def __init__(self):
        super().__init__()
        self.scores = np.zeros(0)
        self.threshold = 0.5
        self.current = 0
        self.setMinimumHeight(36)
        self.setToolTip("suspicion per frame: click to go there")

    def set_scores(self, scores: np.ndarray, threshold: float) -> None:
        """Draw ``scores`` (``(frames,)``, NaN: not lifted) against ``threshold``."""
        self.scores, self.threshold = np.asarray(scores, float), float(threshold)
        self.update()

    def set_current(self, frame: int) -> None:
        """Mark ``frame`` as the one on screen."""
        self.current = int(frame)
        self.update()

    def frame_at(self, x: float) -> int:
        """The frame under the horizontal position ``x`` (pixels)."""
        n = max(len(self.scores), 1)
        return int(np.clip(x / max(self.width(), 1) * n, 0, n - 1))

    def mousePressEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        """Go to the clicked frame."""
        if len(self.scores):
            self.clicked.emit(self.frame_at(event.position().x()))

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        """Bars per frame (binned to the widget's width), the threshold and the current frame."""
        painter = QPainter(self)
        width, height = self.width(), self.height()
        painter.fillRect(0, 0, width, height, QColor(30, 30, 34))
        n = len(self.scores)
        if n:
            columns = max(1, min(width, n))
            edges = np.linspace(0, n, columns + 1).astype(int)
            for column in range(columns):
                chunk = self.scores[edges[column] : max(edges[column + 1], edges[column] + 1)]
                if not np.isfinite(chunk).any():
                    continue
                value = float(np.nanmax(chunk))
                color = QColor(230, 70, 60) if value >= self.threshold else QColor(110, 140, 190)
                bar = value * (height - 2)
                x0, x1 = column * width / columns, (column + 1) * width / columns
                painter.fillRect(QRectF(x0, height - bar, max(x1 - x0, 1.0), bar), color)
            y = height - self.threshold * (height - 2)
            painter.setPen(QColor(200, 200, 200, 120))
            painter.drawLine(0, int(y), width, int(y))
            painter.setPen(QColor(255, 255, 255))
            x = int((self.current + 0.5) / n * width)
            painter.drawLine(x, 0, x, height)
        painter.end()


class AnnotatorQueue(QWidget):
    """The annotator's queue for one 2D layer and its lift.

    Parameters
    ----------
    viewer : napari.Viewer
        The main viewer (a ``PublicOnlyProxy`` works too): its time slider (axis 0) is moved,
        keys ``n`` / ``Shift-N`` are bound on it (next / previous suspicious frame).
    points : napari.layers.Points, optional
        The 2D tracks layer (made by this plugin): confidence cut-off and edited frames.
    lifted : Poses, optional
        The lifted 3D poses with ``suspicion`` (frames, individuals).
    report : SuspicionReport, optional
        ``suspicion_report(lifter, poses_2d, lifted)``: gives the reason of each score.
    threshold : float
        Frames scoring at least this are suspicious (listed, stepped through).
    """

    def __init__(self, viewer, points=None, lifted=None, report=None, threshold: float = 0.5):
        super().__init__()
        self.viewer = viewer
        self.points = None
        self.lifted = None
        self.report = None
        self.scores = np.zeros(0)
        self.individual = np.zeros(0, int)
        self.reasons = np.zeros(0, dtype=object)
        self.threshold = float(threshold)
        self.cutoff = 0.0
        self.n_low = 0
        self._build()
        viewer.dims.events.current_step.connect(self._on_step)
        viewer.bind_key(NEXT_KEY, lambda v: self.next_suspicious(), overwrite=True)
        viewer.bind_key(PREVIOUS_KEY, lambda v: self.previous_suspicious(), overwrite=True)
        self.destroyed.connect(lambda *_: _unbind(viewer, self._on_step))
        if points is not None:
            self.set_points(points)
        if lifted is not None:
            self.set_lifted(lifted, report)

    # -- layout --------------------------------------------------------------------------------
    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        self.summary = QLabel("Lift a layer to rank its frames by suspicion")
        self.summary.setWordWrap(True)
        self.timeline = SuspicionTimeline()
        self.timeline.clicked.connect(self.go_to)
        self.threshold_slider = _slider(self.threshold, tracking=True)
        self.threshold_slider.valueChanged.connect(lambda v: self.set_threshold(v / 100))
        self.threshold_label = QLabel()
        self.previous_button = QPushButton(f"< previous ({PREVIOUS_KEY})")
        self.next_button = QPushButton(f"next suspicious ({NEXT_KEY}) >")
        self.previous_button.clicked.connect(self.previous_suspicious)
        self.next_button.clicked.connect(self.next_suspicious)
        self.suspicious_list = QListWidget()
        self.suspicious_list.itemClicked.connect(lambda item: self.go_to(item.data(_FRAME)))
        self.cutoff_slider = _slider(self.cutoff, tracking=False)  # applied on release
        self.cutoff_slider.valueChanged.connect(lambda v: self.set_cutoff(v / 100))
        self.cutoff_mode = QComboBox()
        self.cutoff_mode.addItems(["grey", "hide"])
        self.cutoff_mode.currentTextChanged.connect(lambda _: self.set_cutoff(self.cutoff))
        self.cutoff_label = QLabel()
        self.cutoff_label.setWordWrap(True)
        self.edited_list = QListWidget()
        self.edited_list.itemClicked.connect(lambda item: self.go_to(item.data(_FRAME)))
        buttons = QHBoxLayout()
        buttons.addWidget(self.previous_button)
        buttons.addWidget(self.next_button)
        cutoff_row = QHBoxLayout()
        cutoff_row.addWidget(self.cutoff_slider)
        cutoff_row.addWidget(self.cutoff_mode)
        for item in (self.summary, self.timeline, self.threshold_label, self.threshold_slider):
            layout.addWidget(item)
        layout.addLayout(buttons)
        layout.addWidget(self.suspicious_list, stretch=2)
        layout.addWidget(self.cutoff_label)
        layout.addLayout(cutoff_row)
        layout.addWidget(QLabel("Edited frames"))
        layout.addWidget(self.edited_list, stretch=1)
        self._show_threshold()
        self._show_cutoff()

    # -- data ----------------------------------------------------------------------------------
    def set_lifted(self, lifted: Poses, report=None) -> None:
        """Rank ``lifted``'s frames (its ``suspicion``; reasons from ``report`` when given)."""
        self.lifted, self.report = lifted, report
        self.scores, self.individual, self.reasons = frame_scores(lifted, report)
        self._refresh_suspicious()

    def set_points(self, layer) -> None:
        """Follow a 2D tracks layer: its edited frames and the confidence cut-off."""
        if self.points is not None:
            self.points.events.data.disconnect(self._on_points)
            self.points.events.features.disconnect(self._on_points)
        self.points = layer
        layer.events.data.connect(self._on_points)
        layer.events.features.connect(self._on_points)
        self._on_points()

    def _on_points(self, event=None) -> None:
        action = str(getattr(event, "action", ""))
        if (
            event is None
            or "added" in action
            or "removed" in action
            or "features" in str(getattr(event, "type", ""))
        ):
            if self.cutoff > 0:
                self.set_cutoff(self.cutoff)
        self._show_cutoff()
        self._refresh_edited()

    # -- suspicion -----------------------------------------------------------------------------
    def suspicious_frames(self) -> np.ndarray:
        """Frames scoring at least the threshold, in time order."""
        with np.errstate(invalid="ignore"):
            return np.nonzero(self.scores >= self.threshold)[0]

    def ranked_frames(self) -> np.ndarray:
        """Suspicious frames, most suspicious first (the list's order)."""
        frames = self.suspicious_frames()
        return frames[np.argsort(-self.scores[frames], kind="stable")]

    def set_threshold(self, value: float) -> None:
        """Frames scoring at least ``value`` (0..1) are suspicious."""
        self.threshold = float(value)
        self._show_threshold()
        self._refresh_suspicious()

    def _show_threshold(self) -> None:
        self.threshold_label.setText(f"Suspicious: score at least {self.threshold:.2f}")

    def _refresh_suspicious(self) -> None:
        self.timeline.set_scores(self.scores, self.threshold)
        self.suspicious_list.clear()
        ranked = self.ranked_frames()
        names = self.lifted.individuals if self.lifted is not None else []
        several = len(names) > 1
        for frame in ranked:
            who = f" {names[self.individual[frame]]}" if several else ""
            why = f"  {self.reasons[frame]}" if self.reasons[frame] else ""
            item = QListWidgetItem(f"frame {frame}{who}  {self.scores[frame]:.2f}{why}")
            item.setData(_FRAME, int(frame))
            self.suspicious_list.addItem(item)
        n_lifted = int(np.isfinite(self.scores).sum())
        if n_lifted:
            self.summary.setText(
                f"{len(ranked)} of {n_lifted} lifted frames suspicious (most suspicious first)"
            )

    def current_frame(self) -> int:
        """The frame the viewer's time slider is on."""
        return time_point(self.viewer.dims)

    def go_to(self, frame: int) -> None:
        """Move the viewer's time slider to ``frame``."""
        self.viewer.dims.set_point(0, int(frame))
        self.timeline.set_current(int(frame))

    def next_suspicious(self) -> int | None:
        """Go to the first suspicious frame after the current one (wrapping); return it."""
        return self._step(+1)

    def previous_suspicious(self) -> int | None:
        """Go to the last suspicious frame before the current one (wrapping); return it."""
        return self._step(-1)

    def _step(self, direction: int) -> int | None:
        frames = self.suspicious_frames()
        if not len(frames):
            return None
        now = self.current_frame()
        ahead = frames[frames > now] if direction > 0 else frames[frames < now][::-1]
        frame = int(ahead[0] if len(ahead) else (frames[0] if direction > 0 else frames[-1]))
        self.go_to(frame)
        return frame

    def _on_step(self, event=None) -> None:
        self.timeline.set_current(self.current_frame())

    # -- confidence cut-off --------------------------------------------------------------------
    def set_cutoff(self, value: float, mode: str | None = None) -> int:
        """Grey (or hide) 2D points whose confidence is under ``value``; return how many.

        ``mode`` is ``"grey"`` or ``"hide"`` (default: the mode chosen in the widget). Points
        without a confidence (NaN, e.g. placed by the user) are never under the cut-off. A
        cut-off of 0 draws every point as it was.
        """
        if mode is not None:
            self.cutoff_mode.setCurrentText(mode)
        self.cutoff = float(value)
        layer = self.points
        if layer is None or not isinstance(layer.metadata.get(POSES_KEY), Poses):
            self.n_low = 0
            self._show_cutoff()
            return 0
        low = low_confidence(layer.features, self.cutoff)
        hide = self.cutoff_mode.currentText() == "hide"
        poses = layer.metadata[POSES_KEY]
        layer.face_color = (
            point_colors(poses, layer.features)
            if hide
            else cutoff_colors(poses, layer.features, low)
        )
        layer.shown = ~low if hide else np.ones(len(low), dtype=bool)
        self.n_low = int(low.sum())
        self._show_cutoff()
        return self.n_low

    def _show_cutoff(self) -> None:
        n_rows = len(self.points.data) if self.points is not None else 0
        share = f" ({100 * self.n_low / n_rows:.1f}%)" if n_rows else ""
        self.cutoff_label.setText(
            f"2D points under confidence {self.cutoff:.2f}: {self.n_low} of {n_rows}{share}"
        )

    # -- edited frames -------------------------------------------------------------------------
    def _refresh_edited(self) -> None:
        frames = edited_frames(self.points) if self.points is not None else []
        if [self.edited_list.item(i).data(_FRAME) for i in range(self.edited_list.count())] == (
            frames
        ):
            return
        self.edited_list.clear()
        for frame in frames:
            item = QListWidgetItem(f"frame {frame}")
            item.setData(_FRAME, frame)
            self.edited_list.addItem(item)


_FRAME = Qt.ItemDataRole.UserRole


def _slider(value: float, tracking: bool) -> QSlider:
    slider = QSlider(Qt.Orientation.Horizontal)
    slider.setRange(0, 100)
    slider.setValue(int(round(100 * value)))
    slider.setTracking(tracking)
    return slider


def _unbind(viewer, on_step) -> None:
    """Forget the queue's keys and slider hook (the widget is gone)."""
    viewer.dims.events.current_step.disconnect(on_step)
    for key in (NEXT_KEY, PREVIOUS_KEY):
        try:
            viewer.bind_key(key, None)
        except (KeyError, ValueError):  # already unbound
            pass
