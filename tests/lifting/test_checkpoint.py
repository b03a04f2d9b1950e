import pickle

import numpy as np
import pytest
import torch

from napari_liftpose import Poses
from napari_liftpose.lifting import (
    ModelFileError,
    TrainConfig,
    check_keypoints,
    load_checkpoint,
    load_lifter,
    save_checkpoint,
    train,
)


@pytest.fixture(scope="module", params=["mlp", "temporal"])
def trained(request, fly, fly_camera, tmp_path_factory):
    small = fly.copy(coords=fly.coords[:300].copy(), confidence=fly.confidence[:300].copy())
    path = tmp_path_factory.mktemp("ckpt") / f"{request.param}.safetensors"
    config = TrainConfig(
        model=request.param,
        epochs=2,
        device="cpu",
        architecture={"width": 32} if request.param == "mlp" else {"channels": 32},
    )
    train(small, fly_camera, path, config)
    return path, small


@pytest.mark.slow
def test_round_trip_is_bit_exact(trained, fly_camera, tmp_path):
    path, poses = trained
    lifter = load_lifter(path, device="cpu")
    tensors, meta = load_checkpoint(path)
    copy = save_checkpoint(tmp_path / "copy.safetensors", tensors, meta)
    again = load_lifter(copy, device="cpu")
    a, b = lifter.model.state_dict(), again.model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    two_d = poses.copy(coords=fly_camera.project(poses.coords))
    assert np.array_equal(lifter.lift(two_d).coords, again.lift(two_d).coords)
    for key in (
        "architecture",
        "keypoints",
        "edges",
        "roots",
        "camera",
        "training",
        "metrics",
        "package_version",
        "format_version",
        "units",
    ):
        assert key in meta, key
    assert meta["keypoints"] == list(poses.keypoints)
    assert {"norm.input_mean", "norm.target_std"} <= tensors.keys()


@pytest.mark.slow
def test_pickles_are_refused(trained, tmp_path):
    path, _ = trained
    state = load_lifter(path).model.state_dict()
    zipped = tmp_path / "model.safetensors"
    torch.save(state, zipped)
    with pytest.raises(ModelFileError, match=r"model\.safetensors: .*refusing"):
        load_lifter(zipped)
    legacy = tmp_path / "legacy.pt"
    torch.save(state, legacy, _use_new_zipfile_serialization=False)
    with pytest.raises(ModelFileError, match="refusing"):
        load_lifter(legacy)
    plain = tmp_path / "plain.pkl"
    plain.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(ModelFileError, match=r"plain\.pkl: .*pickle"):
        load_lifter(plain)


def test_bad_files_name_the_file(tmp_path):
    with pytest.raises(ModelFileError, match="missing.safetensors: file not found"):
        load_lifter(tmp_path / "missing.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}......")
    with pytest.raises(ModelFileError, match="junk.safetensors: not a safetensors lifter"):
        load_lifter(junk)
    bare = tmp_path / "bare.safetensors"
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, bare)
    with pytest.raises(ModelFileError, match="without napari-liftpose metadata"):
        load_lifter(bare)


def test_save_is_atomic_and_reports_unwritable(tmp_path):
    with pytest.raises(ModelFileError, match="does not exist"):
        save_checkpoint(tmp_path / "nope" / "m.safetensors", {"w": torch.zeros(1)}, {})
    target = tmp_path / "m.safetensors"
    save_checkpoint(target, {"w": torch.ones(3)}, {"x": 1})
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]


@pytest.mark.slow
def test_keypoint_mismatch_lists_missing_and_extra(trained, fly_camera):
    path, poses = trained
    lifter = load_lifter(path)
    with pytest.raises(ValueError, match=r"missing: \['LF_Coxa'\]; extra: \['Head'\]"):
        check_keypoints(lifter.keypoints, ["Head"] + lifter.keypoints[1:])
    names = list(poses.keypoints)
    renamed = poses.copy(keypoints=["Head"] + names[1:], edges=None)
    with pytest.raises(ValueError, match=r"missing: \['LF_Coxa'\]; extra: \['Head'\]"):
        lifter.lift(renamed.copy(coords=fly_camera.project(renamed.coords)))
    # reordered keypoints plus an extra one are matched by name
    two_d = fly_camera.project(poses.coords)
    order = np.arange(len(names))[::-1]
    shuffled = Poses(
        np.concatenate([two_d[:, :, order], np.zeros((poses.n_frames, 1, 1, 2))], axis=2),
        [names[i] for i in order] + ["Head"],
    )
    expected = lifter.lift(poses.copy(coords=two_d)).coords
    assert np.allclose(lifter.lift(shuffled).coords, expected, atol=1e-6)
