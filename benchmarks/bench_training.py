#!/usr/bin/env python
"""Training speed: seconds per epoch of 100k poses, on a GPU when there is one.

DESIGN.md's target: "on a GPU, an epoch of 100k poses in about a second". The library is the
package's own walking insect (33 keypoints), seen by random virtual cameras (camera-agnostic
training, the most work per pose: a new projection for every sample and epoch). Every model is
trained for a few epochs without early stopping; the first epoch (warm-up: CUDA kernels, cuDNN
autotuning) is reported apart from the median of the others.

Usage: ``python benchmarks/bench_training.py [--poses 100000] [--epochs 4] [--device auto]``
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from napari_liftpose.lifting import RandomCameras, TrainConfig, train
from napari_liftpose.lifting.training import resolve_device
from napari_liftpose.synthetic import walking_insect

MODELS = {
    "mlp": ("mlp", None),
    "mlp-liftpose3d-size": ("mlp", {"width": 1024, "blocks": 2}),
    "temporal": ("temporal", None),
}


def epoch_times(library, model: str, architecture, epochs: int, device: str) -> list[float]:
    """Wall-clock seconds of each training epoch."""
    stamps: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        train(
            library,
            RandomCameras(),
            Path(tmp) / "bench.safetensors",
            TrainConfig(
                model=model, architecture=architecture, epochs=epochs, patience=0, device=device
            ),
            progress=lambda p: stamps.append(time.perf_counter()),
        )
    return list(np.diff([start, *stamps]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--poses", type=int, default=100_000)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    args = parser.parse_args()

    device = resolve_device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    library = walking_insect(n_frames=args.poses)
    print(
        f"{args.poses} poses x {library.n_keypoints} keypoints, device {device} ({name}), "
        f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads"
    )
    print(
        f"{'model':22s} {'setup+epoch 1':>14s} {'epoch (median)':>15s} {'poses/s':>12s} "
        f"{'per 100k':>9s} {'target':>7s} {'ratio':>6s}"
    )
    for label in args.models:
        model, architecture = MODELS[label]
        times = epoch_times(library, model, architecture, args.epochs, str(device))
        rest = float(np.median(times[1:])) if len(times) > 1 else times[0]
        per_100k = rest * 100_000 / args.poses
        print(
            f"{label:22s} {times[0]:13.2f}s {rest:14.2f}s {args.poses / rest:12,.0f} "
            f"{per_100k:8.2f}s {1.0:6.1f}s {per_100k / 1.0:6.2f}"
        )


if __name__ == "__main__":
    main()
