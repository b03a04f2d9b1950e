"""Run a batch's per-file tasks in this process, in a local process pool, or on Dask.

All three call :func:`~napari_liftpose.batch.task.lift_file` with the same arguments and hand
each :class:`~napari_liftpose.batch.task.FileResult` to ``on_result`` (in this process, in
the order files finish), so the caller reports and counts the same way whatever ran them.

- :func:`run_in_process`: one file after the other, with progress inside each file.
- :func:`run_in_pool`: ``concurrent.futures.ProcessPoolExecutor`` with the ``spawn`` context;
  each worker loads the model once (its initializer), uses ``options.threads`` PyTorch
  threads, ignores SIGINT (the parent decides) and exits if the parent dies.
- :func:`run_on_dask`: the same tasks on a ``dask.distributed`` cluster. The model's bytes are
  sent to every worker once (``Client.scatter(..., broadcast=True)``), so the model file need
  not be on a shared file system; the input and output files must be, at the same absolute
  paths.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from napari_liftpose.batch.plan import Job
from napari_liftpose.batch.task import FileResult, LiftOptions, ModelBlob, lift_file, lifter_for

__all__ = [
    "SchedulerError",
    "run_in_pool",
    "run_in_process",
    "run_on_dask",
]

log = logging.getLogger(__name__)

OnResult = Callable[[FileResult], None]
OnProgress = Callable[[int, int], None]


class SchedulerError(RuntimeError):
    """The Dask scheduler could not be reached."""


def _ignore(result: FileResult) -> None:
    pass


def run_in_process(
    model: str | Path,
    jobs: Sequence[Job],
    options: LiftOptions,
    on_result: OnResult = _ignore,
    on_progress: OnProgress | None = None,
) -> list[FileResult]:
    """Lift ``jobs`` one after the other in this process.

    Parameters
    ----------
    model : str or Path
        The model file (loaded once).
    jobs : sequence of Job
        The files to lift.
    options : LiftOptions
        As for :func:`~napari_liftpose.batch.task.lift_file`.
    on_result : callable
        Called with each file's result as soon as it is done.
    on_progress : callable, optional
        ``on_progress(done, total)`` poses of the file being lifted.
    """
    results = []
    for job in jobs:
        result = lift_file(model, job.source, job.target, options, on_progress)
        results.append(result)
        on_result(result)
    return results


# -- local process pool ---------------------------------------------------------------------------
def _watch_parent(parent: int) -> None:
    """Exit this worker when its parent is gone (SIGKILLed: nobody would shut the pool down)."""
    import time

    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def _init_worker(model: str | Path, options: LiftOptions, parent: int) -> None:
    """Pool initializer: ignore Ctrl+C, follow the parent, set threads, load the model once."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    if options.threads is not None:
        import torch

        torch.set_num_threads(options.threads)
    try:
        lifter_for(model, options.device)
    except Exception:  # noqa: BLE001 - each task reports it for its file; the pool must live
        log.debug("worker %d could not load the model", os.getpid(), exc_info=True)


def _lost(job: Job, why: str) -> FileResult:
    return FileResult(str(job.source), str(job.target), "failed", f"{job.source}: {why}")


def run_in_pool(
    model: str | Path,
    jobs: Sequence[Job],
    options: LiftOptions,
    workers: int,
    on_result: OnResult = _ignore,
) -> list[FileResult]:
    """Lift ``jobs`` in ``workers`` local processes (``spawn``; one model load per worker).

    On ``KeyboardInterrupt`` the files not started are cancelled, the workers are ended (a
    file being written is never published half-done: writes are atomic) and the interrupt is
    raised again. A worker that dies (killed, out of memory) fails the files it had.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=context,
        initializer=_init_worker,
        initargs=(model, options, os.getpid()),
    )
    results = []
    try:
        futures = {pool.submit(lift_file, model, j.source, j.target, options): j for j in jobs}
        for future in as_completed(futures):
            try:
                result = future.result()
            except BrokenProcessPool:
                result = _lost(futures[future], "its worker process died (killed or out of memory)")
            results.append(result)
            on_result(result)
    except BaseException:
        _end_pool(pool)
        raise
    pool.shutdown(wait=True)
    return results


def _end_pool(pool) -> None:
    """Cancel what has not started and end the workers now (nothing half-written survives)."""
    processes = list(getattr(pool, "_processes", None) or {})  # pid -> Process (CPython)
    pool.shutdown(wait=False, cancel_futures=True)
    for pid in processes:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)


# -- Dask -----------------------------------------------------------------------------------------
def _client(scheduler):
    """A ``dask.distributed.Client`` for an address (or the client given)."""
    from dask.distributed import Client  # the optional extra napari-liftpose[dask]

    if isinstance(scheduler, Client):
        return scheduler, False
    try:
        return Client(scheduler, timeout="30s"), True
    except (OSError, TimeoutError, ValueError) as err:
        raise SchedulerError(f"cannot reach the Dask scheduler at {scheduler}: {err}") from None


def run_on_dask(
    model: str | Path,
    jobs: Sequence[Job],
    options: LiftOptions,
    scheduler,
    on_result: OnResult = _ignore,
) -> list[FileResult]:
    """Lift ``jobs`` as tasks on a Dask distributed cluster.

    Parameters
    ----------
    model : str or Path
        The model file; its bytes go to every worker once (no shared file system needed).
    jobs : sequence of Job
        Paths are made absolute here: workers must see them at the same place (a shared file
        system).
    options : LiftOptions
        As for :func:`~napari_liftpose.batch.task.lift_file` (``threads`` per worker process).
    scheduler : str or dask.distributed.Client
        The scheduler's address (``tcp://host:8786``) or a client.
    on_result : callable
        Called with each file's result as it finishes.

    Raises
    ------
    ModuleNotFoundError
        Without ``dask.distributed`` (``pip install 'napari-liftpose[dask]'``).
    SchedulerError
        If the scheduler cannot be reached.
    """
    client, own = _client(scheduler)
    from dask.distributed import as_completed

    results = []
    futures = {}
    try:
        blob = client.scatter(ModelBlob.from_file(model), broadcast=True)
        for job in jobs:
            source, target = os.path.abspath(job.source), os.path.abspath(job.target)
            future = client.submit(lift_file, blob, source, target, options, pure=False)
            futures[future] = job
        for future in as_completed(list(futures)):
            try:
                result = future.result()
            except Exception as err:  # noqa: BLE001 - a lost worker (KilledWorker) fails a file
                result = _lost(
                    futures[future], f"its Dask task failed: {type(err).__name__}: {err}"
                )
            results.append(result)
            on_result(result)
    except BaseException:
        with contextlib.suppress(Exception):
            client.cancel(list(futures))
        raise
    finally:
        if own:
            with contextlib.suppress(Exception):
                client.close()
    return results
