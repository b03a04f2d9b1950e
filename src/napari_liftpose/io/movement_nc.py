"""movement's poses dataset as a netCDF file (``.nc``), 2D tracks and lifted 3D alike.

The layout is movement's (0.17) ``poses`` dataset, as ``ds.to_netcdf(path)`` writes it:

- ``position`` ``(time, space, keypoint, individual)``, ``space`` = ``x, y`` or ``x, y, z``;
- ``confidence`` ``(time, keypoint, individual)``;
- coordinates ``time`` (seconds when ``fps`` is known, else frame numbers), ``space``,
  ``keypoint``, ``individual``;
- attributes ``ds_type = "poses"``, ``fps`` (when known), ``time_unit`` (``"seconds"`` or
  ``"frames"``), ``source_software``, ``source_file``.

napari-liftpose adds, where it knows them: ``uncertainty`` ``(time, keypoint, individual)`` (a
radius holding the true point 80% of the time), ``suspicion`` ``(time, individual)`` in
[0, 1], ``edited`` ``(time, keypoint, individual)`` (points a user placed or moved),
``edges`` ``(edge, end)`` (the skeleton, keypoint indices) and attributes ``units``, ``frame``
(axes of lifted 3D), ``video`` and ``lifter``. movement ignores what it does not know.
movement up to 0.16 named the dimensions ``keypoints`` and ``individuals``: files with those
names are read too (and ``ds.rename(keypoint="keypoints", individual="individuals")`` makes a
file written here open in those versions).

Files are written with xarray's ``h5netcdf`` engine into memory (any xarray from 2023.1), then
atomically to disk.
They are read with h5py alone, through the same checks as every HDF5 reader here (no data kept
in other files, no dataset declaring far more memory than it stores, numbers where numbers
belong): a hostile ``.nc`` cannot run code, read other files or exhaust memory. Numeric
variables are CF-decoded as ``xarray.open_dataset`` does: ``_FillValue``/``missing_value`` read
as NaN, ``scale_factor``/``add_offset`` unpack packed integers (``_Unsigned`` is refused).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

import h5py
import numpy as np

from napari_liftpose.io._hdf5 import is_hdf5, open_hdf5, read_dataset
from napari_liftpose.io.atomic import atomic_write_bytes
from napari_liftpose.io.errors import PoseFileError
from napari_liftpose.poses import Poses, as_fps, as_names, as_numbers, as_text

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["is_movement_nc_file", "read_movement_nc", "write_movement_nc"]

_NETCDF3_SIGNATURE = b"CDF"
_POSITION_DIMS = ("time", "space", "keypoint", "individual")
#: Other names of the dimensions: movement <= 0.16's plurals.
_ALIASES = {"keypoints": "keypoint", "individuals": "individual", "frame": "time"}
#: movement's ``source_software`` for the formats read here.
_SOFTWARE = {
    "sleap": "SLEAP",
    "sleap_analysis": "SLEAP",
    "dlc": "DeepLabCut",
    "anipose_csv": "Anipose",
    "sleap_anipose": "Anipose",
}
_TEXT_ATTRS = ("units", "frame", "video", "lifter")


def is_movement_nc_file(path: str | Path) -> bool:
    """True for a ``.nc`` file that is netCDF (netCDF4/HDF5, or netCDF3, refused on reading)."""
    path = Path(path)
    if path.suffix.lower() != ".nc":
        return False
    if is_hdf5(path):
        return True
    try:
        with open(path, "rb") as f:
            return f.read(3) == _NETCDF3_SIGNATURE
    except OSError:
        return False


def read_movement_nc(path: str | Path) -> Poses:
    """Read a movement poses dataset saved as netCDF.

    Parameters
    ----------
    path : str or Path
        A ``.nc`` file written by movement (``ds.to_netcdf``) or by :func:`write_movement_nc`.

    Returns
    -------
    Poses
        ``coords`` ``(frames, individuals, keypoints, 2|3)``; ``units`` from the ``units``
        attribute, else ``"px"`` for 2D and ``"mm"`` for 3D (movement records no units).

    Raises
    ------
    PoseFileError
        For a netCDF3 file, a dataset that is not movement's ``poses`` (``ds_type`` of bounding
        boxes, no ``position``), a variable with unexpected dimensions, or malformed values.
    """
    path = Path(path)
    if not is_hdf5(path):
        raise PoseFileError(
            path,
            "not a netCDF4 (HDF5) file: netCDF3 files are not read; save the dataset with "
            "ds.to_netcdf(path, engine='h5netcdf') (movement's default where netCDF4 or "
            "h5netcdf is installed)",
        )
    with open_hdf5(path) as f:
        try:
            fields = _read_fields(f)
        except (ValueError, TypeError, OSError, KeyError, RuntimeError, AttributeError) as err:
            raise PoseFileError(path, str(err)) from None
    try:
        return Poses(**fields, source=str(path), source_format="movement_nc")
    except ValueError as err:
        raise PoseFileError(path, str(err)) from None


def _read_fields(f: h5py.File) -> dict:
    """The :class:`Poses` fields held by an open movement netCDF file."""
    ds_type = _attr_text(f, "ds_type")
    if ds_type is not None and ds_type != "poses":
        raise ValueError(f"ds_type: expected a movement 'poses' dataset, got {ds_type!r}")
    if "position" not in f:
        raise ValueError("no 'position' variable: not a movement poses dataset")
    position = _numbers(f, "position")
    dims = _dims(f, "position", _POSITION_DIMS, position.ndim)
    order = [dims.index(d) for d in ("time", "individual", "keypoint", "space")]
    coords = position.transpose(order)
    n_space = coords.shape[-1]
    if n_space not in (2, 3):
        raise ValueError(f"space: expected 2 (x, y) or 3 (x, y, z) entries, got {n_space}")
    coords = coords[..., _space_order(f, n_space)]
    _, n_individuals, n_keypoints, _ = coords.shape
    fields: dict = {
        "coords": coords,
        "keypoints": _names(f, "keypoint", n_keypoints),
        "individuals": _names(f, "individual", n_individuals),
        "fps": _fps(f),
    }
    per_point = ("time", "individual", "keypoint")
    for name in ("confidence", "uncertainty"):
        if name in f:
            fields[name] = _variable(f, name, per_point, coords.shape[:3])
    if "suspicion" in f:
        fields["suspicion"] = _variable(f, "suspicion", ("time", "individual"), coords.shape[:2])
    if "edited" in f:
        edited = _variable(f, "edited", per_point, coords.shape[:3])
        fields["metadata"] = {"edited": np.nan_to_num(edited) != 0}
    if "edges" in f:
        if _CF_ATTRS.intersection(f["edges"].attrs):
            raise ValueError(
                "edges: expected plain integer indices, got CF fill or packing attributes"
            )
        edges = read_dataset(f, "edges")
        if edges.dtype.kind not in "iu" or edges.ndim != 2 or edges.shape[1] != 2:
            raise ValueError(
                f"edges: expected (n, 2) integer keypoint indices, got {edges.dtype} {edges.shape}"
            )
        fields["edges"] = edges.astype(np.int64)
    texts = {name: _attr_text(f, name) for name in _TEXT_ATTRS}
    fields["units"] = texts["units"] or ("px" if n_space == 2 else "mm")
    fields["frame"] = texts["frame"]
    fields["video"] = texts["video"]
    if texts["lifter"]:
        fields.setdefault("metadata", {})["lifter"] = texts["lifter"]
    return fields


#: CF attributes that change the values a netCDF variable stands for.
_CF_ATTRS = frozenset({"_FillValue", "missing_value", "scale_factor", "add_offset", "_Unsigned"})


def _numbers(f: h5py.File, name: str) -> np.ndarray:
    """Variable ``name`` as float64, CF-decoded as ``xarray.open_dataset`` does.

    Values equal to ``_FillValue`` or any ``missing_value`` become NaN (compared in the stored
    type, before unpacking); then ``scale_factor`` and ``add_offset`` unpack them
    (``stored * scale_factor + add_offset``).

    Raises
    ------
    ValueError
        ``"<name>: ..."`` for an attribute that is not one real number (``_FillValue``,
        ``scale_factor``, ``add_offset``) or real numbers (``missing_value``), and for
        ``_Unsigned`` (not decoded here).
    """
    values = read_dataset(f, name)
    attrs = f[name].attrs
    as_numbers(values, name)  # type check first: strings, booleans, records are refused
    if "_Unsigned" in attrs:
        raise ValueError(f"{name}: _Unsigned integers are not read; store the values unpacked")
    stored = np.asarray(values)
    decoded = stored.astype(np.float64)
    fills = []
    for attr in ("_FillValue", "missing_value"):
        if attr in attrs:
            given = _cf_numbers(attrs[attr], name, attr, one=attr == "_FillValue")
            fills += [v for v in given if not np.isnan(v)]  # a NaN fill: NaNs are already NaN
    if fills:
        # the fill is compared in the stored type, as netCDF and xarray do
        fill_stored = np.asarray(fills).astype(stored.dtype)
        decoded[np.isin(stored, fill_stored)] = np.nan
    if "scale_factor" in attrs:
        decoded = decoded * _cf_numbers(attrs["scale_factor"], name, "scale_factor", one=True)[0]
    if "add_offset" in attrs:
        decoded = decoded + _cf_numbers(attrs["add_offset"], name, "add_offset", one=True)[0]
    return decoded


def _cf_numbers(value: object, name: str, attr: str, *, one: bool) -> np.ndarray:
    """A CF attribute's real number(s) as a 1-D float64 array (one value when ``one``)."""
    array = np.asarray(value)
    if array.dtype.kind not in "iuf" or array.size == 0 or (one and array.size != 1):
        what = "one real number" if one else "real numbers"
        raise ValueError(f"{name}: {attr}: expected {what}, got {array.dtype} {array.shape}")
    numbers = array.astype(np.float64).ravel()
    if attr in ("scale_factor", "add_offset") and not np.all(np.isfinite(numbers)):
        raise ValueError(f"{name}: {attr}: expected a finite number, got {numbers[0]}")
    return numbers


def _dims(f: h5py.File, name: str, expected: tuple[str, ...], ndim: int) -> list[str]:
    """Dimension names of variable ``name`` (netCDF dimension scales), checked against ``expected``.

    A variable with no dimension scales attached (written by hand), or with scales that lead
    nowhere, is taken in ``expected`` order.
    """
    if ndim != len(expected):
        raise ValueError(f"{name}: expected dimensions {expected}, got {ndim} dimensions")
    dims = []
    for axis, proxy in enumerate(f[name].dims):
        scale = (proxy[0].name or "") if len(proxy) else (proxy.label or "")  # None: dangling
        scale = scale.rsplit("/", 1)[-1]
        dims.append(_ALIASES.get(scale, scale) or expected[axis])
    if sorted(dims) != sorted(expected):
        raise ValueError(f"{name}: expected dimensions {expected}, got {tuple(dims)}")
    return dims


def _variable(f: h5py.File, name: str, dims: tuple[str, ...], shape: tuple) -> np.ndarray:
    """A per-point variable, transposed to ``dims`` order and checked against ``shape``."""
    canonical = tuple(d for d in ("time", "keypoint", "individual") if d in dims)
    values = _numbers(f, name)
    found = _dims(f, name, canonical, values.ndim)
    values = values.transpose([found.index(d) for d in dims])
    if values.shape != shape:
        raise ValueError(f"{name}: expected shape {shape} (as position), got {values.shape}")
    return values


def _space_order(f: h5py.File, n_space: int) -> list[int]:
    """Indices that put the ``space`` entries in x, y(, z) order."""
    if "space" not in f:
        return list(range(n_space))
    names = [n.lower() for n in as_names(read_dataset(f, "space"), "space")]
    wanted = ["x", "y", "z"][:n_space]
    if sorted(names) != sorted(wanted):
        raise ValueError(f"space: expected coordinates {wanted}, got {names}")
    return [names.index(axis) for axis in wanted]


def _names(f: h5py.File, dim: str, n: int) -> list[str]:
    """Names from a coordinate variable (movement's defaults where there is none)."""
    for name in (dim, f"{dim}s"):  # movement >= 0.17's name, then <= 0.16's
        if name in f and f[name].dtype.kind != "f":  # a dimension without coordinates is floats
            names = as_names(read_dataset(f, name), name)
            if len(names) != n:
                raise ValueError(f"{name}: expected {n} names, got {len(names)}")
            return names
    prefix = "keypoint" if dim == "keypoint" else "id"
    return [f"{prefix}_{i}" for i in range(n)]


def _fps(f: h5py.File) -> float | None:
    """``fps`` attribute; else, for ``time`` in seconds, one over its (regular) step."""
    if "fps" in f.attrs:
        return as_fps(f.attrs["fps"])
    if _attr_text(f, "time_unit") != "seconds" or "time" not in f:
        return None
    time = _numbers(f, "time")
    steps = np.diff(time)
    if time.ndim != 1 or steps.size == 0 or not np.all(steps > 0):
        return None
    if np.ptp(steps) > 1e-6 * steps.mean():
        return None  # irregular sampling: no single frame rate
    return float(1.0 / steps.mean())


def _attr_text(f: h5py.File, name: str) -> str | None:
    if name not in f.attrs:
        return None
    return as_text(f.attrs[name], f"{name} attribute")


def _dataset(poses: Poses):
    """The movement poses dataset (xarray) for ``poses``, with napari-liftpose's extras."""
    import xarray as xr

    from napari_liftpose import __version__

    per_point = ("time", "keypoint", "individual")
    time = (
        np.arange(poses.n_frames, dtype=np.float64) / poses.fps
        if poses.fps
        else np.arange(poses.n_frames, dtype=np.int64)
    )
    variables = {
        "position": (_POSITION_DIMS, poses.coords.transpose(0, 3, 2, 1)),
        "confidence": (per_point, poses.confidence.transpose(0, 2, 1)),
    }
    if poses.uncertainty is not None:
        variables["uncertainty"] = (per_point, poses.uncertainty.transpose(0, 2, 1))
    if poses.suspicion is not None:
        variables["suspicion"] = (("time", "individual"), poses.suspicion)
    edited = poses.metadata.get("edited")
    if edited is not None and np.shape(edited) == poses.coords.shape[:3]:
        variables["edited"] = (per_point, np.asarray(edited, dtype=bool).transpose(0, 2, 1))
    if len(poses.edges):
        variables["edges"] = (("edge", "end"), poses.edges.astype(np.int32))
    software = _SOFTWARE.get(poses.source_format or "", "napari-liftpose")
    attrs: dict = {"ds_type": "poses", "source_software": software}
    if poses.fps:
        attrs["fps"] = poses.fps
    attrs["time_unit"] = "seconds" if poses.fps else "frames"
    if poses.source:
        attrs["source_file"] = str(poses.source)
    attrs["units"] = poses.units
    for name, value in (
        ("frame", poses.frame),
        ("video", poses.video),
        ("lifter", poses.metadata.get("lifter")),
    ):
        if value:
            attrs[name] = str(value)
    attrs["napari_liftpose_version"] = __version__
    return xr.Dataset(
        {name: xr.DataArray(values, dims=dims) for name, (dims, values) in variables.items()},
        coords={
            "time": time,
            "space": ["x", "y", "z"][: poses.n_space],
            "keypoint": list(poses.keypoints),
            "individual": list(poses.individuals),
        },
        attrs=attrs,
    )


def _netcdf_image(ds: xr.Dataset, encoding: dict) -> bytes:
    """The bytes of ``ds`` as a netCDF4 file, built in memory with the ``h5netcdf`` engine.

    xarray before 2025.7 writes bytes with the ``scipy`` engine only (netCDF3, which movement
    cannot read back here): there, xarray's own ``h5netcdf`` store is filled into a
    :class:`io.BytesIO`, as newer xarray does. HDF5 never writes to the disk itself (see
    :mod:`napari_liftpose.io.atomic`).
    """
    try:
        return bytes(ds.to_netcdf(engine="h5netcdf", encoding=encoding))
    except ValueError as err:
        if "bytes" not in str(err):
            raise
    import h5netcdf
    from xarray.backends import H5NetCDFStore

    buffer = io.BytesIO()
    with h5netcdf.File(buffer, "w") as f:
        ds.dump_to_store(H5NetCDFStore(f, mode="w"), encoding=encoding)
    return buffer.getvalue()


def write_movement_nc(poses: Poses, path: str | Path) -> Path:
    """Write ``poses`` as movement's netCDF poses dataset, atomically and verified.

    Parameters
    ----------
    poses : Poses
        2D tracks or lifted 3D.
    path : str or Path
        The ``.nc`` file to write.

    Returns
    -------
    Path
        The path written. The file opens with ``xarray.open_dataset`` and passes movement's
        ``ValidPosesInputs.validate`` (what movement's napari widget does with a ``.nc``).
    """
    path = Path(path)
    ds = _dataset(poses)
    numeric = ("position", "confidence", "uncertainty", "suspicion")
    encoding = {name: {"zlib": True, "complevel": 4} for name in numeric if name in ds.data_vars}
    image = _netcdf_image(ds, encoding)

    def verify(tmp: Path) -> None:
        with open_hdf5(tmp) as f:
            back = _read_fields(f)
        if back["coords"].shape != poses.coords.shape:
            raise ValueError(
                f"position: expected shape {poses.coords.shape}, got {back['coords'].shape}"
            )

    atomic_write_bytes(path, image, verify=verify)
    return path
