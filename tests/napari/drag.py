"""What napari does when a point is dragged and released, for tests."""

from __future__ import annotations

import numpy as np


def drag_point(layer, row: int, delta) -> None:
    """Select ``row``, move it by ``delta`` (all of the layer's axes) and emit the data events."""
    start = layer.data[row].copy()
    layer.selected_data = {row}
    layer._set_drag_start({row}, start)
    layer._move({row}, start + np.asarray(delta))
    layer._drag_start = None
