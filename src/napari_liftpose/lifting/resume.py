"""The resume file of a training run: what it holds, how it is written and read back.

``<output>.resume.safetensors`` holds the network and optimiser state, the random generators,
the normalisation, the history and the best weights so far, so that ``train(..., resume=True)``
continues a cancelled or killed run where it stopped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from napari_liftpose.lifting.checkpoint import ModelFileError, load_checkpoint, save_checkpoint
from napari_liftpose.lifting.epoch_loop import BestModel
from napari_liftpose.lifting.normalization import Normalization

__all__ = ["ResumeState", "resume_path", "read_resume", "write_resume", "jsonable"]

#: Metadata that must agree between a resume file and the run continuing it.
_MUST_MATCH = ("architecture", "keypoints", "roots", "target_sets", "camera")


def resume_path(output: str | Path) -> Path:
    """Where the resumable state of a run writing ``output`` is kept."""
    output = Path(output)
    return output.with_name(output.name + ".resume.safetensors")


def jsonable(value):
    """``value`` with numpy scalars turned into Python ones, tuples into lists (for JSON)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


@dataclass
class ResumeState:
    """Everything a resume file restores; :meth:`apply` puts it into a new run's objects."""

    path: Path
    completed: int
    norm: Normalization
    history: list[dict]
    best: BestModel
    model: dict[str, torch.Tensor]
    optimizer: dict[int, dict[str, torch.Tensor]]
    shuffle_gen: torch.Tensor
    drop_gen: torch.Tensor
    rng: dict = field(default_factory=dict)

    def apply(
        self,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        rng: np.random.Generator,
        shuffle_gen: torch.Generator,
        drop_gen: torch.Generator,
    ) -> None:
        """Load the saved weights, optimiser state and generator states into a run's objects.

        Raises
        ------
        ModelFileError
            Naming the resume file, if its tensors do not fit this run's objects.
        """
        try:
            model.load_state_dict(self.model)
            device = next(model.parameters()).device
            opt_state = optimizer.state_dict()
            opt_state["state"] = {
                i: {k: v if k == "step" else v.to(device) for k, v in s.items()}
                for i, s in self.optimizer.items()
            }
            optimizer.load_state_dict(opt_state)
            shuffle_gen.set_state(self.shuffle_gen)
            drop_gen.set_state(self.drop_gen)
            rng.bit_generator.state = self.rng
        except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as err:
            raise _unusable(self.path, err) from None


def write_resume(
    path: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    norm: Normalization,
    generators: tuple[np.random.Generator, torch.Generator, torch.Generator],
    meta: dict,
    history: list[dict],
    best: BestModel,
    completed: int,
) -> None:
    """Write the state after ``completed`` epochs (``generators``: rng, shuffle, dropout)."""
    rng, shuffle_gen, drop_gen = generators
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    tensors.update(norm.to_tensors())
    for i, state in optimizer.state_dict()["state"].items():
        for k, v in state.items():
            tensors[f"resume.opt.{i}.{k}"] = torch.as_tensor(v).detach().cpu()
    tensors["resume.shuffle_gen"] = shuffle_gen.get_state()
    tensors["resume.drop_gen"] = drop_gen.get_state()
    if best.state is not None:
        tensors.update({f"resume.best.{k}": v for k, v in best.state.items()})
    state = {
        **meta,
        "history": history,
        "epoch": completed,
        "best_epoch": best.epoch,
        "best_val_mpjpe": best.val_mpjpe if best.epoch is not None else None,
        "rng": rng.bit_generator.state,
    }
    save_checkpoint(path, tensors, jsonable(state))


def read_resume(path: Path, meta: dict) -> ResumeState:
    """Read a resume file written by a run with the same ``meta`` (architecture, keypoints...).

    Raises
    ------
    ModelFileError
        Naming the resume file, if it belongs to another run or cannot be used.
    """
    tensors, saved = load_checkpoint(path)
    for key in _MUST_MATCH:
        if saved.get(key) != jsonable(meta[key]):
            raise ModelFileError(
                path, f"cannot resume: {key} differs from this run's (delete it to start over)"
            )
    try:
        optimizer: dict[int, dict[str, torch.Tensor]] = {}
        for k, v in tensors.items():
            if k.startswith("resume.opt."):
                _, _, i, name = k.split(".", 3)
                optimizer.setdefault(int(i), {})[name] = v
        best = BestModel()
        if saved.get("best_epoch") is not None:
            best_state = {k[12:]: v for k, v in tensors.items() if k.startswith("resume.best.")}
            if not best_state:
                raise KeyError("resume.best.* (the best weights)")
            best = BestModel(int(saved["best_epoch"]), float(saved["best_val_mpjpe"]), best_state)
        return ResumeState(
            path=path,
            completed=int(saved["epoch"]),
            norm=Normalization.from_tensors(tensors),
            history=list(saved.get("history", [])),
            best=best,
            model={k[6:]: v for k, v in tensors.items() if k.startswith("model.")},
            optimizer=optimizer,
            shuffle_gen=tensors["resume.shuffle_gen"],
            drop_gen=tensors["resume.drop_gen"],
            rng=saved["rng"],
        )
    except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as err:
        raise _unusable(path, err) from None


def _unusable(path: Path, err: Exception) -> ModelFileError:
    return ModelFileError(
        path,
        f"cannot resume: incomplete or inconsistent resume file ({err}); delete it to start over",
    )
