"""npe2 sample data: a synthetic walking insect (video + 2D tracks), generated on the spot."""

from __future__ import annotations

from napari_liftpose.napari.layers import points_tuple
from napari_liftpose.synthetic import demo_camera, project_poses, render_video
from napari_liftpose.synthetic import walking_insect as simulate_walk

__all__ = ["walking_insect"]


def walking_insect(n_frames: int = 300) -> list[tuple]:
    """Layer data of a rendered walking insect and its 2D tracks (bones follow the slider)."""
    from napari import current_viewer

    from napari_liftpose.napari.skeleton import follow_skeletons

    camera = demo_camera()
    tracks = project_poses(simulate_walk(n_frames, seed=0), camera, noise_px=0.5, seed=0)
    tracks.source = None
    video = render_video(tracks, camera.size)
    follow_skeletons(current_viewer())
    return [
        (video, {"name": "walking insect video", "contrast_limits": (0, 255)}, "image"),
        points_tuple(tracks, name="walking insect"),
    ]
