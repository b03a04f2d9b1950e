"""LiftPose3D 0.22 runs for the suite, through ``shared/bench/liftpose_baseline.py``, cached.

A run is keyed by a hash of its arrays and settings (epochs, checkpoint selection, noise,
random projections, threads, the baseline script's text); results are kept in
``benchmarks/.lp3d_cache.json`` (gitignored), so re-running the suite re-trains only ours.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
BASELINE = REPO.parent / "shared" / "bench" / "liftpose_baseline.py"
CACHE = Path(__file__).resolve().parent / ".lp3d_cache.json"


def run_key(arrays: dict, settings: dict) -> str:
    """SHA-256 of the arrays (shape, dtype, bytes), the settings and the baseline script."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name], dtype=np.float64)
        h.update(name.encode())
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    h.update(json.dumps(settings, sort_keys=True).encode())
    if BASELINE.is_file():
        h.update(BASELINE.read_bytes())
    return h.hexdigest()


def _load_cache() -> dict:
    try:
        return json.loads(CACHE.read_text())
    except (OSError, ValueError):
        return {}


def _store(key: str, result: dict) -> None:
    cache = _load_cache()
    cache[key] = result
    tmp = CACHE.with_suffix(".tmp")
    tmp.write_text(json.dumps(cache, indent=1, sort_keys=True))
    tmp.replace(CACHE)


def run_liftpose(
    python: str | None,
    inputs: dict,
    root: int,
    epochs: int,
    select: str,
    noise_input: float,
    threads: int,
    use_cache: bool = True,
) -> tuple[dict | None, str | None]:
    """Train and test LiftPose3D once (or read the cached result).

    Parameters
    ----------
    python : str
        Interpreter of the LiftPose3D virtual environment.
    inputs : dict
        ``tr2, tr3, te2, te3`` arrays and ``eangles`` (see ``liftpose_suite.lp3d_inputs``).
    root : int
        Root keypoint.
    epochs : int
        Training epochs.
    select : {"last", "best"}
        Final-epoch weights, or the epoch with the lowest test loss (LiftPose3D's habit).
    noise_input : float
        ``--noise_px``: Gaussian 2D noise augmentation in LiftPose3D's input units (0: none).
    threads : int
        ``torch.set_num_threads`` in its process.
    use_cache : bool
        Read and write :data:`CACHE`.

    Returns
    -------
    tuple
        (result dict with ``mpjpe``, ``pred`` (test 3D predictions), ``train_s``, ``epochs``,
        ``ckpt_epoch``; None on failure) and a note (None on success).
    """
    arrays = {k: inputs[k] for k in ("tr2", "tr3", "te2", "te3")}
    settings = {
        "root": int(root),
        "epochs": int(epochs),
        "select": select,
        "noise_px": round(float(noise_input), 9),
        "eangles": inputs.get("eangles"),
        "threads": int(threads),
    }
    key = run_key(arrays, settings)
    if use_cache:
        hit = _load_cache().get(key)
        if hit is not None:
            return {**hit, "pred": np.asarray(hit["pred"], dtype=np.float64), "cached": True}, None
    if not python or not Path(python).exists():
        return None, f"LiftPose3D skipped: no interpreter at {python!r} (shared/bench/README.md)"
    with tempfile.TemporaryDirectory(prefix="lp3d_suite_") as tmp:
        files = {}
        for name, a in arrays.items():
            files[name] = Path(tmp) / f"{name}.npy"
            np.save(files[name], np.asarray(a, dtype=np.float64))
        out_json = Path(tmp) / "lp.json"
        out_dir = Path(tmp) / "lp"
        cmd = [
            python, BASELINE,
            "--train2d", files["tr2"], "--train3d", files["tr3"],
            "--test2d", files["te2"], "--test3d", files["te3"],
            "--root", root, "--epochs", epochs, "--select", select,
            "--threads", threads, "--json", out_json, "--out_dir", out_dir,
        ]  # fmt: skip
        if noise_input > 0:
            cmd += ["--noise_px", f"{noise_input:.9g}"]
        if inputs.get("eangles"):
            cmd += [f"--eangles={inputs['eangles']}"]  # "-180,..." is not an option
        proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
        if proc.returncode != 0:
            tail = proc.stderr.strip().splitlines()[-1:] or ["?"]
            return None, f"LiftPose3D failed: {tail[0]}"
        res = json.loads(out_json.read_text())
        pred = np.load(out_dir / "test_pred_3d.npy")
    result = {
        "mpjpe": res["test_mpjpe"],
        "train_s": res["train_wall_s"],
        "epochs": res["epochs"],
        "ckpt_epoch": res["ckpt_epoch"],
        "settings": settings,
        "pred": np.where(np.isfinite(pred), pred, np.nan).tolist(),
    }
    if use_cache:
        _store(key, result)
    return {**result, "pred": pred, "cached": False}, None
