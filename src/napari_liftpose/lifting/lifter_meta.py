"""Check a lifter file's metadata and tensor shapes before anything is built from them.

A model file may come from a stranger. Everything :func:`~napari_liftpose.lifting.load_lifter`
uses is checked here first, so that a malformed file gives one :class:`ModelFileError` naming the
file and the problem ("expected X, got Y"), and a file whose metadata claims an absurd network is
refused before any memory is allocated for it: the network is built on torch's ``meta`` device
(shapes only, no storage), its parameter count is compared with :data:`MAX_PARAMETERS`, and its
tensor shapes with those in the safetensors header.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch

from napari_liftpose.lifting.checkpoint import ModelFileError
from napari_liftpose.lifting.models import MLP_INPUTS, build_model, default_architecture

__all__ = [
    "LifterSpec",
    "check_lifter_meta",
    "check_tensor_shapes",
    "expected_shapes",
    "check_tensor_values",
    "MAX_PARAMETERS",
    "MAX_KEYPOINTS",
    "MAX_WIDTH",
    "MAX_BLOCKS",
    "MAX_LAYERS",
    "MAX_RECEPTIVE_FIELD",
]

MAX_PARAMETERS = 100_000_000  # 400 MB of float32 weights; LiftPose3D's MLP has ~4 million
MAX_KEYPOINTS = 10_000
MAX_WIDTH = 16_384  # hidden width (MLP) or channels (temporal)
MAX_BLOCKS = 64  # residual blocks of the MLP
MAX_LAYERS = 16  # filter widths of the temporal model
MAX_RECEPTIVE_FIELD = 10_001  # frames

_NORM_KEYS = ("input_mean", "input_std", "target_mean", "target_std")


@dataclass(frozen=True)
class LifterSpec:
    """What a checked lifter file describes: its full architecture and keypoint names."""

    architecture: dict
    keypoints: list[str]

    @property
    def n_outputs(self) -> int:
        """Network outputs: 3 per keypoint but the first root."""
        return 3 * (len(self.keypoints) - 1)


def _type_name(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _int(path: Path, what: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ModelFileError(
            path, f"{what}: expected an integer, got {_type_name(value)} {value!r}"
        )
    if not low <= value <= high:
        raise ModelFileError(path, f"{what}: expected {low}..{high}, got {value}")
    return value


def _fraction(path: Path, what: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ModelFileError(path, f"{what}: expected a number, got {_type_name(value)} {value!r}")
    if not (math.isfinite(value) and 0 <= value < 1):
        raise ModelFileError(path, f"{what}: expected 0 <= value < 1, got {value}")
    return float(value)


def _names(path: Path, what: str, value: object) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ModelFileError(path, f"{what}: expected a list of names, got {value!r:.200}")
    return value


def _architecture(path: Path, value: object) -> dict:
    if not isinstance(value, dict):
        raise ModelFileError(
            path, f"architecture: expected an object, got {_type_name(value)} {value!r:.100}"
        )
    kind = value.get("type", "mlp")
    if kind not in ("mlp", "temporal"):
        raise ModelFileError(path, f"architecture type: expected 'mlp' or 'temporal', got {kind!r}")
    arch = {**default_architecture(kind), **value}
    arch["dropout"] = _fraction(path, "architecture dropout", arch["dropout"])
    if kind == "mlp":
        # a file without "inputs" predates it: its MLP reads (x, y) only
        arch["inputs"] = value.get("inputs", "xy")
        if arch["inputs"] not in MLP_INPUTS:
            raise ModelFileError(
                path,
                f"architecture inputs: expected one of {list(MLP_INPUTS)}, got "
                f"{arch['inputs']!r:.100}",
            )
        _int(path, "architecture width", arch["width"], 1, MAX_WIDTH)
        _int(path, "architecture blocks", arch["blocks"], 0, MAX_BLOCKS)
        return arch
    _int(path, "architecture channels", arch["channels"], 1, MAX_WIDTH)
    widths = arch["filter_widths"]
    if not isinstance(widths, list) or not 1 <= len(widths) <= MAX_LAYERS:
        raise ModelFileError(
            path,
            f"architecture filter_widths: expected a list of 1..{MAX_LAYERS} odd integers, "
            f"got {widths!r:.100}",
        )
    for w in widths:
        _int(path, "architecture filter_widths", w, 1, MAX_RECEPTIVE_FIELD)
        if w % 2 == 0:
            raise ModelFileError(path, f"architecture filter_widths: expected odd widths, got {w}")
    if math.prod(widths) > MAX_RECEPTIVE_FIELD:
        raise ModelFileError(
            path,
            f"architecture filter_widths: receptive field {math.prod(widths)} frames exceeds "
            f"the limit of {MAX_RECEPTIVE_FIELD}",
        )
    return arch


def _layout(path: Path, meta: dict, keypoints: list[str]) -> None:
    from napari_liftpose.lifting.skeleton import RootLayout

    roots = _names(path, "roots", meta.get("roots"))
    target_sets = meta.get("target_sets")
    if target_sets is not None:
        if not isinstance(target_sets, list):
            raise ModelFileError(
                path, f"target_sets: expected a list of name lists, got {target_sets!r:.100}"
            )
        for s in target_sets:
            _names(path, "target_sets", s)
    try:
        RootLayout.from_names(keypoints, roots, target_sets)
    except ValueError as err:
        raise ModelFileError(path, str(err)) from None


def _edges(path: Path, value: object, n_keypoints: int) -> None:
    if value is None:
        return
    ok = isinstance(value, list) and all(
        isinstance(e, list)
        and len(e) == 2
        and all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < n_keypoints for i in e)
        for e in value
    )
    if not ok:
        raise ModelFileError(
            path,
            f"edges: expected pairs of keypoint indices 0..{n_keypoints - 1}, got {value!r:.100}",
        )


def _camera(path: Path, value: object) -> None:
    from napari_liftpose.lifting.cameras import camera_from_dict

    if not isinstance(value, dict):
        raise ModelFileError(
            path, f"camera: expected an object, got {_type_name(value)} {value!r:.100}"
        )
    kind = value.get("kind")
    if kind not in ("known", "random", "pairs"):
        raise ModelFileError(
            path, f"camera kind: expected 'known', 'random' or 'pairs', got {kind!r:.100}"
        )
    if kind == "known":
        data = value.get("camera")
        if not isinstance(data, dict):
            raise ModelFileError(
                path, f"camera: expected the known camera's fields, got {data!r:.100}"
            )
        try:
            camera_from_dict(data)
        except (KeyError, TypeError, ValueError) as err:
            raise ModelFileError(path, f"camera: not a valid calibrated camera ({err})") from None


def check_lifter_meta(path: str | Path, meta: object) -> LifterSpec:
    """Check everything a lifter uses from its metadata; return its architecture and keypoints.

    Parameters
    ----------
    path : str or Path
        The model file (named in every error).
    meta : object
        The decoded JSON metadata (already known to be a napari-liftpose lifter header).

    Returns
    -------
    LifterSpec

    Raises
    ------
    ModelFileError
        ``"PATH: <field>: expected X, got Y"`` for the first field that is missing or malformed.
    """
    path = Path(path)
    if not isinstance(meta, dict):
        raise ModelFileError(path, f"metadata: expected a JSON object, got {_type_name(meta)}")
    for key in ("keypoints", "architecture", "roots"):
        if key not in meta:
            raise ModelFileError(path, f"metadata: missing {key!r}")
    keypoints = _names(path, "keypoints", meta["keypoints"])
    if not 2 <= len(keypoints) <= MAX_KEYPOINTS:
        raise ModelFileError(
            path, f"keypoints: expected 2..{MAX_KEYPOINTS} names, got {len(keypoints)}"
        )
    if len(set(keypoints)) != len(keypoints):
        raise ModelFileError(path, "keypoints: expected unique names, got duplicates")
    arch = _architecture(path, meta["architecture"])
    _layout(path, meta, keypoints)
    _edges(path, meta.get("edges"), len(keypoints))
    _camera(path, meta.get("camera", {"kind": "random"}))
    frames = ("camera", "world", "upright")
    for key, allowed in (("input_norm", ("root", "root_scale")), ("frame", frames)):
        if key in meta and meta[key] not in allowed:
            raise ModelFileError(
                path, f"{key}: expected one of {list(allowed)}, got {meta[key]!r:.100}"
            )
    if "units" in meta and not isinstance(meta["units"], str):
        raise ModelFileError(path, f"units: expected a string, got {_type_name(meta['units'])}")
    _engine_fields(path, meta, keypoints)
    return LifterSpec(arch, list(keypoints))


def _engine_fields(path: Path, meta: dict, keypoints: list[str]) -> None:
    """Check the per-joint uncertainty calibration and the library's bone statistics.

    Both are optional (older files have neither); when present they must be well formed, or
    the lift would fail after the work, or score with nonsense (a negative spread).
    """
    from napari_liftpose.lifting.suspicion import check_bone_stats
    from napari_liftpose.lifting.uncertainty import Calibration

    try:
        if meta.get("uncertainty") is not None:
            Calibration.from_dict(meta["uncertainty"], len(keypoints))
        check_bone_stats(meta.get("bone_stats"), keypoints)
    except ValueError as err:
        raise ModelFileError(path, str(err)) from None


def expected_shapes(path: str | Path, spec: LifterSpec) -> dict[str, tuple[int, ...]]:
    """Tensor names and shapes a lifter of ``spec`` holds, computed without allocating weights.

    Raises
    ------
    ModelFileError
        If the network would have more than :data:`MAX_PARAMETERS` parameters.
    """
    path = Path(path)
    n_kp = len(spec.keypoints)
    with torch.device("meta"):
        try:
            model = build_model(spec.architecture, n_kp, spec.n_outputs)
        except (TypeError, ValueError) as err:
            raise ModelFileError(path, f"architecture: {err}") from None
    n_params = sum(p.numel() for p in model.parameters())
    if n_params > MAX_PARAMETERS:
        raise ModelFileError(
            path,
            f"architecture {spec.architecture} has {n_params:,} parameters; the limit is "
            f"{MAX_PARAMETERS:,}",
        )
    shapes = {f"model.{k}": tuple(v.shape) for k, v in model.state_dict().items()}
    shapes.update(
        {
            "norm.input_mean": (n_kp, 2),
            "norm.input_std": (n_kp, 2),
            "norm.target_mean": (n_kp - 1, 3),
            "norm.target_std": (n_kp - 1, 3),
        }
    )
    return shapes


def check_tensor_shapes(
    path: str | Path, expected: dict[str, tuple[int, ...]], found: dict[str, tuple[int, ...]]
) -> None:
    """Compare the tensors a file holds (``found``, from its header) with ``expected``.

    Extra ``resume.*`` tensors are allowed; any other missing, extra or misshapen tensor is not.

    Raises
    ------
    ModelFileError
        Naming the first few differences.
    """
    path = Path(path)
    missing = [k for k in expected if k not in found]
    extra = [k for k in found if k not in expected and not k.startswith("resume.")]
    wrong = [
        f"{k} {tuple(found[k])} (expected {expected[k]})"
        for k in expected
        if k in found and tuple(found[k]) != expected[k]
    ]
    problems = []
    if missing:
        problems.append(f"missing tensors {missing[:5]}" + (" ..." if len(missing) > 5 else ""))
    if extra:
        problems.append(f"unexpected tensors {extra[:5]}" + (" ..." if len(extra) > 5 else ""))
    if wrong:
        problems.append(
            "wrong shapes: " + ", ".join(wrong[:3]) + (" ..." if len(wrong) > 3 else "")
        )
    if problems:
        raise ModelFileError(
            path,
            f"tensors do not match the architecture in its metadata: {'; '.join(problems)}",
        )


def check_tensor_values(path: str | Path, tensors: dict[str, torch.Tensor]) -> None:
    """Refuse non-finite weights and non-positive normalisation scales.

    Raises
    ------
    ModelFileError
        Naming the first offending tensor.
    """
    path = Path(path)
    for name, value in tensors.items():
        if not (name.startswith("model.") or name.startswith("norm.")):
            continue
        if not (value.dtype.is_floating_point or name.endswith("num_batches_tracked")):
            raise ModelFileError(path, f"tensor {name}: expected floating point, got {value.dtype}")
        if value.dtype.is_floating_point and not bool(torch.isfinite(value).all()):
            raise ModelFileError(path, f"tensor {name}: expected finite values, got NaN or inf")
    for key in ("norm.input_std", "norm.target_std"):
        if key in tensors and not bool((tensors[key] > 0).all()):
            raise ModelFileError(path, f"tensor {key}: expected positive scales, got zero or less")
