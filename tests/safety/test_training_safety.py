"""Training never destroys a model, never ends in a traceback for bad data, validates its config.

The rule: ``train`` writes its output only when training ends (finished, stopped early,
cancelled, interrupted or failed), and only if some epoch improved; a run killed outright leaves
an existing model file byte for byte as it was, and ``resume=True`` continues it.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from napari_liftpose.lifting import (
    KnownCamera,
    ModelFileError,
    TrainConfig,
    camera_from_angles,
    load_lifter,
    train,
)
from napari_liftpose.lifting.training import resume_path

from .conftest import cli_env, leftover_temp_files

pytestmark = pytest.mark.slow  # every test here trains a network (or uses one trained here)

TINY = dict(device="cpu", architecture={"width": 8}, patience=0)


@pytest.fixture(scope="module")
def camera():
    return camera_from_angles(azimuth=90, elevation=20, distance=20, focal=1000, name="side")


@pytest.fixture(scope="module")
def old_model(fly_small, camera, tmp_path_factory):
    """Bytes of a finished model (the "old" file each test trains onto)."""
    path = tmp_path_factory.mktemp("old") / "old.safetensors"
    result = train(fly_small, camera, path, TrainConfig(epochs=1, seed=5, **TINY))
    assert result.written and result.path == path
    return path.read_bytes()


def test_the_model_is_written_only_when_training_ends(fly_small, camera, old_model, tmp_path):
    out = tmp_path / "model.safetensors"
    out.write_bytes(old_model)
    during = []

    def progress(p):
        during.append(out.read_bytes() == old_model)

    result = train(fly_small, camera, out, TrainConfig(epochs=3, **TINY), progress=progress)
    assert during == [True, True, True]  # improving epochs did not touch the old file
    assert result.written and result.status == "finished" and out.read_bytes() != old_model
    assert load_lifter(out).meta["metrics"]["best_epoch"] == result.best_epoch
    assert not resume_path(out).exists() and leftover_temp_files(tmp_path) == []


SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    from napari_liftpose import Poses
    from napari_liftpose.lifting import TrainConfig, camera_from_angles, train

    with np.load(sys.argv[1]) as z:
        fly = Poses(z["points3d"][:200, None], [str(k) for k in z["keypoints"]], units="mm")
    camera = camera_from_angles(azimuth=90, elevation=20, distance=20, focal=1000, name="side")

    def progress(p):
        print("EPOCH", p.epoch, flush=True)

    config = TrainConfig(epochs=10000, device="cpu", architecture={"width": 8}, patience=0)
    train(fly, camera, sys.argv[2], config, progress=progress)
    """
)


@pytest.mark.parametrize("epochs_before_kill", [2])
def test_kill_9_leaves_the_old_model_and_resume_works(
    fly_small, camera, old_model, tmp_path, data_dir, epochs_before_kill
):
    out = tmp_path / "model.safetensors"
    out.write_bytes(old_model)
    library = data_dir / "fly_df3d_210902" / "points3d.npz"
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(library), str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
    )
    try:
        deadline = time.monotonic() + 120
        seen = 0
        while seen < epochs_before_kill and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            if line.startswith("EPOCH"):
                seen = int(line.split()[1])
        assert seen >= epochs_before_kill, proc.stderr.read()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert out.read_bytes() == old_model  # the killed run never touched the old model
    assert resume_path(out).is_file()  # written after the first epoch
    config = TrainConfig(epochs=seen + 1, **TINY)
    resumed = train(fly_small, camera, out, config, resume=True)
    assert resumed.written and resumed.epochs_run == seen + 1 and resumed.best_epoch is not None
    assert load_lifter(out).meta["metrics"]["best_epoch"] == resumed.best_epoch
    assert not resume_path(out).exists()


def test_cancel_and_interrupt_write_the_best_so_far(fly_small, camera, old_model, tmp_path):
    out = tmp_path / "model.safetensors"
    out.write_bytes(old_model)

    def interrupt(p):
        if p.epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt) as info:
        train(fly_small, camera, out, TrainConfig(epochs=5, **TINY), progress=interrupt)
    result = info.value.train_result
    assert result.status == "interrupted" and result.written and result.path == out
    assert "wrote the best model" in result.summary()
    assert out.read_bytes() != old_model and load_lifter(out).meta["status"] == "interrupted"
    assert resume_path(out).is_file()
    resumed = train(fly_small, camera, out, TrainConfig(epochs=3, **TINY), resume=True)
    assert resumed.status == "finished" and [h["epoch"] for h in resumed.history] == [1, 2, 3]


def test_interrupt_before_any_epoch_writes_nothing(fly_small, camera, old_model, tmp_path):
    out = tmp_path / "model.safetensors"
    out.write_bytes(old_model)

    def cancel():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt) as info:
        train(fly_small, camera, out, TrainConfig(epochs=3, **TINY), cancel=cancel)
    result = info.value.train_result
    assert result.status == "interrupted" and not result.written and result.path is None
    assert "no model written" in result.summary() and "unchanged" in result.summary()
    assert out.read_bytes() == old_model
    cancelled = train(fly_small, camera, out, TrainConfig(epochs=3, **TINY), cancel=lambda: True)
    assert cancelled.status == "cancelled" and cancelled.path is None
    assert out.read_bytes() == old_model


def test_no_improving_epoch_returns_no_model(fly_small, camera, old_model, tmp_path):
    out = tmp_path / "model.safetensors"
    out.write_bytes(old_model)
    huge = fly_small.copy(coords=fly_small.coords * 1e200)  # finite, but overflows float32
    with np.errstate(all="ignore"):
        result = train(huge, KnownCamera(camera), out, TrainConfig(epochs=2, **TINY))
    assert result.status == "no_improvement" and not result.written and result.path is None
    assert result.epochs_run == 2 and result.val_mpjpe is None
    assert "no model written" in result.summary()
    assert out.read_bytes() == old_model and not resume_path(out).exists()


def test_infinite_library_points_are_missing_and_said(fly_small, camera, tmp_path, caplog):
    coords = fly_small.coords.copy()
    coords[5, 0, 3, 1] = np.inf
    coords[7, 0, 4] = -np.inf
    library = fly_small.copy(coords=coords, source="lib.npz")
    with caplog.at_level(logging.WARNING, logger="napari_liftpose"):
        result = train(library, camera, tmp_path / "m.safetensors", TrainConfig(epochs=1, **TINY))
    assert result.written and np.isfinite(result.val_mpjpe)
    assert "lib.npz: 2 point(s) of the library have an infinite coordinate" in caplog.text


def test_a_camera_behind_the_animal_is_refused(fly_small, camera, tmp_path):
    behind = camera_from_angles(azimuth=90, elevation=20, distance=-20, focal=1000, name="back")
    out = tmp_path / "m.safetensors"
    with pytest.raises(ValueError, match=r"camera 'back': 100% of the points .* are behind it"):
        train(fly_small, behind, out, TrainConfig(epochs=1, **TINY))
    assert not out.exists()


def test_output_may_not_be_an_input_or_a_folder(fly_small, camera, tmp_path):
    library = tmp_path / "lib.npz"
    library.write_bytes(b"library bytes")
    with pytest.raises(ValueError, match="is an input file"):
        train(
            fly_small.copy(source=str(library)),
            camera,
            tmp_path / "." / "lib.npz",
            TrainConfig(epochs=1, **TINY),
        )
    assert library.read_bytes() == b"library bytes"
    with pytest.raises(ModelFileError, match="is a folder"):
        train(fly_small, camera, tmp_path, TrainConfig(epochs=1, **TINY))
    with pytest.raises(ModelFileError, match="does not exist"):
        train(fly_small, camera, tmp_path / "no" / "m.safetensors", TrainConfig(epochs=1, **TINY))


def test_a_foreign_resume_file_is_named(fly_small, camera, tmp_path):
    out = tmp_path / "m.safetensors"
    train(fly_small, camera, out, TrainConfig(epochs=2, **TINY), cancel=lambda: False)
    resume_path(out).write_bytes(out.read_bytes())  # a model, not this run's resume state
    other = TrainConfig(epochs=2, device="cpu", architecture={"width": 16}, patience=0)
    with pytest.raises(ModelFileError, match=r"resume\.safetensors: cannot resume: architecture"):
        train(fly_small, camera, out, other, resume=True)
    with pytest.raises(ModelFileError, match=r"resume\.safetensors: cannot resume"):
        train(fly_small, camera, out, TrainConfig(epochs=2, **TINY), resume=True)


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"epochs": 0}, "epochs: expected an integer >= 1, got 0"),
        ({"epochs": 2.5}, "epochs"),
        ({"batch_size": 0}, "batch_size: expected an integer >= 1, got 0"),
        ({"lr": 0}, "lr: expected a finite number > 0, got 0"),
        ({"lr": float("nan")}, "lr"),
        ({"val_fraction": 1.0}, "val_fraction: expected a finite number in (0, 1), got 1.0"),
        ({"val_fraction": 0}, "val_fraction"),
        ({"patience": -1}, "patience"),
        ({"seed": -3}, "seed"),
        ({"keypoint_dropout": 1.5}, "keypoint_dropout"),
        ({"dropout_samples": 2}, "dropout_samples"),
        ({"noise_2d": float("inf")}, "noise_2d"),
        ({"model": "transformer"}, "model"),
        ({"architecture": {"width": 0}}, "width: expected an integer 1..16384, got 0"),
        ({"architecture": {"blocks": 0}}, "blocks"),
        ({"architecture": {"dropout": 2}}, "dropout: expected a finite number in [0, 1), got 2"),
        ({"architecture": {"widht": 3}}, "widht"),
        ({"architecture": "big"}, "architecture"),
        ({"model": "temporal", "architecture": {"filter_widths": [3, 4]}}, "filter_widths"),
        ({"model": "temporal", "architecture": {"filter_widths": []}}, "filter_widths"),
        ({"model": "temporal", "architecture": {"channels": -1}}, "channels"),
    ],
)
def test_config_is_validated(changes, needle):
    with pytest.raises(ValueError) as info:
        TrainConfig(**changes)
    assert needle in str(info.value)


def test_config_changed_after_creation_is_checked_by_train(fly_small, camera, tmp_path):
    config = TrainConfig(epochs=1, **TINY)
    config.batch_size = 0
    with pytest.raises(ValueError, match="batch_size"):
        train(fly_small, camera, tmp_path / "m.safetensors", config)


def test_a_network_too_big_to_load_is_not_trained(fly_small, camera, tmp_path):
    config = TrainConfig(epochs=1, device="cpu", architecture={"width": 16000, "blocks": 1})
    with pytest.raises(ValueError, match="parameters"):
        train(fly_small, camera, tmp_path / "m.safetensors", config)


def test_sigint_under_the_cli_guard_still_writes_the_best(fly_small, camera, old_model, tmp_path):
    from napari_liftpose.io import interrupts

    out = tmp_path / "model.safetensors"
    out.write_bytes(old_model)

    def progress(p):
        if p.epoch == 2:
            os.kill(os.getpid(), signal.SIGINT)

    with interrupts.interrupt_guard(), pytest.raises(KeyboardInterrupt) as info:
        train(fly_small, camera, out, TrainConfig(epochs=5, **TINY), progress=progress)
    assert interrupts.pending() == signal.SIGINT  # still reported to the CLI
    interrupts.clear()
    assert info.value.train_result.written and out.read_bytes() != old_model
    assert load_lifter(out).meta["status"] == "interrupted"
    assert leftover_temp_files(tmp_path) == []
