"""movement ``.nc`` through napari: the plugin's reader opens it, the npe2 writer saves 2D tracks
to it, and Export 3D writes lifted poses that movement's loader opens."""

from __future__ import annotations

import numpy as np
import pytest

from napari_liftpose.io import read_poses, write_poses
from napari_liftpose.napari.widgets import LiftPoseWidget
from tests.io.movement_versions import in_installed_layout

TOP_SLP = "sleap_anipose_minimal_session/top/minimal_top_proofread.slp"


def _points(viewer):
    return next(layer for layer in viewer.layers if layer._type_string == "points")


def test_reader_opens_nc_and_the_writer_saves_it(make_napari_viewer, data_dir, tmp_path):
    tracks = read_poses(data_dir / TOP_SLP)
    source = write_poses(tracks.copy(fps=30.0), tmp_path / "top.nc")
    viewer = make_napari_viewer()
    viewer.open(source, plugin="napari-liftpose")
    layer = _points(viewer)
    assert len(layer.data) == tracks.finite_mask().sum()
    assert list(layer.features["keypoint"].cat.categories) == tracks.keypoints
    layer.data[0, 1:] += 5.0  # a user drags a point: saving writes what is shown
    layer.data = layer.data
    written = viewer.layers.save(
        str(tmp_path / "saved.nc"), selected=True, plugin="napari-liftpose"
    )
    assert written == [str(tmp_path / "saved.nc")]
    saved = read_poses(tmp_path / "saved.nc")
    assert saved.fps == 30.0 and saved.keypoints == tracks.keypoints
    t, y, x = layer.data[0]
    kp = tracks.keypoints.index(str(layer.features["keypoint"].iloc[0]))
    np.testing.assert_allclose(saved.coords[int(t), 0, kp], [x, y])
    assert saved.metadata["edited"][int(t), 0, kp]


@pytest.mark.slow  # the demo lifter is trained for this test
def test_export_3d_to_nc_opens_in_movement(make_napari_viewer, demo, qtbot, tmp_path):
    xr = pytest.importorskip("xarray")
    datasets = pytest.importorskip("movement.validators.datasets")
    tracks = read_poses(demo.tracks).copy(fps=50.0, source=None, video=None)
    source = write_poses(tracks, tmp_path / "walk.npz")  # 2D tracks that know their fps
    viewer = make_napari_viewer()
    viewer.open(source, plugin="napari-liftpose")
    widget = LiftPoseWidget(viewer)
    assert widget.load_model(demo.model)
    widget.lift_layer.value = source.name
    shown = []
    assert widget.lift_selected(then=shown.append) is not None
    qtbot.waitUntil(lambda: len(shown) == 1, timeout=30_000)
    assert "*.nc" in widget.export_path.filter
    path = widget.export_3d(tmp_path / "walk3d.nc")
    lifted = widget.session.lifted()
    ds = xr.open_dataset(path)
    datasets.ValidPosesInputs.validate(in_installed_layout(ds))
    np.testing.assert_array_equal(ds.position.values, lifted.coords.transpose(0, 3, 2, 1))
    np.testing.assert_array_equal(ds.uncertainty.values, lifted.uncertainty.transpose(0, 2, 1))
    assert list(ds.space.values) == ["x", "y", "z"]
    assert ds.attrs["fps"] == 50.0 and ds.attrs["time_unit"] == "seconds"  # carried by the lift
    assert read_poses(widget.export_3d(tmp_path / "walk3d.npz")).fps == 50.0
