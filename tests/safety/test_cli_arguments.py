"""Nonsense arguments are refused when parsed: one line naming the option, exit 2, no traceback.

Before, ``--width 0`` and ``--batch-size 0`` ended in tracebacks, ``--dropout 2`` trained
"successfully" and ``nan`` passed everywhere.
"""

from __future__ import annotations

import pytest

from napari_liftpose.cli import build_parser, main

from .conftest import assert_one_line_error, run_cli

TRAIN = ["train", "lib.npz", "-o", "m.safetensors", "--random-camera"]
LIFT = ["lift", "m.safetensors", "tracks.slp", "-o", "out.npz"]

BAD = [
    (TRAIN + ["--width", "0"], "--width"),
    (TRAIN + ["--width", "abc"], "--width"),
    (TRAIN + ["--blocks", "0"], "--blocks"),
    (TRAIN + ["--model", "temporal", "--channels", "0"], "--channels"),
    (TRAIN + ["--batch-size", "0"], "--batch-size"),
    (TRAIN + ["--epochs", "0"], "--epochs"),
    (TRAIN + ["--epochs", "-3"], "--epochs"),
    (TRAIN + ["--dropout", "2"], "--dropout"),
    (TRAIN + ["--dropout", "1"], "--dropout"),
    (TRAIN + ["--dropout", "-0.1"], "--dropout"),
    (TRAIN + ["--lr", "0"], "--lr"),
    (TRAIN + ["--lr", "-1e-3"], "--lr"),
    (TRAIN + ["--lr", "nan"], "--lr"),
    (TRAIN + ["--lr", "inf"], "--lr"),
    (TRAIN + ["--val-fraction", "0"], "--val-fraction"),
    (TRAIN + ["--val-fraction", "1"], "--val-fraction"),
    (TRAIN + ["--val-fraction", "1.5"], "--val-fraction"),
    (TRAIN + ["--noise-2d", "-0.1"], "--noise-2d"),
    (TRAIN + ["--noise-2d", "nan"], "--noise-2d"),
    (TRAIN + ["--bone-jitter", "-1"], "--bone-jitter"),
    (TRAIN + ["--keypoint-dropout", "1.5"], "--keypoint-dropout"),
    (TRAIN + ["--keypoint-dropout", "-0.1"], "--keypoint-dropout"),
    (TRAIN + ["--frame-dropout", "2"], "--frame-dropout"),
    (TRAIN + ["--frame-dropout", "1"], "--frame-dropout"),  # every frame dropped: nothing to learn
    (TRAIN + ["--patience", "-1"], "--patience"),
    (TRAIN + ["--seed", "-1"], "--seed"),
    (TRAIN + ["--distance", "10", "5"], "--distance"),
    (TRAIN + ["--distance", "0", "5"], "--distance"),
    (TRAIN + ["--distance", "nan", "5"], "--distance"),
    (TRAIN + ["--azimuth", "90", "-90"], "--azimuth"),
    (TRAIN + ["--elevation", "30", "-30"], "--elevation"),
    (TRAIN + ["--roll", "-inf", "0"], "--roll"),
    (TRAIN + ["--model", "temporal", "--filter-widths"], "--filter-widths"),
    (TRAIN + ["--model", "temporal", "--filter-widths", "3", "4"], "--filter-widths"),
    (TRAIN + ["--model", "temporal", "--filter-widths", "0"], "--filter-widths"),
    (TRAIN + ["--channels", "32"], "--channels"),  # a temporal option for the MLP
    (TRAIN + ["--model", "temporal", "--width", "64"], "--width"),
    (LIFT + ["--batch-size", "0"], "--batch-size"),
    (LIFT + ["--batch-size", "-5"], "--batch-size"),
    (["demo", "--headless", "--epochs", "0"], "--epochs"),
]


@pytest.mark.parametrize("argv, option", BAD, ids=[" ".join(a[4:] or a) for a, _ in BAD])
def test_bad_argument_is_one_line_naming_the_option(argv, option, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing may be written anywhere
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in err, err
    assert option in lines[0], lines[0]
    assert list(tmp_path.iterdir()) == []


def test_edge_values_that_make_sense_are_accepted():
    args = build_parser().parse_args(
        TRAIN
        + ["--dropout", "0", "--patience", "0", "--keypoint-dropout", "0.9", "--frame-dropout", "0"]
        + ["--val-fraction", "0.5", "--noise-2d", "0", "--batch-size", "1", "--epochs", "1"]
        + ["--azimuth", "-180", "180", "--roll", "0", "0", "--distance", "3", "3"]
        + ["--lr", "1e-9", "--seed", "0"]
    )
    assert (args.dropout, args.patience, args.keypoint_dropout, args.val_fraction) == (0, 0, 0.9, 0.5)
    assert args.azimuth == (-180.0, 180.0) and args.distance == (3.0, 3.0)
    temporal = build_parser().parse_args(TRAIN + ["--model", "temporal", "--filter-widths", "3", "1"])
    assert temporal.filter_widths == [3, 1]


@pytest.mark.parametrize(
    "argv, option",
    [
        (TRAIN + ["--width", "0"], "--width"),
        (LIFT + ["--batch-size", "0"], "--batch-size"),
        (TRAIN + ["--dropout", "2"], "--dropout"),
    ],
)
def test_bad_argument_through_the_installed_command(argv, option, tmp_path):
    result = run_cli(*argv, cwd=tmp_path)
    assert_one_line_error(result, option)
    assert list(tmp_path.iterdir()) == []
