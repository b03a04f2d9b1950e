"""``train --body`` and ``lift --builtin`` run as users run them (subprocesses)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from napari_liftpose import Poses
from napari_liftpose.io import read_poses, write_poses
from napari_liftpose.lifting.checkpoint import read_checkpoint_header

OPENFIELD = ("dlc_openfield_csv", "openfield_dlc_inference_example.csv")


def run(*args, cwd=None):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "napari_liftpose", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
    )


def one_line_error(result, *names):
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for name in names:
        assert str(name) in lines[0], (name, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def openfield(data_dir):
    return data_dir.joinpath(*OPENFIELD)


def test_lift_builtin_alone_lists_the_builtins():
    result = run("lift", "--builtin")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == ["mouse-top", "mouse-side", "fly-side"]
    assert all("MB" in line and "Body model" in line for line in lines)


def test_lift_builtin_lifts_an_openfield_csv_with_no_model_file(openfield, tmp_path):
    out = tmp_path / "tracks_3d.npz"
    result = run("lift", "--builtin", "mouse-top", openfield, "-o", out, "-q", "--threads", "1")
    assert result.returncode == 0, result.stderr
    assert "4 of 4 keypoints mapped" in result.stdout and "snout -> nose" in result.stdout
    assert f"wrote {out}" in result.stdout and "built-in mouse-top" in result.stdout
    lifted = read_poses(out)
    assert lifted.keypoints == ["snout", "leftear", "rightear", "tailbase"]
    assert lifted.coords.shape == (2330, 1, 4, 3) and np.isfinite(lifted.coords).all()
    assert lifted.frame == "upright" and lifted.uncertainty is not None


def test_unmapped_keypoints_are_named_and_written_as_nan(openfield, tmp_path):
    tracks = read_poses(openfield)
    lever = tracks.coords[:, :, :1] + 10.0
    extra = Poses(
        np.concatenate([tracks.coords, lever], axis=2),
        [*tracks.keypoints, "lever"],
        confidence=np.concatenate([tracks.confidence, tracks.confidence[:, :, :1]], axis=2),
        fps=30.0,
    )
    source = write_poses(extra, tmp_path / "with_lever.npz")
    out = tmp_path / "with_lever_3d.npz"
    result = run("lift", "--builtin", "mouse-side", source, "-o", out, "-q", "--threads", "1")
    assert result.returncode == 0, result.stderr
    assert "not mapped, written as NaN: lever" in result.stdout
    lifted = read_poses(out)
    assert lifted.keypoints == [*tracks.keypoints, "lever"]
    assert np.isnan(lifted.coords[:, :, 4]).all() and np.isfinite(lifted.coords[:, :, :4]).all()


def test_a_mapping_file_maps_what_the_names_do_not(openfield, tmp_path):
    tracks = read_poses(openfield)
    renamed = tracks.copy(keypoints=["k0", "k1", "k2", "k3"], source=None)
    source = write_poses(renamed, tmp_path / "renamed.npz")
    mapping = tmp_path / "mapping.toml"
    mapping.write_text(
        '[mapping]\nk0 = "nose"\nk1 = "left_ear"\nk2 = "right_ear"\nk3 = "tail_base"\n'
    )
    out = tmp_path / "renamed_3d.npz"
    args = ("lift", "--builtin", "mouse-top", source, "-o", out, "-q", "--threads", "1")
    one_line_error(run(*args), "renamed.npz", "no keypoint maps")  # nothing maps by name
    result = run(*args, "--mapping", mapping)
    assert result.returncode == 0, result.stderr
    reference = read_poses(tmp_path / "renamed_3d.npz")
    assert reference.keypoints == ["k0", "k1", "k2", "k3"]
    assert np.isfinite(reference.coords).all()


def test_builtin_errors_are_one_line(data_dir, openfield, tmp_path):
    out = tmp_path / "x.npz"
    one_line_error(
        run("lift", "--builtin", "rat-top", openfield, "-o", out), "rat-top", "mouse-top"
    )
    reaching = data_dir / "dlc_reaching_2d" / "reachingDEMO_2D.h5"
    line = one_line_error(run("lift", "--builtin", "mouse-side", reaching, "-o", out), reaching)
    assert "root 'tail_base'" in line and "Map one of your keypoints to 'tail_base'" in line
    assert not out.exists()
    one_line_error(run("lift", "--builtin", "mouse-top", openfield, "--out-dir", tmp_path), "-o")
    one_line_error(
        run("lift", "--mapping", tmp_path / "m.toml", "m.safetensors", openfield, "-o", out),
        "--mapping needs --builtin",
    )
    one_line_error(run("lift", "m.safetensors"), "expected MODEL and at least one INPUT")


def test_train_body_option_errors_are_one_line(openfield, tmp_path):
    out = tmp_path / "m.safetensors"
    one_line_error(run("train", "--keypoints-from", openfield, "-o", out), "needs --body")
    one_line_error(run("train", "-o", out, "--random-camera"), "LIBRARY_3D")
    one_line_error(
        run("train", "--body", "mouse", "--tracks-2d", openfield, "-o", out), "--tracks-2d"
    )
    bad = tmp_path / "bad.toml"
    bad.write_text("[model\n")
    one_line_error(run("train", "--body", bad, "-o", out), bad)
    assert not out.exists()


@pytest.mark.slow
def test_train_body_on_the_openfield_keypoints_then_lift_the_file(openfield, tmp_path):
    model = tmp_path / "openfield.safetensors"
    result = run(
        "train", "--body", "mouse", "--keypoints-from", openfield, "--body-poses", "2000",
        "--epochs", "1", "--device", "cpu", "--threads", "1", "-o", model, "-q",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "4 of 4 keypoints mapped" in result.stdout and "root 'tailbase'" in result.stdout
    meta, _ = read_checkpoint_header(model)
    assert meta["keypoints"] == ["snout", "leftear", "rightear", "tailbase"]
    assert meta["roots"] == ["tailbase"]
    assert meta["camera"]["elevation"] == [50.0, 88.0]  # a rodent: cameras above by default
    assert meta["body_model"]["name"] == "mouse" and meta["mapping"]["snout"] == "nose"
    assert meta["training"]["subset_dropout"] == 0.0
    out = tmp_path / "lifted.npz"
    result = run("lift", model, openfield, "-o", out, "-q", "--threads", "1")
    assert result.returncode == 0, result.stderr
    assert np.isfinite(read_poses(out).coords).all()


@pytest.mark.slow
def test_train_body_mixes_real_frames_in(data_dir, tmp_path):
    z = np.load(data_dir / "fly_df3d_210902" / "points3d.npz", allow_pickle=False)
    real = Poses(z["points3d"][:200, None], [str(k) for k in z["keypoints"]], units="mm", fps=100.0)
    library = write_poses(real, tmp_path / "df3d.npz")
    model = tmp_path / "fly.safetensors"
    result = run(
        "train", "--body", "fly", library, "--body-poses", "2000", "--elevation", "-10", "40",
        "--epochs", "1", "--device", "cpu", "--threads", "1", "-o", model, "-q",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "200 real 3D frames, repeated" in result.stdout
    meta, _ = read_checkpoint_header(model)
    assert meta["keypoints"][0] == "thorax" and len(meta["keypoints"]) == 35
    assert meta["camera"]["elevation"] == [-10.0, 40.0]
    assert meta["training"]["subset_dropout"] == 0.8  # a whole-body lifter lifts any subset
    assert meta["body_model"]["name"] == "fly"
