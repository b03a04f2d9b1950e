"""The README's first command: the demo, headless (what CI and a machine without display run)."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from napari_liftpose.cli import main
from napari_liftpose.io import read_poses


@pytest.mark.slow
def test_headless_demo_writes_everything_and_lifts_well(tmp_path, capsys):
    assert main(["demo", "--headless", "-o", str(tmp_path / "demo"), "--epochs", "4"]) == 0
    out = capsys.readouterr().out
    metrics = json.loads((tmp_path / "demo" / "metrics.json").read_text())
    for path in metrics["files"].values():
        assert (tmp_path / "demo").joinpath(path).is_file()
    assert "MPJPE" in out
    lifted = read_poses(metrics["files"]["lifted"])
    truth = read_poses(metrics["files"]["truth"])
    assert lifted.coords.shape == truth.coords.shape
    # far better than knowing nothing: the spread of the truth around its root
    spread = np.nanmean(np.linalg.norm(truth.coords - truth.coords[:, :, 1:2], axis=-1))
    assert metrics["mpjpe"] < 0.3 * spread
    tracks = read_poses(metrics["files"]["tracks"])
    assert tracks.video is not None  # the .slp points at the rendered video


def test_demo_refuses_a_file_as_its_folder(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["demo", "--headless", "-o", str(blocker)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(blocker) in err


@pytest.mark.slow
def test_verbose_logs_every_epoch_and_quiet_logs_none(tmp_path, caplog):
    with caplog.at_level(logging.DEBUG):  # what reaches the handler: -v decides
        args = ["demo", "--headless", "--epochs", "2", "--threads", "1"]
        assert main([*args, "-o", str(tmp_path / "a"), "-v"]) == 0
        epochs = [r.getMessage() for r in caplog.records if r.getMessage().startswith("epoch ")]
        assert [e.split(":")[0] for e in epochs] == ["epoch 1/2", "epoch 2/2"]
        assert all("val MPJPE" in e and " mm " in e for e in epochs)
        caplog.clear()
        assert main([*args, "-o", str(tmp_path / "b")]) == 0
        ours = [r for r in caplog.records if r.name.startswith("napari_liftpose")]
        assert not [r for r in ours if r.levelno < logging.WARNING]
