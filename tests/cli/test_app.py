"""cli/app.py: the one place where errors, bugs and signals become one line and an exit code."""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path

import pytest

from napari_liftpose.cli import SUBCOMMANDS, main
from napari_liftpose.cli.train import state_file


def register(monkeypatch, name, run):
    def add(subparsers):
        subparsers.add_parser(name).set_defaults(run=run)

    monkeypatch.setitem(SUBCOMMANDS, name, add)


def error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in err, err
    return lines[0]


def test_a_bug_is_one_line_naming_the_command_and_type(monkeypatch, capsys):
    def boom(args):
        raise RuntimeError("the bug's message")

    register(monkeypatch, "boom", boom)
    assert main(["boom"]) == 2
    assert error_line(capsys) == (
        "error: napari-liftpose boom: unexpected RuntimeError: the bug's message "
        "(run with -v for the traceback)"
    )


def test_verbose_logs_the_bugs_traceback(monkeypatch, capsys, caplog):
    def boom(args):
        raise TypeError("unsupported format string passed to NoneType.__format__")

    register(monkeypatch, "boom", boom)
    with caplog.at_level(logging.ERROR):
        assert main(["boom", "-v"]) == 2
    assert any(r.exc_info and r.exc_info[0] is TypeError for r in caplog.records)
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith("error: napari-liftpose boom: unexpected TypeError") and "-v" not in line


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupt_a_library_swallowed_still_ends_the_run(monkeypatch, capsys, signum, code):
    """h5py/PyTables can swallow the KeyboardInterrupt; the recorded signal still decides."""

    def swallow(args):
        try:
            os.kill(os.getpid(), signum)
            for _ in range(1000):  # the handler runs at the next bytecode
                pass
        except KeyboardInterrupt:
            pass  # what "Exception ignored in ..." amounts to
        return 0

    register(monkeypatch, "swallow", swallow)
    assert main(["swallow"]) == code
    line = error_line(capsys)
    assert "interrupted" in line and signal.Signals(signum).name in line


def test_an_os_error_names_its_file(monkeypatch, capsys, tmp_path):
    def full(args):
        raise OSError(28, "No space left on device", str(tmp_path / "out.h5"))

    register(monkeypatch, "full", full)
    assert main(["full"]) == 2
    assert error_line(capsys) == f"error: {tmp_path / 'out.h5'}: No space left on device"


def test_the_cli_names_the_resume_file_as_training_does(tmp_path):
    from napari_liftpose.lifting.training import resume_path

    out = tmp_path / "model.safetensors"
    assert state_file(out) == resume_path(out)
    assert state_file(Path("m")) == resume_path(Path("m"))


def test_warnings_are_one_line_and_numpy_noise_is_quiet(monkeypatch, capsys):
    import warnings

    import numpy as np

    def noisy(args):
        np.nanmean(np.full(3, np.nan))  # RuntimeWarning: Mean of empty slice
        warnings.warn("the file kept as it is\nwriting beside it", UserWarning, stacklevel=1)
        return 0

    register(monkeypatch, "noisy", noisy)
    assert main(["noisy"]) == 0
    assert capsys.readouterr().err == "warning: the file kept as it is writing beside it\n"
    assert main(["-v", "noisy"]) == 0
    assert "Mean of empty slice" in capsys.readouterr().err
