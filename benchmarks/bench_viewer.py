"""The viewer at scale: 100k frames x 2 animals x 20 keypoints.

Measures, with both viewers open (main 2D + docked 3D):
- adding the lifted 3D layers to the 3D view (target <= 3 s),
- one time-slider step, main viewer and 3D view moving together (target <= 30 ms),
- live re-lift of one edited frame, end to end: drag event -> 3D layer updated (target <= 50 ms),
and prints the batch lifting time for the record. Each viewer measure is split into what
napari and OpenGL do (re-slicing, repainting: under Xvfb the GL is Mesa's software renderer on
the CPU) and what this plugin adds. Run under a display (``xvfb-run -a``).

Also measured (issue 11):
- the floor: napari's own step time with the same layers and no plugin code (a plain 2D Points
  layer in one viewer, the lifted 3D points as a plain ``(t, z, y, x)`` Points layer in a second
  napari viewer in 3D), ours beside it and the ratio (target: the plugin adds <= 10%);
- playback at 30 fps requested with both views open: a 33 ms timer steps the time slider, as
  napari's play button does (its player is not public API), and the frames reached per second
  are counted;
- Cancel: seconds from setting the cancel flag mid-epoch to ``train`` returning (docs: < 1 s).
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from napari_liftpose import Poses
from napari_liftpose.lifting import RandomCameras, TrainConfig, train
from napari_liftpose.napari.layers import points_tuple
from napari_liftpose.napari.skeleton import follow_skeletons


def random_library(frames: int, keypoints: int, seed: int = 0) -> Poses:
    """A random 3D chain 'animal' for timing (quality does not matter here)."""
    rng = np.random.default_rng(seed)
    steps = rng.normal(0, 1, (frames, 1, keypoints, 3))
    coords = np.cumsum(steps, axis=2) + rng.normal(0, 0.1, (frames, 1, 1, 3))
    names = [f"kp{i}" for i in range(keypoints)]
    return Poses(coords=coords, keypoints=names, edges=[(i, i + 1) for i in range(keypoints - 1)])


def tracks_2d(frames: int, animals: int, keypoints: int, seed: int = 1) -> Poses:
    rng = np.random.default_rng(seed)
    centre = np.cumsum(rng.normal(0, 2, (frames, animals, 1, 2)), axis=0) + 500
    coords = centre + rng.normal(0, 20, (1, animals, keypoints, 2))
    names = [f"kp{i}" for i in range(keypoints)]
    return Poses(
        coords=coords,
        keypoints=names,
        individuals=[f"mouse{i}" for i in range(animals)],
        edges=[(i, i + 1) for i in range(keypoints - 1)],
    )


def cancel_seconds(keypoints: int, model: str) -> float:
    """Seconds from setting the cancel flag (mid-run, after epoch 2) until ``train`` returns."""
    cancel = threading.Event()
    asked: list[float] = []

    def progress(update) -> None:
        if update.epoch == 2 and not asked:
            time.sleep(0.3)  # land the request mid-epoch, not right at an epoch's start
            asked.append(time.perf_counter())
            cancel.set()

    with tempfile.TemporaryDirectory() as tmp:
        train(
            random_library(20_000, keypoints, seed=3),
            RandomCameras(),
            Path(tmp) / "cancel.safetensors",
            TrainConfig(model=model, epochs=200, device="cpu"),
            progress=progress,
            cancel=cancel,
        )
        done = time.perf_counter()
    return done - asked[0] if asked else float("nan")


def playback_fps(viewers, frames: int, seconds: float = 3.0, fps: float = 30.0) -> float:
    """Frames per second reached when a timer asks for ``fps`` (napari's play button's way)."""
    from qtpy.QtCore import QElapsedTimer, QEventLoop, QTimer

    shown = [0]
    start = int(viewers[0].dims.current_step[0])

    def tick() -> None:
        shown[0] += 1
        viewers[0].dims.set_current_step(0, (start + shown[0]) % frames)
        for other in viewers[1:]:
            other.dims.set_current_step(0, (start + shown[0]) % frames)

    timer = QTimer()
    timer.setInterval(round(1000 / fps))
    timer.timeout.connect(tick)
    loop = QEventLoop()
    clock = QElapsedTimer()
    QTimer.singleShot(round(1000 * seconds), loop.quit)
    clock.start()
    timer.start()
    loop.exec_() if hasattr(loop, "exec_") else loop.exec()
    timer.stop()
    return shown[0] / (clock.elapsed() / 1000)


def floor_viewers(poses: Poses, lifted: Poses):
    """napari alone with the same layers: 2D points in one viewer, 3D points in a second."""
    import napari

    from napari_liftpose.napari.convert import napari_order

    data, kwargs, _ = points_tuple(poses, name="tracks")
    plain = napari.Viewer(show=True, title="napari alone (2D)")
    plain.add_points(data, face_color=kwargs["face_color"], size=kwargs["size"], border_width=0)
    xyz = napari_order(lifted.coords)  # (frames, individuals, keypoints, z y x)
    t = np.broadcast_to(np.arange(lifted.n_frames)[:, None, None, None], xyz.shape[:3] + (1,))
    rows = np.concatenate([t, xyz], axis=-1).reshape(-1, 4)
    rows = rows[np.isfinite(rows).all(axis=1)]
    plain3d = napari.Viewer(show=True, ndisplay=3, title="napari alone (3D)")
    plain3d.add_points(rows, size=float(np.nanstd(lifted.coords)) / 20, border_width=0)
    return plain, plain3d


def median_ms(fn, repeats: int) -> float:
    times = []
    for i in range(repeats):
        start = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100_000)
    parser.add_argument("--animals", type=int, default=2)
    parser.add_argument("--keypoints", type=int, default=20)
    parser.add_argument("--model", choices=["mlp", "temporal"], default="mlp")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)

    import napari
    from qtpy.QtWidgets import QApplication

    from napari_liftpose.napari.live import LiveRelift
    from napari_liftpose.napari.session import LiftSession
    from napari_liftpose.napari.view3d import get_view3d

    session = LiftSession()
    with tempfile.TemporaryDirectory() as tmp:
        model_path = Path(tmp) / "bench.safetensors"
        train(
            random_library(2000, args.keypoints),
            RandomCameras(),
            model_path,
            TrainConfig(model=args.model, epochs=1, device="cpu"),
        )
        session.load_model(model_path, device="cpu")
    poses = tracks_2d(args.frames, args.animals, args.keypoints)
    start = time.perf_counter()
    lifted = session.lift("tracks", poses)
    t_lift = time.perf_counter() - start

    viewer = napari.Viewer(show=True)
    follow_skeletons(viewer)
    data, kwargs, _ = points_tuple(poses, name="tracks")
    points2d = viewer.add_points(data, **kwargs)
    view = get_view3d(viewer)
    QApplication.processEvents()
    start = time.perf_counter()
    points3d = view.add_poses(lifted, name="tracks 3D")
    QApplication.processEvents()
    t_add3d = time.perf_counter() - start
    live = LiveRelift(session, "tracks", points2d, points3d)

    def step_sliced(i: int) -> None:  # both viewers re-slice their layers (no repaint)
        viewer.dims.set_current_step(0, (i * 4099 + 17) % args.frames)

    def step(i: int) -> None:  # ... and both canvases repaint
        viewer.dims.set_current_step(0, (i * 4099) % args.frames)
        QApplication.processEvents()

    t_step_sliced = median_ms(step_sliced, 30)
    QApplication.processEvents()
    t_step = median_ms(step, 30)

    def drag(i: int) -> None:
        frame = (i * 7919) % args.frames
        viewer.dims.set_current_step(0, frame)
        QApplication.processEvents()
        row = int(live._index2d.rows(frame)[0])
        begin = points2d.data[row].copy()
        points2d._set_drag_start({row}, begin)
        start = time.perf_counter()
        points2d._move({row}, begin + [0, 3.0, -2.0])  # emits the data event a drag emits
        QApplication.processEvents()
        points2d._drag_start = None
        return time.perf_counter() - start

    for i in range(3):
        drag(i)  # warm-up
    t_relift = 1000 * float(np.median([drag(i) for i in range(3, 33)]))
    t_ours = median_ms(lambda i: live.relift((i * 7919) % args.frames), 30)
    fps_ours = playback_fps([viewer], args.frames)

    plain, plain3d = floor_viewers(poses, lifted)
    QApplication.processEvents()

    def step_floor(i: int) -> None:  # the same steps, napari alone, both viewers repainted
        plain.dims.set_current_step(0, (i * 4099) % args.frames)
        plain3d.dims.set_current_step(0, (i * 4099) % args.frames)
        QApplication.processEvents()

    step_floor(0)
    t_floor = median_ms(step_floor, 30)
    fps_floor = playback_fps([plain, plain3d], args.frames)
    plain.close()
    plain3d.close()
    QApplication.processEvents()
    t_step_again = median_ms(step, 30)  # ours once more, after the floor (machine drift)
    t_cancel = cancel_seconds(args.keypoints, args.model)
    n = args.frames * args.animals
    print(
        f"{args.frames} frames x {args.animals} animals x {args.keypoints} keypoints, "
        f"{args.model} lifter"
    )
    print(f"{'measure':42s} {'value':>11s} {'target':>11s} {'ratio':>7s}")
    for name, value, target, unit in (
        ("add 3D layers to the 3D view", t_add3d, 3.0, "s"),
        ("time-slider step, both viewers, repainted", t_step, 30.0, "ms"),
        ("  of which re-slicing both viewers", t_step_sliced, 30.0, "ms"),
        ("live re-lift, drag to repainted 3D", t_relift, 50.0, "ms"),
        ("  of which lift + 3D update (ours)", t_ours, 50.0, "ms"),
    ):
        print(f"{name:42s} {value:9.3g}{unit:>2s} {target:9.3g}{unit:>2s} {value / target:7.2f}")
    print(f"(batch lifting of {n} poses: {t_lift:.2f} s = {n / t_lift:,.0f} poses/s)")
    ours = min(t_step, t_step_again)
    print()
    print(f"{'time-slider step, both views repainted':42s} {'ms':>9s}")
    print(f"{'  napari alone, same layers (floor)':42s} {t_floor:9.3g}")
    print(
        f"{'  napari + napari-liftpose (ours)':42s} {ours:9.3g}  (runs: {t_step:.3g}, {t_step_again:.3g})"
    )
    print(f"{'  ratio ours / floor (target <= 1.10)':42s} {ours / t_floor:9.2f}")
    print(f"{'playback, 30 fps requested, both views':42s} {'fps':>9s}")
    print(f"{'  napari alone, same layers':42s} {fps_floor:9.3g}")
    print(f"{'  napari + napari-liftpose':42s} {fps_ours:9.3g}")
    print(f"{'Cancel: flag set mid-epoch -> train returns':42s} {t_cancel:8.2f}s (target < 1 s)")
    viewer.close()


if __name__ == "__main__":
    main()
