"""Lift an archive of 2D track files: plan the outputs, run one task per file, report each.

- :mod:`~napari_liftpose.batch.task`: :func:`lift_file`, the one per-file function that the CLI,
  a local process pool and Dask all call, and its :class:`FileResult`.
- :mod:`~napari_liftpose.batch.plan`: inputs (files, folders, glob patterns) to output paths
  mirroring the input tree; complete outputs are skipped, so a run resumes.
- :mod:`~napari_liftpose.batch.run`: in-process, process-pool and Dask runners.

Engine code: never imports napari or Qt, never prints (callbacks and :mod:`logging`).
"""

from napari_liftpose.batch.plan import (
    BatchPlanError,
    Job,
    Plan,
    find_inputs,
    lifted_suffixes,
    plan_batch,
)
from napari_liftpose.batch.run import (
    SchedulerError,
    run_in_pool,
    run_in_process,
    run_on_dask,
)
from napari_liftpose.batch.task import (
    FileResult,
    LiftOptions,
    ModelBlob,
    lift_file,
    lifter_for,
    require_a_tracked_root,
)

__all__ = [
    "BatchPlanError",
    "FileResult",
    "Job",
    "LiftOptions",
    "ModelBlob",
    "Plan",
    "SchedulerError",
    "find_inputs",
    "lift_file",
    "lifted_suffixes",
    "lifter_for",
    "plan_batch",
    "require_a_tracked_root",
    "run_in_pool",
    "run_in_process",
    "run_on_dask",
]
