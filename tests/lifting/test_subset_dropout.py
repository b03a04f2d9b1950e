"""Subset dropout: samples hide a random subset of keypoints in all their frames (built-in lifters)."""

import numpy as np
import pytest

from napari_liftpose.lifting.data import hidden_subsets
from napari_liftpose.lifting.train_config import TrainConfig


def test_hidden_subsets_never_hide_the_root_and_spread_over_the_range():
    rng = np.random.default_rng(0)
    hide = hidden_subsets(4000, 31, root=5, largest=0.8, rng=rng)
    assert hide.shape == (4000, 1, 31)
    assert not hide[:, 0, 5].any()
    fractions = hide[:, 0].sum(1) / 30
    assert fractions.min() == 0.0
    assert fractions.max() == pytest.approx(0.8)
    assert 0.35 < fractions.mean() < 0.45  # uniform on [0, 0.8]
    # every non-root keypoint is hidden about equally often
    per_keypoint = np.delete(hide[:, 0].mean(0), 5)
    assert per_keypoint.max() - per_keypoint.min() < 0.1


def test_subset_dropout_reaches_the_augmentation_and_is_validated():
    assert TrainConfig(subset_dropout=0.8).augmentation(source=None).subset_dropout == 0.8
    assert TrainConfig().augmentation(source=None).subset_dropout == 0.0
    with pytest.raises(ValueError, match="subset_dropout"):
        TrainConfig(subset_dropout=1.0)


def test_drawn_windows_hide_the_same_keypoints_in_every_frame(fly, fly_camera):
    from napari_liftpose.lifting.cameras import KnownCamera
    from napari_liftpose.lifting.data import Augmentation, PoseSamples
    from napari_liftpose.lifting.skeleton import RootLayout

    samples = PoseSamples(
        [fly], RootLayout.from_names(list(fly.keypoints)), KnownCamera(fly_camera), window=9
    )
    x, conf, _ = samples.draw(
        np.arange(100, 900, 2), np.random.default_rng(1), Augmentation(subset_dropout=0.8)
    )
    hidden = conf == 0  # (samples, frames, keypoints)
    assert (hidden == hidden[:, :1]).all()  # the same subset in all frames of a window
    assert not hidden[..., 0].any()  # the root stays
    assert np.isnan(x[hidden]).all()
    assert 0.3 < hidden[:, 0, 1:].mean() < 0.5
