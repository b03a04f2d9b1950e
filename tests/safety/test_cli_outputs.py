"""The CLI never destroys an input, and says what it kept when it stops early.

Every output that resolves to an input of the command (same string, relative or absolute
spelling, ``..``, a symlink, a hard link, a symlinked folder) is refused with exit 2 and one
line naming both, before any work; the input's bytes are unchanged and nothing else is left.
Also: nothing liftable is an error (no all-NaN file), a multi-input ``lift`` says which outputs
were already written, ``evaluate --json`` is strict JSON, and an interrupted ``train`` tells the
truth about what it kept.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import threading
from pathlib import Path

import numpy as np
import pytest

from napari_liftpose.cli import main
from napari_liftpose.io import read_poses, write_poses

from .conftest import (
    assert_one_line_error,
    effective_user,
    leftover_temp_files,
    nobody_uid,
    run_cli,
)

pytestmark = pytest.mark.slow  # every test here trains a network (or uses one trained here)

REFUSED = "would overwrite the input"


def digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture(scope="module")
def work(data_dir, tmp_path_factory) -> dict[str, Path]:
    """Copies of small real inputs (so links can be made to them) and a tiny trained model."""
    folder = tmp_path_factory.mktemp("cli_outputs")
    session = data_dir / "sleap_anipose_minimal_session"
    files = {
        "analysis": folder / "top.analysis.h5",
        "calibration": folder / "calibration.toml",
        "dlc_csv": folder / "openfield.csv",
    }
    shutil.copyfile(session / "top" / "minimal_top_proofread.analysis.h5", files["analysis"])
    shutil.copyfile(session / "calibration.toml", files["calibration"])
    shutil.copyfile(
        data_dir / "dlc_openfield_csv" / "openfield_dlc_inference_example.csv", files["dlc_csv"]
    )
    tracks = read_poses(files["analysis"])
    library = read_poses(session / "points3d.h5")  # names come from the session's folders
    files["library"] = write_poses(library.copy(source=None), folder / "library3d.npz")
    files["npz"] = write_poses(tracks.copy(source=None), folder / "top2d.npz")
    files["model"] = folder / "tiny.safetensors"
    code = main(
        [
            "train",
            str(files["library"]),
            "-o",
            str(files["model"]),
            "--tracks-2d",
            str(files["analysis"]),
            "--root",
            "Trunk",
            "--epochs",
            "2",
            "--width",
            "16",
            "--batch-size",
            "16",
            "--device",
            "cpu",
            "-q",
        ]
    )
    assert code == 0 and files["model"].is_file()
    for p in files.values():
        p.chmod(0o444)  # read-only copies: a test that wrote onto one would fail loudly too
    return files


def spell(path: Path, how: str, scratch: Path) -> tuple[str, Path | None]:
    """``path`` spelled another way: (argument, cwd to run from)."""
    if how == "same":
        return str(path), None
    if how == "relative":
        return path.name, path.parent
    if how == "dotdot":
        (path.parent / "sub").mkdir(exist_ok=True)
        return str(path.parent / "sub" / ".." / path.name), None
    if how == "symlink":
        link = scratch / f"link{path.suffix}"
        link.symlink_to(path)
        return str(link), None
    if how == "hardlink":
        link = scratch / f"hard{path.suffix}"
        os.link(path, link)
        return str(link), None
    if how == "symlinked_folder":
        alias = scratch / "alias"
        alias.symlink_to(path.parent, target_is_directory=True)
        return str(alias / path.name), None
    raise AssertionError(how)


def assert_refused(result, output: str, inputs: list[Path], before: dict[Path, str]) -> None:
    assert_one_line_error(result, REFUSED, Path(output).name)
    for path in inputs:
        assert digest(path) == before[path], f"{path} changed"
        assert not leftover_temp_files(path.parent)


SPELLINGS = ["same", "relative", "dotdot", "symlink", "hardlink", "symlinked_folder"]


@pytest.mark.parametrize("how", SPELLINGS)
def test_lift_onto_its_sleap_analysis_input_is_refused(work, how, tmp_path):
    source = work["analysis"]
    before = {source: digest(source), work["model"]: digest(work["model"])}
    output, cwd = spell(source, how, tmp_path)
    result = run_cli("lift", work["model"], source, "-o", output, "-q", cwd=cwd)
    assert_refused(result, output, [source, work["model"]], before)


@pytest.mark.parametrize("kind", ["npz", "dlc_csv"])
def test_lift_onto_its_input_is_refused_for_every_format(work, kind):
    source = work[kind]
    before = {source: digest(source)}
    result = run_cli("lift", work["model"], source, "-o", source)
    assert_refused(result, str(source), [source], before)


def test_lift_onto_its_model_is_refused(work):
    before = {work["model"]: digest(work["model"])}
    result = run_cli("lift", work["model"], work["analysis"], "-o", work["model"])
    assert_refused(result, str(work["model"]), [work["model"]], before)
    assert "tiny.safetensors" in result.stderr


def test_lift_folder_output_that_maps_onto_an_input_is_refused(work, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    earlier = out / "a.lifted.npz"  # an earlier lift's output lifted again: an input
    shutil.copyfile(work["npz"], earlier)
    before = {earlier: digest(earlier)}
    result = run_cli("lift", work["model"], earlier, work["npz"], "-o", out, "--ext", ".npz")
    assert_refused(result, str(earlier), [earlier], before)
    assert sorted(p.name for p in out.iterdir()) == ["a.lifted.npz"]  # top2d not lifted either


@pytest.mark.parametrize("how", ["same", "hardlink"])
def test_train_onto_its_library_is_refused(work, how, tmp_path):
    library = work["library"]
    before = {library: digest(library)}
    output, _ = spell(library, how, tmp_path)
    result = run_cli("train", library, "-o", output, "--random-camera", "--epochs", "1")
    assert_refused(result, output, [library], before)


def test_train_onto_its_calibration_is_refused(work):
    cal = work["calibration"]
    before = {cal: digest(cal)}
    result = run_cli(
        "train", work["library"], "-o", cal, "--camera", f"{cal}:top", "--epochs", "1"
    )
    assert_refused(result, str(cal), [cal], before)


def test_train_onto_its_2d_tracks_is_refused(work, tmp_path):
    tracks = work["analysis"]
    before = {tracks: digest(tracks)}
    output = str(tmp_path / ".." / tmp_path.name / "x" / ".." / "link.h5")
    (tmp_path / "x").mkdir()
    (tmp_path / "link.h5").symlink_to(tracks)
    result = run_cli("train", work["library"], "-o", output, "--tracks-2d", tracks)
    assert_refused(result, output, [tracks], before)


def test_train_resume_state_file_onto_an_input_is_refused(work, tmp_path):
    model = tmp_path / "m.safetensors"
    library = tmp_path / "m.safetensors.resume.safetensors"  # where --resume state would go
    shutil.copyfile(work["library"], library)
    before = {library: digest(library)}
    result = run_cli("train", library, "-o", model, "--random-camera", "--resume")
    assert_refused(result, str(library), [library], before)
    assert not model.exists()


# -- in-process: what the CLI says when it stops early -----------------------------------------
def test_a_lift_with_nothing_liftable_is_an_error_not_a_nan_file(work, tmp_path, capsys):
    tracks = read_poses(work["analysis"])
    coords = tracks.coords.copy()
    coords[:, :, tracks.keypoints.index("Trunk")] = np.nan  # the model's root is never tracked
    rootless = write_poses(tracks.copy(coords=coords, source=None), tmp_path / "rootless.npz")
    out = tmp_path / "lifted.npz"
    assert main(["lift", str(work["model"]), str(rootless), "-o", str(out), "-q"]) == 2
    line = one_line(capsys.readouterr().err)
    assert "rootless.npz" in line and "nothing liftable" in line and "Trunk" in line
    assert not out.exists() and not leftover_temp_files(tmp_path)


def test_multi_input_lift_says_which_outputs_were_already_written(work, tmp_path, capsys):
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, points=np.random.default_rng(0).random((5, 3, 2)), keypoints=["a", "b", "c"])
    out = tmp_path / "out"
    args = ["lift", str(work["model"]), str(work["npz"]), str(wrong), "-o", str(out), "-q"]
    assert main(args) == 2
    captured = capsys.readouterr()
    line = one_line(captured.err)
    written = out / "top2d.lifted.npz"
    assert "wrong.npz" in line and "keypoints do not match" in line
    assert "already written: 1 of 2 outputs" in line and str(written) in line
    assert written.is_file() and f"wrote {written}" in captured.out
    assert not (out / "wrong.lifted.npz").exists()


def test_a_missing_later_input_stops_lift_before_anything_is_written(work, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["lift", str(work["model"]), str(work["npz"]), str(tmp_path / "typo.npz"), "-o", str(out)]
    assert main(args) == 2
    assert "typo.npz" in one_line(capsys.readouterr().err)
    assert not out.exists() or not list(out.iterdir())


def test_evaluate_json_is_strict_json(work, tmp_path, capsys):
    """One frame: velocity and bone-length spread are undefined -> null, never ``NaN``."""
    tracks, truth = read_poses(work["analysis"]), read_poses(work["library"])
    one = [
        write_poses(p.copy(coords=p.coords[:1].copy(), confidence=p.confidence[:1].copy(), source=None), tmp_path / f"{name}.npz")
        for p, name in ((tracks, "one2d"), (truth, "one3d"))
    ]
    assert main(["evaluate", str(work["model"]), *map(str, one), "--json", "--device", "cpu"]) == 0
    text = capsys.readouterr().out

    def refuse(constant):
        raise AssertionError(f"not strict JSON: {constant}")

    metrics = json.loads(text, parse_constant=refuse)
    assert metrics["mpjve"] is None and metrics["n_frames"] == 1
    assert metrics["per_joint_mpjpe"]["Trunk"] is None and metrics["mpjpe"] > 0


def _interrupt_first_epoch(work, output: Path, signum: int, capsys) -> tuple[int, str]:
    """Train a large model (a first epoch of many seconds); send ``signum`` after 1 s."""
    previous = signal.signal(signum, lambda *_: None)  # a late signal must not end pytest
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signum))
    args = [
        "train",
        str(work["library"]),
        "-o",
        str(output),
        "--random-camera",
        "--width",
        "2048",
        "--blocks",
        "4",
        "--batch-size",
        "2",
        "--epochs",
        "5",
        "--device",
        "cpu",
        "-q",
    ]
    timer.start()
    try:
        code = main(args)
    finally:
        timer.cancel()
        signal.signal(signum, previous)
    return code, one_line(capsys.readouterr().err)


def test_train_interrupted_before_any_epoch_does_not_claim_a_model(work, tmp_path, capsys):
    output = tmp_path / "m.safetensors"
    code, line = _interrupt_first_epoch(work, output, signal.SIGINT, capsys)
    assert code == 130
    assert "best model so far" not in line and "no model was written" in line, line
    assert "SIGINT" in line and not output.exists()


def test_train_terminated_before_any_epoch_keeps_the_old_model(work, tmp_path, capsys):
    output = tmp_path / "m.safetensors"
    shutil.copyfile(work["model"], output)
    before = digest(output)
    code, line = _interrupt_first_epoch(work, output, signal.SIGTERM, capsys)
    assert code == 143
    assert "best model so far" not in line and "was not changed" in line, line
    assert digest(output) == before and not leftover_temp_files(tmp_path)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores permissions")
def test_an_unreadable_input_says_permission_denied(work, tmp_path, capsys):
    locked = tmp_path / "locked.h5"
    shutil.copyfile(work["analysis"], locked)
    locked.chmod(0)
    assert main(["lift", str(work["model"]), str(locked), "-o", str(tmp_path / "o.npz")]) == 2
    line = one_line(capsys.readouterr().err)
    assert "locked.h5" in line and "ermission denied" in line and "HDF5" not in line



@pytest.mark.skipif(nobody_uid() is None, reason="needs root and a 'nobody' user")
def test_an_unreadable_input_says_permission_denied_as_another_user(work, capsys):
    import tempfile

    shared = Path(tempfile.mkdtemp(prefix="liftpose-perm-"))
    try:
        shared.chmod(0o777)
        model = shared / "model.safetensors"
        shutil.copyfile(work["model"], model)
        model.chmod(0o644)
        locked = shared / "locked.h5"
        shutil.copyfile(work["analysis"], locked)
        locked.chmod(0)
        with effective_user(nobody_uid()):
            code = main(["lift", str(model), str(locked), "-o", str(shared / "o.npz")])
        assert code == 2
        line = one_line(capsys.readouterr().err)
        assert "locked.h5" in line and "ermission denied" in line and "HDF5" not in line
        assert not (shared / "o.npz").exists()
    finally:
        shutil.rmtree(shared)
