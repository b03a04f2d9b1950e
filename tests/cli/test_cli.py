"""The command line, run as users run it: train, lift, evaluate, and every error path."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from napari_liftpose.cli import SUBCOMMANDS, build_parser, main


def run(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "napari_liftpose", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
    )


def one_line_error(capsys_or_result, name):
    err = capsys_or_result.stderr if hasattr(capsys_or_result, "stderr") else capsys_or_result
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert str(name) in lines[0], (name, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def session(data_dir):
    return data_dir / "sleap_anipose_minimal_session"


@pytest.fixture(scope="module")
def mouse_model(session, tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "mouse.safetensors"
    code = main(
        [
            "train",
            str(session / "points3d.h5"),
            "-o",
            str(out),
            "--tracks-2d",
            str(session / "top" / "minimal_top_proofread.slp"),
            "--root",
            "Trunk",
            "--epochs",
            "40",
            "--batch-size",
            "16",
            "--device",
            "cpu",
            "-q",
        ]
    )
    assert code == 0 and out.is_file()
    return out


def test_subcommands_are_registered_by_small_functions():
    assert {"train", "lift", "evaluate"} <= set(SUBCOMMANDS)
    text = build_parser().format_help()
    assert "train" in text and "lift" in text and "evaluate" in text


@pytest.mark.slow
def test_train_lift_evaluate_end_to_end(mouse_model, session, tmp_path):
    two_d = session / "top" / "minimal_top_proofread.analysis.h5"
    out = tmp_path / "lifted.npz"
    result = run("lift", mouse_model, two_d, "-o", out, "-q")
    assert result.returncode == 0, result.stderr
    with np.load(out) as z:
        assert z["points"].shape[-3:] == (1, 15, 3) or z["points"].shape[-2:] == (15, 3)
    for suffix in (".h5", ".csv"):
        result = run("lift", mouse_model, two_d, "-o", tmp_path / f"lifted{suffix}", "-q")
        assert result.returncode == 0, result.stderr
    result = run("evaluate", mouse_model, two_d, session / "points3d.h5", "--json")
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)
    assert metrics["roots"] == ["Trunk"] and metrics["n_frames"] == 120
    assert 0 < metrics["pa_mpjpe"] <= metrics["mpjpe"] < 0.5
    text = run("evaluate", mouse_model, two_d, session / "points3d.h5")
    assert text.returncode == 0 and "PA-MPJPE" in text.stdout


@pytest.mark.slow
def test_lift_several_inputs_into_a_folder(mouse_model, session, tmp_path):
    inputs = [session / cam / f"minimal_{cam}_proofread.analysis.h5" for cam in ("top", "back")]
    folder = tmp_path / "lifted"
    assert (
        main(
            ["lift", str(mouse_model), *map(str, inputs), "-o", str(folder), "--ext", ".csv", "-q"]
        )
        == 0
    )
    assert sorted(p.name for p in folder.iterdir()) == [
        "minimal_back_proofread.lifted.csv",
        "minimal_top_proofread.lifted.csv",
    ]
    code = main(["lift", str(mouse_model), *map(str, inputs), "-o", str(tmp_path / "one.npz")])
    assert code == 2


@pytest.mark.slow
def test_train_known_and_random_camera(data_dir, session, tmp_path):
    fly = data_dir / "fly_df3d_210902" / "points3d.npz"
    out = tmp_path / "rc.safetensors"
    result = run(
        "train",
        fly,
        "-o",
        out,
        "--random-camera",
        "--azimuth",
        "-90",
        "90",
        "--elevation",
        "0",
        "30",
        "--projection",
        "weak",
        "--epochs",
        "3",
        "--device",
        "cpu",
    )
    assert result.returncode == 0, result.stderr
    assert "wrote" in result.stdout and out.is_file()
    out2 = tmp_path / "known.safetensors"
    result = run(
        "train",
        session / "points3d.h5",
        "-o",
        out2,
        "--camera",
        f"{session / 'calibration.toml'}:back",
        "--model",
        "temporal",
        "--epochs",
        "3",
        "--filter-widths",
        "3",
        "3",
        "--channels",
        "32",
        "--root",
        "Trunk",
        "-q",
    )
    assert result.returncode == 0, result.stderr
    result = run(
        "evaluate",
        out2,
        session / "back" / "minimal_back_proofread.analysis.h5",
        session / "points3d.h5",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    # a random-camera model needs the 2D camera to evaluate
    result = run(
        "evaluate",
        out,
        session / "back" / "minimal_back_proofread.analysis.h5",
        session / "points3d.h5",
    )
    assert result.returncode == 2


# -- error paths: exit 2, one line naming the file, no partial output --------------------------
@pytest.mark.slow
def test_missing_input_file(mouse_model, tmp_path):
    out = tmp_path / "out.npz"
    result = run("lift", mouse_model, tmp_path / "nope.slp", "-o", out)
    assert result.returncode == 2
    one_line_error(result, "nope.slp")
    assert not out.exists()


def test_missing_and_pickled_model(session, tmp_path):
    two_d = session / "top" / "minimal_top_proofread.analysis.h5"
    out = tmp_path / "out.npz"
    result = run("lift", tmp_path / "none.safetensors", two_d, "-o", out)
    assert result.returncode == 2
    one_line_error(result, "none.safetensors")
    import torch

    pickled = tmp_path / "evil.safetensors"
    torch.save({"w": torch.zeros(2)}, pickled)
    result = run("lift", pickled, two_d, "-o", out)
    assert result.returncode == 2
    assert "refusing" in one_line_error(result, "evil.safetensors")
    assert not out.exists()


@pytest.mark.slow
def test_unreadable_input(mouse_model, tmp_path):
    bad = tmp_path / "broken.h5"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 40)
    out = tmp_path / "out.npz"
    result = run("lift", mouse_model, bad, "-o", out)
    assert result.returncode == 2
    one_line_error(result, "broken.h5")
    text = tmp_path / "notes.csv"
    text.write_text("hello\nworld\n")
    result = run("train", text, "-o", tmp_path / "m.safetensors", "--random-camera")
    assert result.returncode == 2
    one_line_error(result, "notes.csv")
    assert not (tmp_path / "m.safetensors").exists() and not out.exists()


@pytest.mark.slow
def test_keypoint_mismatch(mouse_model, data_dir, tmp_path):
    fly = data_dir / "fly_df3d_210902" / "points3d.npz"
    with np.load(fly) as z:
        points = z["points3d"][:50, :, :2]
        names = [str(k) for k in z["keypoints"]]
    two_d = tmp_path / "fly2d.npz"
    np.savez(two_d, points=points, keypoints=np.array(names))
    out = tmp_path / "out.npz"
    result = run("lift", mouse_model, two_d, "-o", out)
    assert result.returncode == 2
    line = one_line_error(result, "fly2d.npz")
    assert "missing: ['Nose'" in line and "extra: ['LF_Coxa'" in line
    assert not out.exists()


@pytest.mark.slow
def test_unwritable_output(mouse_model, session, tmp_path):
    two_d = session / "top" / "minimal_top_proofread.analysis.h5"
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    result = run("lift", mouse_model, two_d, "-o", blocker / "sub" / "out.npz")
    assert result.returncode == 2
    one_line_error(result, "out.npz")
    result = run(
        "train",
        session / "points3d.h5",
        "-o",
        blocker / "m.safetensors",
        "--tracks-2d",
        two_d,
        "--epochs",
        "1",
    )
    assert result.returncode == 2
    one_line_error(result, "m.safetensors")
    assert blocker.read_text() == "x"


@pytest.mark.slow
@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores permissions")
def test_read_only_output_dir(mouse_model, session, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        result = run(
            "lift",
            mouse_model,
            session / "top" / "minimal_top_proofread.analysis.h5",
            "-o",
            ro / "out.npz",
        )
        assert result.returncode == 2
        one_line_error(result, "out.npz")
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o700)


@pytest.mark.parametrize(
    "spec, named",
    [
        ("{cal}:nope", "calibration.toml"),
        ("{cal}", "calibration.toml"),  # four cameras: a name is needed
        ("{tmp}/missing.toml:top", "missing.toml"),
        ("{tmp}/bad.toml", "bad.toml"),
    ],
)
def test_bad_camera_spec(spec, named, session, tmp_path):
    (tmp_path / "bad.toml").write_text("this is = = not toml")
    out = tmp_path / "m.safetensors"
    spec = spec.format(cal=session / "calibration.toml", tmp=tmp_path)
    code = run("train", session / "points3d.h5", "-o", out, "--camera", spec, "--epochs", "1")
    assert code.returncode == 2
    one_line_error(code, named)
    assert not out.exists()


def test_bad_arguments_are_one_line(capsys):
    assert main(["train", "x.npz", "-o", "m.safetensors"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--camera" in err
    assert main(["frobnicate"]) == 2


def test_random_camera_bad_range(session, tmp_path, capsys):
    out = tmp_path / "m.safetensors"
    assert (
        main(
            [
                "train",
                str(session / "points3d.h5"),
                "-o",
                str(out),
                "--random-camera",
                "--elevation",
                "-95",
                "10",
            ]
        )
        == 2
    )
    assert "elevation" in capsys.readouterr().err and not out.exists()


def test_console_script_entry_point_exists():
    from importlib.metadata import entry_points

    names = {e.name: e.value for e in entry_points(group="console_scripts")}
    assert names.get("napari-liftpose") == "napari_liftpose.cli:main"


@pytest.mark.slow
def test_a_reader_that_goes_away_ends_the_command_quietly(mouse_model, session, capsys):
    """``napari-liftpose evaluate ... | head -1``: no error message once the pipe is closed."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone: every write to the pipe fails with EPIPE
    stdout = os.fdopen(write_end, "w")
    two_d = session / "top" / "minimal_top_proofread.analysis.h5"
    real_stdout = sys.stdout
    sys.stdout = stdout
    try:
        code = main(["evaluate", str(mouse_model), str(two_d), str(session / "points3d.h5")])
    finally:
        sys.stdout = real_stdout
        stdout.close()
    assert code == 141
    assert capsys.readouterr().err == ""
