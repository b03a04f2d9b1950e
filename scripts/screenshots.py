"""Take the user guide's screenshots from the running plugin (run under a display or xvfb-run).

xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python scripts/screenshots.py docs/images
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import napari
import numpy as np
from qtpy.QtWidgets import QApplication

from napari_liftpose.demo import build_demo_files


def settle(seconds: float = 0.5) -> None:
    end = time.time() + seconds
    while time.time() < end:
        QApplication.processEvents()
        time.sleep(0.02)


def save(viewer, path: Path) -> None:
    settle()
    viewer.screenshot(str(path), canvas_only=False, flash=False)
    print("wrote", path)


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    files = build_demo_files(Path(tempfile.mkdtemp()) / "demo")
    viewer = napari.Viewer(title="napari-liftpose")
    viewer.window.resize(1600, 1000)
    viewer.open(files.tracks, plugin="napari-liftpose")
    viewer.dims.set_current_step(0, 120)
    save(viewer, out / "1-open-tracks.png")

    _, widget = viewer.window.add_plugin_dock_widget("napari-liftpose", "LiftPose")
    widget.library.value = [str(files.library)]
    widget.camera_mode.value = "calibration file"
    widget.calibration.value = files.calibration
    widget.camera_name.value = "demo"
    widget.roots.value = "Thorax"
    widget.epochs.value = 12
    widget.output.value = files.folder / "lifter.safetensors"
    widget.train_button.clicked()
    while widget._worker is not None:
        settle(0.2)
    save(viewer, out / "2-train.png")

    widget.show_tab("Lift")
    widget.lift_layer.value = files.tracks.name
    shown = []
    widget.lift_selected(then=shown.append)
    while not shown:
        settle(0.1)
    viewer.dims.set_current_step(0, 120)  # the 3D view starts oblique, fitted to the animal
    save(viewer, out / "3-lift-3d-view.png")

    points = viewer.layers[files.tracks.name]
    row = int(np.nonzero(points.data[:, 0] == 120)[0][5])
    start = points.data[row].copy()
    points._set_drag_start({row}, start)
    points._move({row}, start + [0, 25, 35])
    points._drag_start = None
    points.selected_data = {row}
    save(viewer, out / "4-live-relift.png")

    widget.show_tab("Annotate")  # keypoint chooser, Save labels, the queue ranked by suspicion
    save(viewer, out / "6-annotate.png")

    widget.show_tab("Evaluate")
    widget.truth_file.value = files.truth
    widget.evaluate_against(files.truth)  # the truth is overlaid, muted, in the 3D view
    save(viewer, out / "5-evaluate.png")
    viewer.close()


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/images"))
