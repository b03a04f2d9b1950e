"""LiftSession without Qt: the one owner of lifter, lifted poses and edits."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from napari_liftpose.io import read_calibration, read_poses
from napari_liftpose.napari.session import LiftSession, read_camera

pytestmark = pytest.mark.slow  # the demo lifter is trained for these tests


def test_importing_the_session_loads_no_napari_or_qt():
    code = (
        "import sys, napari_liftpose.napari.session\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('napari', 'qtpy', 'PyQt5', 'PyQt6',"
        " 'PySide2', 'PySide6', 'vispy', 'magicgui')]\n"
        "print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.fixture
def session(demo):
    session = LiftSession()
    session.load_model(demo.model)
    return session


def test_a_failed_load_keeps_the_lifter(session, demo, tmp_path):
    before, summary = session.lifter, session.model_summary()
    bad = tmp_path / "broken.safetensors"
    bad.write_bytes(b"not a model at all")
    with pytest.raises(ValueError, match="broken.safetensors"):
        session.load_model(bad)
    with pytest.raises(ValueError, match="file not found"):
        session.load_model(tmp_path / "absent.safetensors")
    assert session.lifter is before and session.model_summary() == summary
    assert f"on {len(before.keypoints)} keypoints" in summary


def test_lift_keeps_its_own_poses_and_exports_them(session, demo, tmp_path):
    tracks = read_poses(demo.tracks)
    lifted = session.lift("walk", tracks)
    assert lifted.coords.shape == (tracks.n_frames, 1, len(session.lifter.keypoints), 3)
    assert lifted.suspicion is not None and lifted.suspicion.shape == (tracks.n_frames, 1)
    np.testing.assert_array_equal(
        lifted.coords, session.lifter.lift(tracks, suspicion=False).coords
    )
    lifted.coords[:] = 0  # a caller's copy: the session's poses do not change
    tracks.coords[:] = 0
    exported = read_poses(session.export(tmp_path / "walk3d.npz"))
    assert np.isfinite(exported.coords).all() and not (exported.coords == 0).all()
    np.testing.assert_array_equal(exported.coords, session.lifted().coords)
    assert len(session.edited_frames()) == 0


def test_a_2d_edit_relifts_that_frame_only_and_is_exported(session, demo, tmp_path):
    tracks = read_poses(demo.tracks)
    session.lift("walk", tracks)
    before = session.lifted().coords.copy()
    frame, claw = 40, tracks.keypoints.index("LF_Claw")
    pose = tracks.coords[frame].copy()
    pose[0, claw] += [25.0, -20.0]
    changed = session.edit_2d("walk", frame, pose)
    assert list(changed) == [frame]
    after = session.lifted().coords
    others = np.arange(tracks.n_frames) != frame
    np.testing.assert_array_equal(after[others], before[others])
    model_pose = tracks.select_keypoints(session.lifter.keypoints).coords[frame].copy()
    model_pose[0, session.lifter.keypoints.index("LF_Claw")] += [25.0, -20.0]
    expected = session.lifter.lift_arrays(model_pose[None])[0]
    np.testing.assert_allclose(after[frame], expected, atol=1e-5)
    assert not np.allclose(after[frame], before[frame])
    edited = session.edited_2d("walk")
    assert edited.sum() == 1 and edited[frame, 0, claw]
    assert list(session.edited_frames()) == [frame]
    exported = read_poses(session.export(tmp_path / "edited.h5"))
    np.testing.assert_allclose(exported.coords[frame], after[frame])


def test_a_3d_edit_is_kept_marked_and_exported(session, demo, tmp_path):
    session.lift("walk", read_poses(demo.tracks))
    frame = 12
    coords = session.lifted_frames([frame])[0]
    coords[0, 3] = np.nan  # the user deleted one 3D point
    coords[0, 5] += 0.1  # and moved another
    assert session.edit_3d("walk", frame, coords)
    assert not session.edit_3d("walk", frame, coords)  # nothing new
    poses = session.lifted()
    assert poses.metadata["edited"][frame, 0, [3, 5]].all()
    assert poses.metadata["edited"].sum() == 2
    exported = read_poses(session.export(tmp_path / "edited3d.npz"))
    assert np.isnan(exported.coords[frame, 0, 3]).all()
    np.testing.assert_allclose(exported.coords[frame, 0, 5], coords[0, 5])


def test_lifting_tracks_that_do_not_fit_changes_nothing(session, demo, data_dir):
    session.lift("walk", read_poses(demo.tracks))
    other = read_poses(data_dir / "sleap_anipose_minimal_session/top/minimal_top_proofread.slp")
    with pytest.raises(ValueError, match="missing") as err:
        session.lift("mouse", other)
    assert "LF_Claw" in str(err.value)
    assert session.names == ["walk"] and session.current == "walk"
    with pytest.raises(ValueError, match="expected 2D tracks"):
        session.lift("truth", read_poses(demo.truth))
    with pytest.raises(ValueError, match="No lifter"):
        LiftSession().lift("walk", read_poses(demo.tracks))


def test_evaluate_known_camera_lifter(session, demo):
    with pytest.raises(ValueError, match="Nothing lifted"):
        session.evaluate(demo.truth)
    session.lift("walk", read_poses(demo.tracks))
    metrics = session.evaluate(demo.truth)
    assert 0 < metrics["mpjpe"] < 1.0 and metrics["frame"] == "world"
    with pytest.raises(ValueError, match="expected 3D"):
        session.evaluate(demo.tracks)
    overlay = session.truth_overlay(demo.truth)  # in the lift's axes, on its root
    lifted = session.lifted()
    assert overlay.keypoints == session.lifter.keypoints
    error = np.linalg.norm(overlay.coords - lifted.coords, axis=-1)
    assert np.nanmean(error) == pytest.approx(metrics["mpjpe"], rel=0.05)


def test_evaluate_random_camera_lifter_needs_the_camera_and_agrees_with_the_cli(
    demo, tmp_path, capsys
):
    """A random-camera lifter's 3D is in the filming camera's upright axes: the truth follows."""
    from napari_liftpose.cli import main
    from napari_liftpose.lifting import RandomCameras, TrainConfig, train

    model = tmp_path / "random.safetensors"
    train(
        read_poses(demo.library),
        RandomCameras(),
        model,
        TrainConfig(epochs=1, seed=0),
        roots=["Thorax"],
    )
    session = LiftSession()
    session.load_model(model)
    assert session.needs_camera()
    session.lift("walk", read_poses(demo.tracks))
    with pytest.raises(ValueError, match="camera the 2D tracks"):
        session.evaluate(demo.truth)
    camera = read_camera(demo.calibration, "demo")
    np.testing.assert_array_equal(
        camera.rotation, read_calibration(demo.calibration)["demo"].rotation
    )
    metrics = session.evaluate(demo.truth, camera=camera)
    assert metrics["frame"] == "upright" and np.isfinite(metrics["mpjpe"])
    capsys.readouterr()
    spec = f"{demo.calibration}:demo"
    assert (
        main(
            ["evaluate", str(model), str(demo.tracks), str(demo.truth), "--camera", spec, "--json"]
        )
        == 0
    )
    on_cli = json.loads(capsys.readouterr().out)
    for key in ("mpjpe", "pa_mpjpe", "n_mpjpe"):
        assert metrics[key] == pytest.approx(on_cli[key], rel=1e-4), key


def test_read_camera_names_what_is_wrong(demo):
    with pytest.raises(ValueError, match="no camera named 'side'"):
        read_camera(demo.calibration, "side")
