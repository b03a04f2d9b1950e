"""Body models of animals (TOML files) and a pose sampler, for labs with no 3D library.

``load_body_model("mouse")`` reads a shipped model (``mouse``, ``fly``) or a lab's own
file; :func:`sample_poses` draws a 3D pose library from it. See docs/body-models.md.
"""

from napari_liftpose.bodies.model import (
    BodyModel,
    BodyModelError,
    load_body_model,
    shipped_models,
)
from napari_liftpose.bodies.sampler import SampledMotion, sample_motion, sample_poses

__all__ = [
    "BodyModel",
    "BodyModelError",
    "SampledMotion",
    "load_body_model",
    "sample_motion",
    "sample_poses",
    "shipped_models",
]
