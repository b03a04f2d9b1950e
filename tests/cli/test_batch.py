"""Archive lifting (``lift MODEL INPUT... --out-dir DIR``): in-process, process pool and Dask.

The archive is 30 files cut from the real sleap-anipose session's four camera tracks, written
by the package's own writers in three formats and nested folders, plus one truncated HDF5 file.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from napari_liftpose.batch import lift_file, plan_batch
from napari_liftpose.cli import main
from napari_liftpose.io import read_poses, write_poses

CAMERAS = ("top", "back", "mid", "side")
CORRUPT = "s3/side_broken.analysis.h5"


@pytest.fixture(scope="module")
def session(data_dir):
    return data_dir / "sleap_anipose_minimal_session"


@pytest.fixture(scope="module")
def model(session, tmp_path_factory):
    out = tmp_path_factory.mktemp("batch_model") / "mouse.safetensors"
    argv = ["train", str(session / "points3d.h5"), "-o", str(out), "--root", "Trunk"]
    argv += ["--tracks-2d", str(session / "top" / "minimal_top_proofread.slp")]
    argv += ["--epochs", "3", "--batch-size", "16", "--width", "64", "--blocks", "1"]
    assert main([*argv, "--device", "cpu", "--threads", "1", "-q"]) == 0
    return out


@pytest.fixture(scope="module")
def archive(session, tmp_path_factory) -> Path:
    """30 files (29 good in .npz, SLEAP analysis .h5 and DeepLabCut .csv; 1 truncated)."""
    root = tmp_path_factory.mktemp("archive")
    tracks = [read_poses(session / cam / f"minimal_{cam}_proofread.analysis.h5") for cam in CAMERAS]
    suffixes = (".npz", ".analysis.h5", ".csv")
    for i in range(29):
        cam = i % 4
        start = (7 * i) % 60
        part = tracks[cam].select_frames(slice(start, start + 40 + i))
        path = root / f"s{i // 8}" / f"{CAMERAS[cam]}_{i:02d}{suffixes[i % 3]}"
        path.parent.mkdir(exist_ok=True)
        fmt = {".npz": "npz", ".analysis.h5": "sleap_analysis", ".csv": "dlc"}[suffixes[i % 3]]
        write_poses(part, path, format=fmt)
    good = (session / "side" / "minimal_side_proofread.analysis.h5").read_bytes()
    (root / CORRUPT).write_bytes(good[: len(good) // 3])
    (root / "s0" / "notes.txt").write_text("not a pose file: never an input\n")
    return root


def outputs(folder: Path) -> dict[str, Path]:
    return {str(p.relative_to(folder)): p for p in sorted(folder.rglob("*.lifted.npz"))}


def same_arrays(a: Path, b: Path) -> bool:
    with np.load(a, allow_pickle=False) as x, np.load(b, allow_pickle=False) as y:
        if sorted(x.files) != sorted(y.files):
            return False
        return all(np.array_equal(x[k], y[k], equal_nan=x[k].dtype.kind == "f") for k in x.files)


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("error:")]


def run_cli(*args, **kwargs):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "napari_liftpose", *map(str, args)]
    return subprocess.Popen(cmd, env=env, text=True, **kwargs)


@pytest.fixture(scope="module")
def in_process(model, archive, tmp_path_factory):
    """The reference: the archive lifted in this process; (exit code, stderr, outputs)."""
    out = tmp_path_factory.mktemp("in_process")
    argv = ["lift", str(model), str(archive), "--out-dir", str(out), "-q", "--threads", "1"]
    proc = run_cli(*argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    stdout, stderr = proc.communicate(timeout=600)
    return proc.returncode, stdout, stderr, out


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("dask.distributed")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        yield cluster


@pytest.mark.slow
def test_in_process_lifts_29_reports_the_corrupt_file_and_exits_2(in_process, archive):
    code, stdout, stderr, out = in_process
    assert code == 2, stderr
    assert "Traceback" not in stderr
    lines = error_lines(stderr)
    assert len(lines) == 1 and str(archive / CORRUPT) in lines[0], stderr
    assert "truncated or corrupt" in lines[0]
    got = outputs(out)
    assert len(got) == 29
    assert "s0/top_00.lifted.npz" in got and "s3/back_25.analysis.lifted.npz" in got
    assert "lifted 29, skipped 0 (complete outputs exist), failed 1 of 30 files" in stdout
    lifted = read_poses(got["s1/back_09.lifted.npz"])  # frames 3 to 52 of the back camera
    assert lifted.coords.shape == (49, 1, 15, 3) and np.isfinite(lifted.coords).any()


@pytest.mark.slow
def test_dask_local_cluster_gives_the_in_process_outputs(
    cluster, in_process, model, archive, tmp_path, capsys
):
    out = tmp_path / "dask"
    argv = ["lift", str(model), str(archive), "--out-dir", str(out), "-q"]
    assert main([*argv, "--scheduler", cluster.scheduler_address]) == 2
    captured = capsys.readouterr()
    lines = error_lines(captured.err)
    assert len(lines) == 1 and str(archive / CORRUPT) in lines[0], captured.err
    assert "failed 1 of 30 files" in captured.out
    reference = outputs(in_process[3])
    got = outputs(out)
    assert sorted(got) == sorted(reference) and len(got) == 29
    differ = [name for name in got if not same_arrays(got[name], reference[name])]
    assert differ == []


@pytest.mark.slow
def test_process_pool_gives_the_in_process_outputs(in_process, model, archive, tmp_path, capsys):
    out = tmp_path / "pool"
    argv = ["lift", str(model), str(archive), "--out-dir", str(out), "-q", "--workers", "2"]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert len(error_lines(captured.err)) == 1
    reference = outputs(in_process[3])
    got = outputs(out)
    assert sorted(got) == sorted(reference)
    assert all(same_arrays(got[name], reference[name]) for name in got)


@pytest.mark.slow
def test_killed_midway_the_rerun_redoes_no_finished_file(cluster, model, archive, tmp_path):
    out = tmp_path / "killed"
    args = ["lift", model, archive, "--out-dir", out, "--scheduler", cluster.scheduler_address]
    proc = run_cli(*args, "--batch-size", "4", stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while len(outputs(out)) < 3 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    time.sleep(2)  # tasks the scheduler had already started may still land: they are complete too
    before = {name: p.stat().st_mtime_ns for name, p in outputs(out).items()}
    assert 3 <= len(before) < 29, len(before)

    rerun = run_cli(*args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    stdout, stderr = rerun.communicate(timeout=600)
    assert rerun.returncode == 2, stderr
    after = outputs(out)
    assert len(after) == 29
    assert {name: after[name].stat().st_mtime_ns for name in before} == before
    assert f"skipped {len(before)} (complete outputs exist)" in stdout, stdout
    assert f"lifted {29 - len(before)}," in stdout, stdout
    assert not [p for p in out.rglob(".*") if p.is_file()], "temporary files left behind"


@pytest.mark.slow
def test_a_rerun_skips_complete_outputs_and_redoes_a_broken_one(model, archive, tmp_path, capsys):
    out = tmp_path / "again"
    source = archive / "s0"
    assert main(["lift", str(model), str(source), "--out-dir", str(out), "-q"]) == 0
    capsys.readouterr()
    first = outputs(out)
    stamps = {name: p.stat().st_mtime_ns for name, p in first.items()}
    broken = first["top_00.lifted.npz"]
    broken.write_bytes(b"not a zip")  # not ours: no writer of this package leaves this
    assert main(["lift", str(model), str(source), "--out-dir", str(out), "-q"]) == 0
    captured = capsys.readouterr()
    assert f"{broken}: not a complete lifted file; lifting again" in captured.err
    assert f"lifted 1, skipped {len(first) - 1}" in captured.out
    stamps.pop("top_00.lifted.npz")
    assert {name: first[name].stat().st_mtime_ns for name in stamps} == stamps
    assert read_poses(broken).n_space == 3

    assert main(["lift", str(model), str(source), "--out-dir", str(out), "--overwrite"]) == 0
    assert f"lifted {len(first)}, skipped 0" in capsys.readouterr().out


@pytest.mark.slow
def test_glob_and_files_mirror_the_tree_and_lift_file_reports_not_raises(
    model, archive, tmp_path, capsys
):
    out = tmp_path / "glob"
    pattern = str(archive / "**" / "*.csv")
    assert main(["lift", str(model), pattern, "--out-dir", str(out), "-q", "--ext", ".h5"]) == 0
    names = sorted(str(p.relative_to(out)) for p in out.rglob("*.lifted.h5"))
    expected = sorted(
        str(p.relative_to(archive).with_name(p.stem + ".lifted.h5")) for p in archive.rglob("*.csv")
    )
    assert names == expected and len(names) == 9
    assert read_poses(out / names[0]).n_space == 3

    missing = lift_file(model, archive / "nope.npz", tmp_path / "x.lifted.npz")
    assert missing.failed and missing.message == f"{archive / 'nope.npz'}: file not found"
    three_d = lift_file(model, out / names[0], tmp_path / "y.lifted.npz")
    assert three_d.failed and "expected 2D tracks to lift, got 3D poses" in three_d.message
    assert not (tmp_path / "x.lifted.npz").exists() and not (tmp_path / "y.lifted.npz").exists()


# -- planning: no model, no training --------------------------------------------------------------
def test_plan_mirrors_folders_and_leaves_out_hidden_files_and_outputs(archive, tmp_path):
    out = tmp_path / "out"
    plan = plan_batch([archive], out)
    assert plan.total == 30 and not plan.skipped
    targets = {str(j.target.relative_to(out)) for j in plan.todo}
    assert "s0/top_00.lifted.npz" in targets and "s3/side_broken.analysis.lifted.npz" in targets
    assert not any("notes" in t for t in targets)

    inside = archive / "s0" / "lifted"  # an output folder inside the input tree
    inside.mkdir()
    (inside / "top_00.lifted.npz").write_bytes(b"")
    (archive / "s0" / ".hidden.npz").write_bytes(b"")
    try:
        again = plan_batch([archive], inside)
        assert again.total == 30
        assert not any(".hidden" in str(j.source) for j in again.todo)
    finally:
        (inside / "top_00.lifted.npz").unlink()
        inside.rmdir()
        (archive / "s0" / ".hidden.npz").unlink()


def test_plan_refuses_typos_empty_patterns_and_shared_outputs(archive, tmp_path):
    from napari_liftpose.batch import BatchPlanError

    with pytest.raises(BatchPlanError, match="no such file or folder"):
        plan_batch([archive / "typo"], tmp_path)
    with pytest.raises(BatchPlanError, match="matches no file"):
        plan_batch([str(archive / "*.slp")], tmp_path)
    with pytest.raises(BatchPlanError, match=r"--ext: expected one of"):
        plan_batch([archive], tmp_path, ext=".txt")
    a, b = tmp_path / "a" / "x.npz", tmp_path / "b" / "x.npz"
    for p in (a, b):
        p.parent.mkdir()
        p.write_bytes(b"")
    with pytest.raises(BatchPlanError, match="would be written there"):
        plan_batch([a, b], tmp_path / "out")
    same = plan_batch([a, a.parent / ".." / "a" / "x.npz"], tmp_path / "out")  # one file, once
    assert same.total == 1
    twin = a.with_suffix(".csv")  # same stem, two formats (DeepLabCut writes both)
    twin.write_bytes(b"")
    names = sorted(j.target.name for j in plan_batch([a.parent], tmp_path / "out").todo)
    assert names == ["x.csv.lifted.npz", "x.npz.lifted.npz"]


def test_cli_archive_errors_are_one_line(archive, tmp_path, capsys, monkeypatch):
    model = tmp_path / "m.safetensors"  # never loaded: every check comes first
    cases = [
        (["--workers", "2", "-o", str(tmp_path / "o.npz")], "--workers needs --out-dir"),
        (["--out-dir", str(tmp_path / "o"), "--workers", "2", "--scheduler", "x"], "not both"),
        (["--out-dir", str(tmp_path / "o"), "--workers", "0"], "--workers"),
    ]
    for extra, needle in cases:
        assert main(["lift", str(model), str(archive), *extra]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and needle in err, err
    monkeypatch.setitem(sys.modules, "dask.distributed", None)  # as if not installed
    argv = ["lift", str(model), str(archive), "--out-dir", str(tmp_path / "o")]
    assert main([*argv, "--scheduler", "tcp://127.0.0.1:1"]) == 1  # 1: install something
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'napari-liftpose[dask]'" in err, err
    assert not (tmp_path / "o").exists()
