"""Strict DeepLabCut tables: duplicates, ragged or truncated rows and bad configs are errors,
and CSV values are read bit-exactly (Python's own ``float`` of every cell)."""

from __future__ import annotations

import csv
import math
import pickle
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from napari_liftpose.io import PoseFileError, read_poses
from tests.safety.conftest import assert_one_line_error, run_cli

OPENFIELD = Path("dlc_openfield_csv") / "openfield_dlc_inference_example.csv"
REACHING = Path("dlc_reaching_2d") / "reachingDEMO_2D.h5"


@pytest.fixture(scope="module")
def openfield_lines(data_dir) -> list[str]:
    """The real DLC CSV's lines, without their newlines."""
    return (data_dir / OPENFIELD).read_text().splitlines()


def _write(path: Path, lines: list[str], newline_at_end: bool = True) -> Path:
    path.write_text("\n".join(lines) + ("\n" if newline_at_end else ""))
    return path


def _raises(path: Path, *needles: str, named: Path | None = None) -> str:
    """read_poses(path) raises one line naming ``named`` (default: ``path``) and the needles."""
    with pytest.raises(PoseFileError) as err:
        read_poses(path)
    message = str(err.value)
    assert message.startswith(f"{named or path}: ") and "\n" not in message, message
    for needle in needles:
        assert needle in message, (needle, message)
    return message


# -- values: bit-exact ----------------------------------------------------------------------
def test_csv_values_are_bit_exact(data_dir):
    """Every cell equals Python's ``float`` of its text, to the last bit (empty cells: NaN)."""
    path = data_dir / OPENFIELD
    poses = read_poses(path)
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    bodyparts, coords = rows[1], rows[2]
    expected, got = [], []
    for row in rows[3:]:
        for column in range(1, len(row)):
            kp = poses.keypoints.index(bodyparts[column])
            frame = int(row[0])
            if coords[column] == "likelihood":
                got.append(poses.confidence[frame, 0, kp])
            else:
                got.append(poses.coords[frame, 0, kp, "xy".index(coords[column])])
            expected.append(float(row[column]) if row[column] else math.nan)
    expected, got = np.array(expected), np.array(got)
    assert len(got) == 2330 * 12
    differ = ~((expected == got) | (np.isnan(expected) & np.isnan(got)))
    assert not differ.any(), f"{differ.sum()} of {differ.size} cells differ from the file"


# -- duplicate columns ----------------------------------------------------------------------
def test_duplicate_bodypart_in_csv(openfield_lines, tmp_path):
    lines = list(openfield_lines)
    lines[1] = lines[1].replace("leftear", "snout")  # snout's x, y, likelihood twice
    path = _write(tmp_path / "dup.csv", lines)
    _raises(path, "duplicate columns", "snout/x", "snout/likelihood")


def test_duplicate_columns_in_h5(data_dir, tmp_path):
    """Two scorers for one bodypart (pandas writes it), and one column twice (pandas refuses to
    write that, so the stored column codes are edited)."""
    frame = pd.read_hdf(data_dir / REACHING).iloc[:50]
    first = frame.columns[0][1]
    other = frame.iloc[:, :3].copy()
    other.columns = pd.MultiIndex.from_tuples(
        [("another_scorer", *key[1:]) for key in other.columns], names=frame.columns.names
    )
    scorers = tmp_path / "scorers.h5"
    pd.concat([frame, other], axis=1).to_hdf(scorers, key="df_with_missing", format="fixed")
    _raises(scorers, "duplicate columns", f"{first}/x", f"{first}/likelihood")

    twice = tmp_path / "twice.h5"
    frame.to_hdf(twice, key="df_with_missing", format="table")
    columns = list(frame.columns)
    columns[3:6] = columns[0:3]
    with h5py.File(twice, "a") as f:  # pandas' column list, a protocol-0 pickle as pandas writes
        group = f["df_with_missing"]
        group.attrs["non_index_axes"] = np.bytes_(pickle.dumps([(1, columns)], 0))
        group["table"].attrs["values_block_0_kind"] = np.bytes_(pickle.dumps(columns, 0))
    assert pd.read_hdf(twice).columns.duplicated().sum() == 3  # pandas reads it as it is
    _raises(twice, "duplicate columns", f"{first}/x")


def test_duplicate_bodypart_of_one_individual(tmp_path):
    columns = pd.MultiIndex.from_tuples(
        [("s", ind, bp, c) for ind in ("a", "b") for bp in ("nose", "tail") for c in "xy"]
        + [("s", "b", "nose", "x")],
        names=["scorer", "individuals", "bodyparts", "coords"],
    )
    path = tmp_path / "ma.csv"
    pd.DataFrame(np.arange(27.0).reshape(3, 9), columns=columns).to_csv(path)
    _raises(path, "duplicate columns", "b/nose/x")


# -- ragged and truncated CSVs ------------------------------------------------------------------
@pytest.mark.parametrize("change", ["fewer", "more"])
def test_ragged_row_names_its_line(change, openfield_lines, tmp_path):
    lines = list(openfield_lines)
    cells = lines[99].split(",")
    lines[99] = ",".join(cells[:-1] if change == "fewer" else [*cells, "1.0"])
    path = _write(tmp_path / "ragged.csv", lines)
    _raises(path, "line 100 has", "ragged")


def test_truncated_last_line(openfield_lines, tmp_path):
    """The file cut inside its last number: same cell count, no newline at the end."""
    lines = list(openfield_lines)
    lines[-1] = lines[-1][: lines[-1].rindex(".") + 7]  # e.g. 429.1181945800781 -> 429.118194
    path = _write(tmp_path / "cut.csv", lines, newline_at_end=False)
    _raises(path, f"last line ({len(lines)})", "truncated")
    # cut inside an earlier cell: the row is short
    lines[-1] = lines[-1][: lines[-1].index(",", 40)]
    path = _write(tmp_path / "cut2.csv", lines, newline_at_end=False)
    _raises(path, f"line {len(lines)} has", "ragged")


def test_blank_line_inside_the_table(openfield_lines, tmp_path):
    lines = list(openfield_lines)
    lines.insert(50, "")
    _raises(_write(tmp_path / "gap.csv", lines), "line 51 is empty")
    # blank lines after the last row are fine (editors add them)
    poses = read_poses(_write(tmp_path / "tail.csv", [*openfield_lines, "", ""]))
    assert poses.n_frames == 2330


def test_cell_that_is_not_a_number(openfield_lines, tmp_path):
    lines = list(openfield_lines)
    cells = lines[10].split(",")
    cells[5] = "12.5abc"
    lines[10] = ",".join(cells)
    _raises(_write(tmp_path / "text.csv", lines), "'12.5abc'", "line 11", "expected numbers")


def test_cli_ragged_csv_is_one_line(openfield_lines, tmp_path):
    lines = list(openfield_lines)
    lines[7] = lines[7] + ",3.0"
    path = _write(tmp_path / "ragged.csv", lines)
    result = run_cli("train", path, "-o", tmp_path / "m.safetensors", "--random-camera")
    assert_one_line_error(result, str(path), "line 8 has 14 cells")


# -- config.yaml skeleton -------------------------------------------------------------------
@pytest.mark.parametrize(
    "skeleton",
    [
        "[[snout, [leftear, rightear]]]",
        "[[snout, {a: b}]]",
        "{snout: leftear}",
        "snout",
        "[[snout]]",
        "[[snout, leftear, rightear]]",
        "[[snout, null]]",
    ],
)
def test_bad_config_skeleton_is_one_error(skeleton, data_dir, tmp_path):
    (tmp_path / "config.yaml").write_text(f"bodyparts: [snout]\nskeleton: {skeleton}\n")
    table = tmp_path / "tracks.csv"
    table.write_bytes((data_dir / OPENFIELD).read_bytes())
    config = tmp_path / "config.yaml"
    _raises(table, "skeleton:", "expected a list of [bodypart, bodypart] pairs", named=config)


def test_good_config_skeleton(data_dir, tmp_path):
    (tmp_path / "config.yaml").write_text("skeleton:\n- [snout, leftear]\n- [snout, rightear]\n")
    table = tmp_path / "tracks.csv"
    table.write_bytes((data_dir / OPENFIELD).read_bytes())
    poses = read_poses(table)
    names = [(poses.keypoints[a], poses.keypoints[b]) for a, b in poses.edges]
    assert names == [("snout", "leftear"), ("snout", "rightear")]
