"""Open a 100k-frame, 2-animal, 20-keypoint SLEAP analysis file and DLC .h5 into napari layers.

Prints the time of each step, the total against the 3 s target, and the ratio to a bare
h5py / pandas read of the same file (the floor). Also measures the skeleton as Shapes lines
against a Vectors layer (adding the layer and stepping the time slider).

Run under a display (e.g. ``xvfb-run -a python benchmarks/bench_io.py``).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from napari_liftpose import Poses
from napari_liftpose.io import read_poses
from napari_liftpose.napari.convert import napari_order
from napari_liftpose.napari.layers import pose_layer_tuples
from napari_liftpose.napari.skeleton import follow_skeletons


def make_poses_array(frames: int, animals: int, keypoints: int, seed: int = 0) -> np.ndarray:
    """Random-walk poses ``(frames, animals, keypoints, 2)`` with 5% missing points."""
    rng = np.random.default_rng(seed)
    centre = np.cumsum(rng.normal(0, 2, (frames, animals, 1, 2)), axis=0) + 500
    coords = centre + rng.normal(0, 20, (1, animals, keypoints, 2))
    coords[rng.random(coords.shape[:3]) < 0.05] = np.nan
    return coords


def write_sleap_analysis(coords: np.ndarray, path: Path) -> None:
    frames, animals, keypoints, _ = coords.shape
    with h5py.File(path, "w") as f:
        f["tracks"] = coords.transpose(1, 3, 2, 0)
        f["point_scores"] = np.ones((animals, keypoints, frames))
        f["node_names"] = np.array([f"kp{i}".encode() for i in range(keypoints)])
        f["track_names"] = np.array([f"mouse{i}".encode() for i in range(animals)])
        f["edge_inds"] = np.array([[i, i + 1] for i in range(keypoints - 1)])


def write_dlc(coords: np.ndarray, path: Path) -> None:
    frames, animals, keypoints, _ = coords.shape
    columns = pd.MultiIndex.from_tuples(
        [
            ("bench", f"mouse{a}", f"kp{k}", c)
            for a in range(animals)
            for k in range(keypoints)
            for c in ("x", "y", "likelihood")
        ],
        names=["scorer", "individuals", "bodyparts", "coords"],
    )
    values = np.concatenate([coords, np.ones(coords.shape[:3] + (1,))], axis=-1)
    pd.DataFrame(values.reshape(frames, -1), columns=columns).to_hdf(
        path, key="df_with_missing", format="table", mode="w"
    )


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def open_into_layers(viewer, path: Path) -> dict:
    viewer.layers.clear()
    poses, t_read = timed(lambda: read_poses(path))
    tuples, t_convert = timed(lambda: pose_layer_tuples(poses))

    def add():
        for data, kwargs, kind in tuples:
            getattr(viewer, f"add_{kind}")(data, **kwargs)

    _, t_add = timed(add)
    steps = [timed(lambda s=s: viewer.dims.set_current_step(0, s * 997))[1] for s in range(1, 21)]
    return {
        "step": float(np.median(steps)),
        "read": t_read,
        "convert": t_convert,
        "add": t_add,
        "total": t_read + t_convert + t_add,
        "points": len(tuples[-1][0]),
    }


def all_bones(poses: Poses) -> tuple[np.ndarray, np.ndarray]:
    """Vectors data for every bone of every frame (the alternative the plugin does not use): ``(n_bones, 2, 1 + space)`` and the individual of each bone.

    Each vector starts at the first keypoint of an edge (``t`` included) and its projection
    reaches the second (``t`` component 0). Bones with a missing end are left out.
    """
    n_dims = 1 + poses.n_space
    if len(poses.edges) == 0:
        return np.zeros((0, 2, n_dims)), np.zeros(0, dtype=int)
    start = poses.coords[:, :, poses.edges[:, 0]]  # (F, I, E, space)
    end = poses.coords[:, :, poses.edges[:, 1]]
    valid = np.isfinite(start).all(-1) & np.isfinite(end).all(-1)
    t, i, e = np.nonzero(valid)
    vectors = np.zeros((t.size, 2, n_dims))
    vectors[:, 0, 0] = t
    vectors[:, 0, 1:] = napari_order(start[t, i, e])
    vectors[:, 1, 1:] = napari_order(end[t, i, e]) - vectors[:, 0, 1:]
    return vectors, i


def skeleton_layers(viewer, path: Path, frames: int) -> None:
    """Shapes lines vs a Vectors layer for the same bones (first ``frames`` frames)."""
    poses = read_poses(path)
    poses = poses.copy(coords=poses.coords[:frames], confidence=poses.confidence[:frames])
    vectors, _ = all_bones(poses)
    lines = np.stack([vectors[:, 0], vectors[:, 0] + vectors[:, 1]], axis=1)
    print(
        f"\nskeleton as ONE layer of all bones (not what the plugin does), {frames} frames ({len(vectors)} bones):"
    )
    for kind, add in (
        ("Vectors", lambda: viewer.add_vectors(vectors, edge_width=1)),
        ("Shapes ", lambda: viewer.add_shapes(list(lines), shape_type="line", edge_width=1)),
    ):
        viewer.layers.clear()
        _, t_add = timed(add)
        viewer.dims.set_current_step(0, 0)
        steps = []
        for step in range(1, 21):
            _, dt = timed(lambda s=step: viewer.dims.set_current_step(0, s * 3))
            steps.append(dt)
        print(f"  {kind}: add {t_add:7.3f} s, time-slider step {1000 * np.median(steps):7.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100_000)
    parser.add_argument("--animals", type=int, default=2)
    parser.add_argument("--keypoints", type=int, default=20)
    parser.add_argument("--shapes-frames", type=int, default=2_000)
    args = parser.parse_args()

    import napari

    coords = make_poses_array(args.frames, args.animals, args.keypoints)
    viewer = napari.Viewer(show=False)
    follow_skeletons(viewer)  # what the reader does: a bones layer that follows the slider
    with tempfile.TemporaryDirectory() as tmp:
        files = {
            "SLEAP analysis .h5": Path(tmp) / "bench.analysis.h5",
            "DLC .h5": Path(tmp) / "benchDLC_resnet50.h5",
        }
        write_sleap_analysis(coords, files["SLEAP analysis .h5"])
        write_dlc(coords, files["DLC .h5"])
        floors = {
            "SLEAP analysis .h5": lambda: h5py.File(files["SLEAP analysis .h5"])["tracks"][:],
            "DLC .h5": lambda: pd.read_hdf(files["DLC .h5"]),
        }
        print(f"{args.frames} frames x {args.animals} animals x {args.keypoints} keypoints")
        print(
            f"{'file':20s} {'read':>7s} {'convert':>8s} {'add':>7s} {'total':>7s} "
            f"{'floor':>7s} {'x floor':>8s} {'target':>7s} {'step ms':>8s}"
        )
        for name, path in files.items():
            open_into_layers(viewer, path)  # warm up imports and napari's first-layer costs
            result = open_into_layers(viewer, path)
            _, floor = timed(floors[name])
            print(
                f"{name:20s} {result['read']:7.2f} {result['convert']:8.2f} {result['add']:7.2f} "
                f"{result['total']:7.2f} {floor:7.2f} {result['total'] / floor:8.1f} "
                f"{'<= 3 s' if result['total'] <= 3 else 'MISSED':>7s} {1000 * result['step']:8.1f}"
            )
        skeleton_layers(viewer, files["SLEAP analysis .h5"], args.shapes_frames)
    viewer.close()


if __name__ == "__main__":
    main()
