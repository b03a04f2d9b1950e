"""scripts/install_torch.sh: the CUDA build only where an NVIDIA GPU answers, else the CPU build.

Run dry (``LIFTPOSE_TORCH_DRY_RUN=1``: the pip command is printed, not run) against a bare
virtual environment without torch, with a fake ``nvidia-smi`` on PATH where a GPU is wanted.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "install_torch.sh"
TAG = f"cp{sys.version_info[0]}{sys.version_info[1]}"

pytestmark = pytest.mark.skipif(
    shutil.which("bash") is None or not SCRIPT.is_file(), reason="needs bash and the checkout"
)


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory) -> Path:
    """A Python without torch (a venv without pip: nothing is installed by a dry run)."""
    venv = tmp_path_factory.mktemp("bare") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    return venv / "bin" / "python"


def fake_nvidia_smi(folder: Path, works: bool) -> None:
    folder.mkdir(exist_ok=True)
    script = folder / "nvidia-smi"
    if works:
        script.write_text("#!/bin/sh\necho 'GPU 0: NVIDIA Fake H100 (UUID: GPU-0)'\n")
    else:  # installed, but no driver / no device: it fails
        script.write_text("#!/bin/sh\necho 'NVIDIA-SMI has failed' >&2\nexit 9\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)


def install(python: Path, tmp_path: Path, gpu: str, wheels: Path | None, **extra) -> str:
    bin_dir = tmp_path / "bin"
    path = os.environ["PATH"]
    if gpu != "none":
        fake_nvidia_smi(bin_dir, works=gpu == "works")
        path = f"{bin_dir}:{path}"
    else:  # hide a real nvidia-smi
        path = ":".join(p for p in path.split(":") if not (Path(p) / "nvidia-smi").exists())
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "LIFTPOSE_TORCH"))},
        "PATH": path,
        "PIP_CONFIG_FILE": os.devnull,  # no find-links but ours
        "LIFTPOSE_TORCH_DRY_RUN": "1",
        **extra,
    }
    if wheels is not None:
        env["PIP_FIND_LINKS"] = str(wheels)
    done = subprocess.run(
        ["bash", str(SCRIPT), str(python)], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def wheels(tmp_path) -> Path:
    folder = tmp_path / "wheels"
    folder.mkdir()
    for name in (
        f"torch-2.13.0+cpu-{TAG}-{TAG}-manylinux_2_28_x86_64.whl",
        "torch-2.13.0+cpu-cp39-cp39-manylinux_2_28_x86_64.whl",  # another Python's
    ):
        (folder / name).write_bytes(b"")
    return folder


def test_a_working_nvidia_gpu_gets_the_cuda_build(bare_python, tmp_path):
    out = install(bare_python, tmp_path, gpu="works", wheels=None)
    assert (
        out.splitlines()[0]
        == "PyTorch: CUDA build (NVIDIA GPU: GPU 0: NVIDIA Fake H100 (UUID: GPU-0))"
    )
    assert out.splitlines()[1] == f"would run: {bare_python} -m pip install -q torch"


@pytest.mark.parametrize("gpu", ["none", "failing"])
def test_no_gpu_gets_the_cpu_build_from_pytorchs_cpu_index(bare_python, tmp_path, gpu):
    out = install(bare_python, tmp_path, gpu=gpu, wheels=None)
    assert out.splitlines()[0].startswith("PyTorch: CPU build (no NVIDIA GPU found)")
    assert out.splitlines()[1] == (
        f"would run: {bare_python} -m pip install -q torch "
        "--index-url https://download.pytorch.org/whl/cpu"
    )


def test_a_local_cpu_wheel_for_this_python_is_used_first(bare_python, tmp_path, wheels):
    out = install(bare_python, tmp_path, gpu="none", wheels=wheels)
    wheel = wheels / f"torch-2.13.0+cpu-{TAG}-{TAG}-manylinux_2_28_x86_64.whl"
    assert out.splitlines() == [
        f"PyTorch: CPU build (no NVIDIA GPU found), from {wheel}",
        f"would run: {bare_python} -m pip install -q {wheel}",
    ]


def test_the_choice_can_be_forced(bare_python, tmp_path):
    out = install(bare_python, tmp_path, gpu="works", wheels=None, LIFTPOSE_TORCH="cpu")
    assert out.startswith("PyTorch: CPU build (chosen with LIFTPOSE_TORCH=cpu), from https://")
