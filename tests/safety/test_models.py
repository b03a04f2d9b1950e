"""Model files from strangers: every malformed lifter is one ModelFileError naming the file.

A tiny lifter is trained once; each test writes a variant of it (changed metadata, missing or
misshapen tensors) with safetensors directly and checks what ``load_lifter`` says.
"""

from __future__ import annotations

import json
import resource

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from napari_liftpose.lifting import (
    ModelFileError,
    TrainConfig,
    camera_from_angles,
    load_checkpoint,
    load_lifter,
    save_checkpoint,
    train,
)
from napari_liftpose.lifting.lifter_meta import MAX_PARAMETERS


@pytest.fixture(scope="module", params=["mlp", "temporal"])
def model(request, fly_small, tmp_path_factory):
    """(tensors, meta) of a tiny trained lifter."""
    small = fly_small
    path = tmp_path_factory.mktemp("models") / "good.safetensors"
    arch = {"width": 8} if request.param == "mlp" else {"channels": 8}
    camera = camera_from_angles(azimuth=90, elevation=20, distance=20)
    config = TrainConfig(model=request.param, epochs=1, device="cpu", architecture=arch)
    train(small, camera, path, config)
    tensors, meta = load_checkpoint(path)
    return tensors, meta


def write(path, tensors, meta_json: str):
    save_file(
        {k: v.contiguous() for k, v in tensors.items()},
        str(path),
        metadata={"napari_liftpose": meta_json},
    )
    return path


def refused(path, *needles: str) -> str:
    with pytest.raises(ModelFileError) as info:
        load_lifter(path, device="cpu")
    message = str(info.value)
    assert message.startswith(f"{path}: "), message
    for needle in needles:
        assert needle in message, (needle, message)
    return message


@pytest.mark.slow
def test_the_good_model_loads(model, tmp_path):
    tensors, meta = model
    lifter = load_lifter(write(tmp_path / "ok.safetensors", tensors, json.dumps(meta)), "cpu")
    assert lifter.keypoints == meta["keypoints"]


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (lambda m: [1, 2], "expected a JSON object, got list"),
        (lambda m: "lifter", "expected a JSON object, got str"),
        (lambda m: {**m, "format_version": None}, "format_version"),
        (lambda m: {**m, "format_version": "1"}, "format_version"),
        (lambda m: {**m, "format_version": 99}, "newer"),
        (lambda m: {**m, "architecture": "mlp"}, "architecture: expected an object"),
        (lambda m: {**m, "architecture": {**m["architecture"], "type": "rnn"}}, "type"),
        (lambda m: {**m, "architecture": {**m["architecture"], "dropout": 2}}, "dropout"),
        (lambda m: {**m, "camera": "known"}, "camera: expected an object"),
        (lambda m: {**m, "camera": {"kind": "known", "camera": {"name": "x"}}}, "camera"),
        (lambda m: {k: v for k, v in m.items() if k != "keypoints"}, "missing 'keypoints'"),
        (lambda m: {k: v for k, v in m.items() if k != "roots"}, "missing 'roots'"),
        (lambda m: {**m, "keypoints": 5}, "keypoints: expected a list of names"),
        (lambda m: {**m, "keypoints": [1] * len(m["keypoints"])}, "keypoints"),
        (lambda m: {**m, "keypoints": ["a"] * len(m["keypoints"])}, "unique"),
        (lambda m: {**m, "roots": [3]}, "roots"),
        (lambda m: {**m, "roots": ["nope"]}, "nope"),
        (lambda m: {**m, "target_sets": "x"}, "target_sets"),
        (lambda m: {**m, "edges": "ab"}, "edges"),
        (lambda m: {**m, "edges": [[0, 999]]}, "edges"),
        (lambda m: {**m, "input_norm": 3}, "input_norm"),
        (lambda m: {**m, "units": ["mm"]}, "units"),
    ],
)
@pytest.mark.slow
def test_malformed_metadata_names_the_file(model, tmp_path, change, needle):
    tensors, meta = model
    path = write(tmp_path / "bad.safetensors", tensors, json.dumps(change(dict(meta))))
    refused(path, needle)


@pytest.mark.slow
def test_missing_extra_and_misshapen_tensors(model, tmp_path):
    tensors, meta = model
    meta_json = json.dumps(meta)
    missing = {k: v for k, v in tensors.items() if k != "norm.input_std"}
    refused(write(tmp_path / "a.safetensors", missing, meta_json), "missing", "norm.input_std")
    name = next(k for k in tensors if k.startswith("model.") and k.endswith("weight"))
    wrong = {**tensors, name: torch.zeros(3, 3)}
    refused(write(tmp_path / "b.safetensors", wrong, meta_json), "wrong shapes", name)
    extra = {**tensors, "model.surprise": torch.zeros(2)}
    refused(write(tmp_path / "c.safetensors", extra, meta_json), "unexpected", "surprise")
    nan = {**tensors, name: torch.full_like(tensors[name], float("nan"))}
    refused(write(tmp_path / "d.safetensors", nan, meta_json), name, "finite")
    zero = {**tensors, "norm.target_std": torch.zeros_like(tensors["norm.target_std"])}
    refused(write(tmp_path / "e.safetensors", zero, meta_json), "norm.target_std")


@pytest.mark.slow
def test_metadata_from_another_architecture(model, tmp_path):
    tensors, meta = model
    other = {"type": "temporal"} if meta["architecture"]["type"] == "mlp" else {"type": "mlp"}
    path = write(tmp_path / "x.safetensors", tensors, json.dumps({**meta, "architecture": other}))
    refused(path, "tensors do not match the architecture")


@pytest.mark.parametrize(
    "arch",
    [
        {"type": "mlp", "width": 20000},
        {"type": "mlp", "width": 12000, "blocks": 2},
        {"type": "mlp", "width": 64, "blocks": 100000},
        {"type": "temporal", "channels": 8, "filter_widths": [3] * 40},
        {"type": "temporal", "channels": 8, "filter_widths": [99999]},
        {"type": "temporal", "channels": 12000, "filter_widths": [3, 3, 3]},
    ],
)
@pytest.mark.slow
def test_absurd_sizes_are_refused_before_allocating(model, tmp_path, arch):
    tensors, meta = model
    path = write(tmp_path / "huge.safetensors", tensors, json.dumps({**meta, "architecture": arch}))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    message = refused(path)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert "limit" in message or "expected" in message, message
    assert grown_mb < 200, grown_mb  # the old loader allocated 3.4 GB for width 20000
    if "parameters" in message:
        assert f"{MAX_PARAMETERS:,}" in message


def test_unreadable_paths_say_so(tmp_path):
    refused(tmp_path / "missing.safetensors", "file not found")
    folder = tmp_path / "folder.safetensors"
    folder.mkdir()
    refused(folder, "is a folder")
    empty = tmp_path / "empty.safetensors"
    empty.write_bytes(b"")
    refused(empty, "not a safetensors")
    huge_header = tmp_path / "header.safetensors"
    huge_header.write_bytes((2**62).to_bytes(8, "little") + b"{}")
    refused(huge_header, "not a safetensors")


def test_save_checkpoint_keeps_old_file_when_the_write_fails(tmp_path, monkeypatch):
    target = tmp_path / "m.safetensors"
    save_checkpoint(target, {"w": torch.ones(3)}, {"x": 1})
    before = target.read_bytes()

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("os.fsync", full_disk)
    with pytest.raises(
        ModelFileError, match=r"m\.safetensors: could not write: No space left.*old file is kept"
    ):
        save_checkpoint(target, {"w": torch.zeros(5)}, {"x": 2})
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]
    assert np.array_equal(load_checkpoint(target)[0]["w"].numpy(), np.ones(3))
