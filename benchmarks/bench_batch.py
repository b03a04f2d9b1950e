"""Archive lifting: in-process vs a 2-process pool vs a 2-worker Dask LocalCluster.

Writes ``--files`` SLEAP analysis files of ``--frames`` frames x 20 keypoints (a synthetic
insect seen by the demo camera), trains a small random-camera MLP lifter on the insect (a
minute; accuracy does not matter here), then lifts the whole archive three ways with the same
per-file function (:func:`napari_liftpose.batch.lift_file`, one PyTorch thread per process):

- in this process (the reference: one core),
- ``run_in_pool`` with 2 workers (the CLI's ``--workers 2``),
- ``run_on_dask`` on a ``LocalCluster(n_workers=2, threads_per_worker=1)`` (``--scheduler``).

Prints poses/s for each and the overhead against the ideal of 2x the in-process rate
(target <= 10%). Pool and Dask times include starting the workers and loading the model in
each (the pool's whole life; the cluster itself is started before the clock, as a cluster
already runs when a lab submits to it).

Usage: ``python benchmarks/bench_batch.py [--files 200] [--frames 10000] [--keep DIR]``
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

KEYPOINTS = 20


def make_archive(folder: Path, files: int, frames: int) -> None:
    """``files`` 2D SLEAP analysis files in 10 sub-folders (4 distinct walks, reused)."""
    from napari_liftpose.io import write_poses
    from napari_liftpose.synthetic import demo_camera, project_poses, walking_insect

    camera = demo_camera()
    walks = []
    for seed in range(min(4, files)):
        poses = walking_insect(frames, seed=seed)
        poses = poses.select_keypoints(poses.keypoints[:KEYPOINTS])
        walks.append(project_poses(poses, camera, noise_px=1.0, seed=seed))
    for i in range(files):
        path = folder / f"session{i % 10:02d}" / f"walk{i:04d}.analysis.h5"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_poses(walks[i % len(walks)], path, format="sleap_analysis")


def train_model(folder: Path, epochs: int) -> Path:
    """A random-camera MLP on 20 of the insect's keypoints (the CLI's default architecture)."""
    from napari_liftpose.cli import main
    from napari_liftpose.io import write_poses
    from napari_liftpose.synthetic import walking_insect

    library = walking_insect(3000, seed=99)
    library = library.select_keypoints(library.keypoints[:KEYPOINTS])
    write_poses(library, folder / "library.npz")
    model = folder / "insect20.safetensors"
    argv = ["train", str(folder / "library.npz"), "-o", str(model), "--random-camera"]
    argv += ["--root", "Thorax", "--epochs", str(epochs), "--threads", "1", "--device", "cpu"]
    if main([*argv, "-q"]) != 0:
        raise SystemExit("training the benchmark model failed")
    return model


def cpu_seconds() -> float:
    """CPU time of this process and of its ended (waited-for) child processes."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(name: str, run, out: Path) -> tuple[float, float, int]:
    """Run ``run()``; returns (wall s, CPU s, poses lifted); fails loudly on any failed file.

    The CPU time counts every process the run started (pool workers, Dask worker processes:
    ``run`` must have ended them) from their start-up, the model load and torch's import
    included. Unlike wall time, it does not depend on what else the machine runs.
    """
    cpu = cpu_seconds()
    start = time.perf_counter()
    results, seconds = run()
    seconds = seconds if seconds is not None else time.perf_counter() - start
    cpu = cpu_seconds() - cpu
    failed = [r.message for r in results if r.failed]
    if failed:
        raise SystemExit(f"{name}: {len(failed)} files failed, e.g. {failed[0]}")
    shutil.rmtree(out, ignore_errors=True)
    return seconds, cpu, sum(r.poses for r in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--frames", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=3, help="training epochs of the model")
    parser.add_argument("--skip-dask", action="store_true")
    parser.add_argument("--keep", type=Path, default=None, help="folder to keep the archive in")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    from napari_liftpose.batch import LiftOptions, plan_batch, run_in_pool, run_in_process

    work = args.keep or Path(tempfile.mkdtemp(prefix="bench_batch_"))
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    archive = work / "archive"
    if not archive.is_dir():
        make_archive(archive, args.files, args.frames)
    model = train_model(work, args.epochs)
    print(
        f"archive: {args.files} files x {args.frames} frames x {KEYPOINTS} keypoints "
        f"({args.files * args.frames:,} poses), model trained; setup {time.perf_counter() - t0:.0f} s"
    )
    options = LiftOptions(device="cpu", threads=1)
    rows = []

    out = work / "out_local"
    jobs = plan_batch([archive], out).todo
    seconds, cpu, poses = timed(
        "in-process", lambda: (run_in_process(model, jobs, options), None), out
    )
    rows.append(("in-process (1 core)", seconds, cpu, poses))

    out = work / "out_pool"
    jobs = plan_batch([archive], out).todo
    seconds, cpu, poses = timed(
        "pool", lambda: (run_in_pool(model, jobs, options, args.workers), None), out
    )
    rows.append((f"--workers {args.workers}", seconds, cpu, poses))

    if not args.skip_dask:
        from dask.distributed import Client, LocalCluster

        from napari_liftpose.batch import run_on_dask

        out = work / "out_dask"
        jobs = plan_batch([archive], out).todo

        def on_dask():
            with LocalCluster(
                n_workers=args.workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
            ) as cluster:
                start = time.perf_counter()  # wall: from a running cluster, as a lab has one
                with Client(cluster.scheduler_address) as client:
                    results = run_on_dask(model, jobs, options, client)
                return results, time.perf_counter() - start

        seconds, cpu, poses = timed("dask", on_dask, out)
        rows.append((f"Dask LocalCluster, {args.workers} workers", seconds, cpu, poses))

    base_rate = rows[0][3] / rows[0][1]
    base_cpu = rows[0][2]
    head = (
        f"{'run':34s} {'wall s':>7s} {'poses/s':>9s} {'vs ideal':>9s} {'CPU s':>7s} {'CPU +':>7s}"
    )
    print(f"\n{head}")
    for name, seconds, cpu, poses in rows:
        rate = poses / seconds
        workers = 1 if name.startswith("in-process") else args.workers
        overhead = 100 * (workers * base_rate / rate - 1)
        extra = 100 * (cpu / base_cpu - 1)
        print(f"{name:34s} {seconds:7.1f} {rate:9,.0f} {overhead:+8.1f}% {cpu:7.1f} {extra:+6.1f}%")
    print(
        "\n'vs ideal': wall time over that of N x the in-process rate (N workers); target <= +10% "
        "at 2 workers. 'CPU +': CPU seconds of all processes over the in-process run's (worker "
        f"start-up included). cores: {os.cpu_count()}, load average at the end: "
        f"{os.getloadavg()[0]:.1f} (other work on the machine slows wall times, not CPU time)"
    )
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
