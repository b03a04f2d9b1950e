"""The lifting engine: 2D -> 3D pose networks, their training, files, inference and metrics.

Pure numpy/torch: importing it never loads napari or Qt.
"""

from napari_liftpose.lifting.cameras import (
    KnownCamera,
    RandomCameras,
    camera_from_angles,
    look_at_rotation,
)
from napari_liftpose.lifting.checkpoint import ModelFileError, load_checkpoint, save_checkpoint
from napari_liftpose.lifting.data import Augmentation, PairedTracks, normalize_2d
from napari_liftpose.lifting.inference import Lifter, load_lifter
from napari_liftpose.lifting.metrics import (
    bone_length_std,
    evaluate,
    mpjpe,
    mpjve,
    n_mpjpe,
    pa_mpjpe,
    per_joint_mpjpe,
    root_relative,
)
from napari_liftpose.lifting.models import build_model, default_architecture
from napari_liftpose.lifting.skeleton import RootLayout, check_keypoints
from napari_liftpose.lifting.training import (
    Progress,
    TrainConfig,
    TrainResult,
    resolve_device,
    train,
)

__all__ = [
    "Augmentation",
    "KnownCamera",
    "Lifter",
    "ModelFileError",
    "PairedTracks",
    "Progress",
    "RandomCameras",
    "RootLayout",
    "TrainConfig",
    "TrainResult",
    "bone_length_std",
    "build_model",
    "camera_from_angles",
    "check_keypoints",
    "default_architecture",
    "evaluate",
    "load_checkpoint",
    "load_lifter",
    "look_at_rotation",
    "mpjpe",
    "mpjve",
    "n_mpjpe",
    "normalize_2d",
    "pa_mpjpe",
    "per_joint_mpjpe",
    "resolve_device",
    "root_relative",
    "save_checkpoint",
    "train",
]
