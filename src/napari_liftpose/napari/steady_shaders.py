"""Keep a bones layer's shader program across data updates (a work-around for vispy#2568).

vispy's ``MeshVisual.set_data`` builds a new colour-transform shader function on every call, so
the mesh's shader program is generated, compiled and linked again at the next draw
(https://github.com/vispy/vispy/issues/2568, open). napari draws Vectors layers as meshes, and the
bones are rewritten at every time step: ~8 ms per canvas per step in software OpenGL, the largest
single cost of a step at 100 frames. Bones carry RGBA colours, whose transform is vispy's
pass-through, so one transform per visual serves every update and the program stays built.

Only private attributes are touched; if napari or vispy change them this does nothing.
"""

from __future__ import annotations

__all__ = ["keep_shader_program", "window_canvas"]


def window_canvas(viewer):
    """The vispy canvas of a ``napari.Viewer`` with a window (None for a bare ``ViewerModel``)."""
    qt_viewer = getattr(getattr(viewer, "window", None), "_qt_viewer", None)
    return getattr(qt_viewer, "canvas", None)


def keep_shader_program(canvas, layer) -> bool:
    """Give ``layer``'s mesh on ``canvas`` one colour transform for good; True if it applied."""
    visual = getattr(canvas, "layer_to_visual", {}).get(layer)
    node = getattr(visual, "node", None)
    build = getattr(node, "_build_color_transform", None)
    if build is None:
        return False
    kept = {}

    def build_once(colors):
        if colors.ndim == 2 and colors.shape[1] == 1:  # values through a colormap: vispy's way
            return build(colors)
        if "rgba" not in kept:
            kept["rgba"] = build(colors)
        return kept["rgba"]

    node._build_color_transform = build_once
    return True
