"""Built-in lifters: the shipped files load (sha256 checked) and lift; a rebuild gives them back."""

from __future__ import annotations

import hashlib
import shutil

import numpy as np
import pytest

from napari_liftpose import Poses
from napari_liftpose.bodies import builtin
from napari_liftpose.bodies.adapt import AdaptError, with_unmapped
from napari_liftpose.bodies.builtin import (
    RECIPES,
    builtin_info,
    builtin_names,
    describe_builtins,
    lifter_for_tracks,
    load_builtin,
)
from napari_liftpose.io import read_poses
from napari_liftpose.lifting import ModelFileError, camera_from_angles
from napari_liftpose.lifting.metrics import pa_mpjpe
from tests.conftest import REPO

OPENFIELD = ("dlc_openfield_csv", "openfield_dlc_inference_example.csv")


def test_manifest_lists_the_three_shipped_files_with_their_hashes():
    assert builtin_names() == ["mouse-top", "mouse-side", "fly-side"] == list(RECIPES)
    total = 0
    for name in builtin_names():
        info = builtin_info(name)
        assert info.path.is_file() and info.path.parent == builtin.BUILTIN_DIR
        assert hashlib.sha256(info.path.read_bytes()).hexdigest() == info.sha256
        assert info.size_bytes == info.path.stat().st_size
        assert info.root == RECIPES[name].root and info.body_model == RECIPES[name].body_model
        total += info.size_bytes
    assert total < 5e6  # "a few MB in all"
    text = describe_builtins()
    assert all(name in text for name in builtin_names()) and "MB" in text
    with pytest.raises(ValueError, match=r"unknown built-in lifter 'rat-top'.*mouse-top"):
        builtin_info("rat-top")


@pytest.mark.parametrize("name", list(RECIPES))
def test_each_builtin_loads_as_an_ordinary_lifter_of_its_body_model(name):
    from napari_liftpose.bodies import load_body_model

    lifter = load_builtin(name)
    model = load_body_model(RECIPES[name].body_model)
    assert lifter.keypoints == model.keypoints
    assert lifter.meta["roots"] == [RECIPES[name].root]
    assert lifter.meta["architecture"]["type"] == "mlp"
    assert lifter.meta["camera"]["kind"] == "random"
    assert lifter.meta["camera"]["elevation"] == list(RECIPES[name].elevation)
    assert lifter.meta["training"]["subset_dropout"] == RECIPES[name].subset_dropout
    assert lifter.meta["body_model"]["name"] == model.name
    assert lifter.meta["builtin"]["name"] == name
    assert lifter.calibration is not None  # lifted points carry per-joint uncertainty


def test_a_changed_file_is_refused_naming_it(tmp_path, monkeypatch):
    shutil.copytree(builtin.BUILTIN_DIR, tmp_path / "builtin")
    monkeypatch.setattr(builtin, "BUILTIN_DIR", tmp_path / "builtin")
    monkeypatch.setattr(builtin, "MANIFEST", tmp_path / "builtin" / "manifest.toml")
    path = tmp_path / "builtin" / "mouse-top.safetensors"
    data = bytearray(path.read_bytes())
    data[-5] ^= 1  # one bit of one weight
    path.write_bytes(bytes(data))
    with pytest.raises(
        ModelFileError, match=r"mouse-top.safetensors: sha256 .* changed or damaged"
    ):
        load_builtin("mouse-top")
    path.unlink()
    with pytest.raises(ModelFileError, match="missing; reinstall"):
        load_builtin("mouse-top")
    (tmp_path / "builtin" / "manifest.toml").write_text("[[lifter]]\nname = 3\n")
    with pytest.raises(ModelFileError, match="manifest.toml: malformed entry"):
        builtin_names()


def test_mouse_top_lifts_the_openfield_csv_with_ears_above_the_tail_base(data_dir):
    tracks = read_poses(data_dir.joinpath(*OPENFIELD))
    lifter, mapping = lifter_for_tracks("mouse-top", tracks)
    assert lifter.keypoints == ["snout", "leftear", "rightear", "tailbase"]
    assert mapping.unmapped_user == []
    lifted = lifter.lift(tracks)
    assert lifted.coords.shape == (2330, 1, 4, 3) and np.isfinite(lifted.coords).all()
    assert lifted.frame == "upright" and lifted.units == "mm"
    assert np.isfinite(lifted.uncertainty).all()
    assert (lifted.uncertainty[..., :3] > 0).all()  # the root is the origin: radius 0
    z = lifted.coords[:, 0, :, 2]  # z is up; the tail base is the origin
    ears_up = (z[:, 1] > z[:, 3]) & (z[:, 2] > z[:, 3])
    assert ears_up.mean() > 0.8  # a sanity check, not a metric: the head is off the floor
    out = with_unmapped(lifted, mapping)
    assert out.keypoints == tracks.keypoints


def test_sleap_names_map_and_the_root_must_be_tracked(data_dir):
    session = data_dir / "sleap_anipose_minimal_session"
    tracks = read_poses(session / "top" / "minimal_top_proofread.analysis.h5")
    lifter, mapping = lifter_for_tracks("mouse-top", tracks)
    assert len(lifter.keypoints) == 15 and lifter.meta["roots"] == ["TTI"]
    lifted = lifter.lift(tracks)
    assert np.isfinite(lifted.coords).all()
    assert np.isfinite(lifted.suspicion).all()
    with pytest.raises(AdaptError, match="'tail_base'"):
        lifter_for_tracks("mouse-side", ["Nose", "Ear_L", "Ear_R"])


def test_a_mapping_file_overrides_the_automatic_mapping(tmp_path):
    path = tmp_path / "mapping.toml"
    path.write_text('[mapping]\nbase = "tail_base"\nfront = "nose"\n')
    lifter, mapping = lifter_for_tracks("mouse-top", ["front", "base", "x"], mapping_file=path)
    assert lifter.keypoints == ["front", "base"]
    assert mapping.pairs == {"front": "nose", "base": "tail_base"}
    path.write_text('[mapping]\nbase = "tail_bse"\n')
    with pytest.raises(Exception, match="mapping.toml.*tail_bse"):
        lifter_for_tracks("mouse-top", ["base"], mapping_file=path)


def test_fly_side_lifts_the_deepfly3d_fly_better_than_the_body_models_mean_pose(data_dir):
    from napari_liftpose.bodies import load_body_model

    z = np.load(data_dir / "fly_df3d_210902" / "points3d.npz", allow_pickle=False)
    names = [str(k) for k in z["keypoints"]]
    points = z["points3d"]
    camera = camera_from_angles(azimuth=90, elevation=20, distance=20, focal=1000)
    rng = np.random.default_rng(0)
    uv = camera.project(points - points.reshape(-1, 3).mean(0))
    uv = uv + rng.normal(0.0, 1.5, uv.shape)  # 1.5 px detector noise
    tracks = Poses(uv[:, None], names)
    lifter, mapping = lifter_for_tracks("fly-side", tracks)
    assert lifter.keypoints == names  # LF_Coxa ... RH_Claw all map
    lifted = lifter.lift(tracks, suspicion=False)
    root = lifter.layout.roots[0]
    truth = points[:, None]
    fly = load_body_model("fly")
    prior = fly.mean_pose()[[fly.keypoints.index(mapping.pairs[n]) for n in names]]
    ours = pa_mpjpe(lifted.coords, truth, root)
    trivial = pa_mpjpe(np.broadcast_to(prior, truth.shape).copy(), truth, root)
    # the 2D moves the legs away from the prior: better than the body model's mean pose (the
    # truth's own mean pose is still better, see docs/builtin-lifters.md)
    assert ours < 0.9 * trivial


@pytest.mark.slow  # trains, in a subprocess
def test_rebuilding_the_smallest_builtin_gives_the_shipped_file():
    import subprocess
    import sys

    name = min(RECIPES, key=lambda n: (len(load_builtin(n).keypoints), n))
    script = REPO / "scripts" / "build_builtin_lifters.py"
    result = subprocess.run(
        [sys.executable, str(script), "--check", name], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{name}: rebuilt" in result.stdout and "identical" in result.stdout
    from napari_liftpose import __version__
    from napari_liftpose.lifting.checkpoint import read_checkpoint_header

    if read_checkpoint_header(builtin_info(name).path)[0]["package_version"] == __version__:
        assert "identical, byte for byte" in result.stdout
