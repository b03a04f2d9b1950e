"""Fixtures for widget tests: the demo's generated files and a quickly trained lifter."""

from __future__ import annotations

import pytest

from napari_liftpose.demo import build_demo_files
from napari_liftpose.io import read_calibration, read_poses
from napari_liftpose.lifting import KnownCamera, TrainConfig, train


@pytest.fixture(autouse=True)
def _private_plugin_state(tmp_path_factory, monkeypatch):
    """The one-time "remember the reader" offer records itself here, not in the user's config."""
    state = tmp_path_factory.mktemp("napari-state") / "napari-liftpose-state.json"
    monkeypatch.setenv("NAPARI_LIFTPOSE_STATE", str(state))


@pytest.fixture(scope="session")
def demo(tmp_path_factory):
    """Demo files (library, camera, video, 2D tracks, truth) and a lifter trained on them."""
    files = build_demo_files(tmp_path_factory.mktemp("demo"), n_frames=120, library_frames=2000)
    camera = read_calibration(files.calibration)["demo"]
    train(
        read_poses(files.library),
        KnownCamera(camera),
        files.model,
        TrainConfig(epochs=4, seed=0),
        roots=["Thorax"],
    )
    return files


@pytest.fixture
def notifications():
    """Messages of the napari notifications shown during the test."""
    from napari.utils.notifications import notification_manager

    seen: list[str] = []

    def record(notification):
        seen.append(notification.message)

    notification_manager.notification_ready.connect(record)
    yield seen
    notification_manager.notification_ready.disconnect(record)
