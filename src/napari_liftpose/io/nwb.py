"""NWB files (``.nwb``) with the ndx-pose extension: export poses, and read ndx-pose files back.

Layout written by :func:`write_nwb` (ndx-pose 0.2+; details and examples in ``docs/nwb.md``):

- processing module ``behavior``: a ``Skeletons`` container holding one ``Skeleton`` named
  ``skeleton`` (nodes = keypoint names, edges = pairs of node indices), and one
  ``PoseEstimation`` per individual, named after the individual. Each holds one
  ``PoseEstimationSeries`` per keypoint: ``data`` ``(frames, 2|3)`` (x, y[, z]; NaN where
  missing), ``confidence`` ``(frames,)``, ``unit`` (the poses' units, ``"pixels"`` for
  ``"px"``), ``reference_frame`` (a sentence naming the axes and the origin), ``starting_time``
  0 and ``rate`` = fps. Where the fps is unknown the rate is 1 Hz (times are frame numbers) and
  the series' ``comments`` say so.
- for lifted 3D with uncertainty / suspicion, TimeSeries ``<individual>_uncertainty``
  ``(frames, keypoints)`` (a radius, in the poses' units, holding the true point 80% of the
  time; keypoints in skeleton-node order) and ``<individual>_suspicion`` ``(frames,)`` in
  [0, 1], in the same module.
- ``identifier`` a random UUID; ``session_start_time`` the one of the NWB file the poses were
  read from, else the time of writing (UTC); ``session_description`` says what the poses are.

:func:`read_nwb` reads these files and typical ndx-pose files (sleap-io's, movement's, DLC2NWB's):
every ``PoseEstimation`` of one processing module becomes an individual; samples are placed on a
common frame axis by their times. No pickle is involved (h5py never unpickles); files whose
datasets or links lead to other files are refused before pynwb opens them.
"""

from __future__ import annotations

import datetime
import re
import uuid
import warnings
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from napari_liftpose.io._hdf5 import is_hdf5, open_hdf5, read_dataset
from napari_liftpose.io.atomic import atomic_write_bytes
from napari_liftpose.io.errors import PoseFileError
from napari_liftpose.poses import Poses

__all__ = ["is_nwb_file", "read_nwb", "write_nwb", "REFERENCE_FRAMES"]

MODULE = "behavior"
SKELETON = "skeleton"
SOURCE_SOFTWARE = "napari-liftpose"
#: Every series written here starts its ``comments`` with this.
WRITTEN_HERE = "written by napari-liftpose"
FPS_UNKNOWN = "frame rate unknown: the 1 Hz rate is a placeholder, times are frame numbers"
_ORIGIN_3D = "(0, 0, 0) is the lifter's root keypoint of each pose (root-relative)"
#: ``reference_frame`` of the series, by ``Poses.frame`` (and for 2D image tracks).
REFERENCE_FRAMES = {
    "world": f"world axes: x, y, z of the 3D library / calibration (z up where known); {_ORIGIN_3D}",
    "camera": f"camera axes: x right, y down, z forward from the filming camera; {_ORIGIN_3D}",
    "upright": (
        "upright camera axes: x right, y away from the filming camera along the ground, z up; "
        f"{_ORIGIN_3D}"
    ),
    "image": "image pixels: x right, y down; (0, 0) is the top-left corner of the video frame",
    "unknown": "axes and origin as in the source file",
}
_SOFTWARE = {
    "sleap": "SLEAP",
    "sleap_analysis": "SLEAP",
    "dlc": "DeepLabCut",
    "anipose_csv": "anipose",
    "sleap_anipose": "sleap-anipose",
}
_ORDER = re.compile(r"\(individual (\d+) of (\d+)\)")


def is_nwb_file(path: str | Path) -> bool:
    """True for a ``.nwb`` HDF5 file with an ``nwb_version`` attribute (cheap: no pynwb)."""
    path = Path(path)
    if path.suffix.lower() != ".nwb" or not is_hdf5(path):
        return False
    try:
        with h5py.File(path, "r") as f:
            return "nwb_version" in f.attrs
    except (OSError, ValueError):
        return False


# -- writing -------------------------------------------------------------------------------------


def write_nwb(poses: Poses, path: str | Path) -> Path:
    """Write ``poses`` (2D or 3D) to an NWB file with ndx-pose; returns the path written.

    The layout is described in the module docstring. The file is built in memory and written
    atomically (:func:`~napari_liftpose.io.atomic.atomic_write_bytes`), then re-opened and
    checked before it replaces ``path``.

    Parameters
    ----------
    poses : Poses
        The poses; ``frames`` become samples at ``fps`` (1 Hz where unknown).
    path : str or Path
        The ``.nwb`` file to write.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    PoseFileError
        If a keypoint or individual name cannot be an NWB name (two names equal once ``/`` is
        replaced), or the file cannot be written (the old file is kept).
    """
    path = Path(path)
    names = _object_names(poses, path)
    nwbfile = _nwbfile(poses, names)
    image = _image(nwbfile)
    expected = {(ind, kp): (poses.n_frames, poses.n_space) for ind in names[0] for kp in names[1]}
    return atomic_write_bytes(path, image, verify=lambda tmp: _verify(tmp, expected))


def _clean(name: str) -> str:
    return name.replace("/", "_")


def _object_names(poses: Poses, path: Path) -> tuple[list[str], list[str]]:
    """NWB names of the individuals and keypoints ('/' is not allowed in them)."""
    individuals = [_clean(name) for name in poses.individuals]
    keypoints = [_clean(name) for name in poses.keypoints]
    taken = ["Skeletons", *individuals]
    taken += [f"{name}_{what}" for name in individuals for what in ("uncertainty", "suspicion")]
    for what, values in (("individual", taken), ("keypoint", keypoints)):
        seen: set[str] = set()
        for value in values:
            if value in seen:
                raise PoseFileError(
                    path,
                    f"cannot write NWB: {what} name {value!r} is used twice (once '/' "
                    "is replaced by '_', or by an NWB object of that name)",
                )
            seen.add(value)
    return individuals, keypoints


def _reference_frame(poses: Poses) -> str:
    if poses.n_space == 2:
        return REFERENCE_FRAMES["image"] if poses.units == "px" else REFERENCE_FRAMES["unknown"]
    return REFERENCE_FRAMES.get(poses.frame or "unknown", REFERENCE_FRAMES["unknown"])


def _lifter(poses: Poses) -> str | None:
    """A plain-text description of the lifter, from the poses' metadata, or None (not lifted)."""
    if poses.source_format != "lifted" and not poses.metadata.get("lifter"):
        return None
    lifter = poses.metadata.get("lifter")
    kind = poses.metadata.get("lifter_kind") or poses.metadata.get("model_kind")
    text = f"the lifter {lifter}" if lifter else "a lifter"
    return f"{text} ({kind})" if kind else text


def _description(poses: Poses, individual: str, index: int) -> str:
    source = f" from {poses.source}" if poses.source else ""
    order = f"(individual {index + 1} of {poses.n_individuals})"
    lifter = _lifter(poses)
    if lifter:
        what = f"3D poses of {individual!r} {order} lifted from 2D tracks{source} by "
        what += f"napari-liftpose with {lifter}."
    else:
        what = f"{poses.n_space}D poses of {individual!r} {order}{source}, exported by napari-liftpose."
    return f"{what} Axes: {_reference_frame(poses)}."


def _session_start(poses: Poses) -> datetime.datetime:
    value = poses.metadata.get("session_start_time")
    if isinstance(value, str):
        try:
            start = datetime.datetime.fromisoformat(value)
        except ValueError:
            start = None
        if start is not None and start.tzinfo is not None:
            return start
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def _nwbfile(poses: Poses, names: tuple[list[str], list[str]]) -> Any:
    """The in-memory :class:`pynwb.NWBFile` for ``poses``."""
    from ndx_pose import PoseEstimation, PoseEstimationSeries, Skeleton, Skeletons
    from pynwb import NWBFile, TimeSeries
    from pynwb.image import ImageSeries

    from napari_liftpose import __version__

    individuals, keypoints = names
    kind = "lifted 3D poses" if _lifter(poses) else f"{poses.n_space}D pose tracks"
    nwbfile = NWBFile(
        session_description=f"{kind} of {poses.name}, exported by napari-liftpose {__version__}",
        identifier=str(uuid.uuid4()),
        session_start_time=_session_start(poses),
    )
    module = nwbfile.create_processing_module(MODULE, f"{kind} (napari-liftpose)")
    dtype = np.uint8 if poses.n_keypoints <= 256 else np.uint16
    skeleton = Skeleton(name=SKELETON, nodes=keypoints, edges=poses.edges.astype(dtype))
    module.add(Skeletons(skeletons=[skeleton]))
    rate = poses.fps or 1.0
    timing = {"starting_time": 0.0, "rate": rate}
    comments = WRITTEN_HERE if poses.fps else f"{WRITTEN_HERE}; {FPS_UNKNOWN}"
    unit = "pixels" if poses.units == "px" else poses.units
    video = None
    if poses.video:
        fields = {
            "name": "video",
            "description": "the video the 2D tracks were made on",
            "unit": "n.a.",
            "external_file": [str(poses.video)],
            "format": "external",
            "starting_frame": [0],
            **timing,
        }
        try:  # pynwb >= 4 asks for the number of frames of an external video with a rate
            video = ImageSeries(num_samples=poses.n_frames, **fields)
        except TypeError:
            video = ImageSeries(**fields)
        nwbfile.add_acquisition(video)
    lifter = _lifter(poses)
    confidence_definition = (
        "confidence of the 2D keypoint this point was lifted from (NaN where the 2D file had none)"
        if lifter
        else f"confidence as in the source file ({poses.source_format or 'unknown format'})"
    )
    software = SOURCE_SOFTWARE if lifter else _SOFTWARE.get(poses.source_format, SOURCE_SOFTWARE)
    for i, individual in enumerate(individuals):
        series = [
            PoseEstimationSeries(
                name=keypoint,
                description=f"{keypoint} of {individual}",
                data=poses.coords[:, i, k],
                confidence=poses.confidence[:, i, k],
                confidence_definition=confidence_definition,
                unit=unit,
                reference_frame=_reference_frame(poses),
                comments=comments,
                **timing,
            )
            for k, keypoint in enumerate(keypoints)
        ]
        extra = {"source_video": video} if video is not None else {}
        module.add(
            PoseEstimation(
                name=individual,
                pose_estimation_series=series,
                description=_description(poses, poses.individuals[i], i),
                skeleton=skeleton,
                source_software=software,
                scorer=lifter or poses.source_format or "unknown",
                **extra,
            )
        )
        if poses.uncertainty is not None:
            module.add(
                TimeSeries(
                    name=f"{individual}_uncertainty",
                    data=poses.uncertainty[:, i],
                    unit=unit,
                    description=(
                        f"uncertainty of the lifted keypoints of {individual}: a radius that "
                        "holds the true point 80% of the time; columns in the order of the "
                        "skeleton's nodes; NaN where the point is missing"
                    ),
                    comments=comments,
                    **timing,
                )
            )
        if poses.suspicion is not None:
            module.add(
                TimeSeries(
                    name=f"{individual}_suspicion",
                    data=poses.suspicion[:, i],
                    unit="score in [0, 1]",
                    description=(
                        f"how wrong each lifted pose of {individual} looks, 0 = plausible, "
                        "1 = surely wrong; NaN where not computed"
                    ),
                    comments=comments,
                    **timing,
                )
            )
    return nwbfile


def _image(nwbfile: Any) -> bytes:
    """The bytes of ``nwbfile`` written to an in-memory HDF5 file (nothing touches the disk)."""
    from pynwb import NWBHDF5IO

    from napari_liftpose.io import interrupts

    name = f"liftpose-image-{uuid.uuid4().hex}.nwb"  # a name only: the core driver keeps no file
    with interrupts.surfaced(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. "uint16 edges": the values fit, as intended
        handle = h5py.File(name, "w", driver="core", backing_store=False)
        with NWBHDF5IO(file=handle, mode="w") as io:
            io.write(nwbfile)
            handle.flush()
            return handle.id.get_file_image()


def _verify(tmp: Path, expected: dict[tuple[str, str], tuple[int, int]]) -> None:
    """Re-open the written file and check every series' data shape."""
    with h5py.File(tmp, "r") as f:
        for (individual, keypoint), shape in expected.items():
            name = f"processing/{MODULE}/{individual}/{keypoint}/data"
            if name not in f or f[name].shape != shape:
                found = f[name].shape if name in f else "nothing"
                raise ValueError(f"{name}: expected shape {shape}, found {found}")


# -- reading -------------------------------------------------------------------------------------


def read_nwb(path: str | Path, processing_module: str | None = None) -> Poses:
    """Read the ndx-pose poses of an NWB file.

    Every ``PoseEstimation`` of the processing module becomes an individual (named after it;
    sleap-io's ``track=`` prefix is dropped, and movement's single ``PoseEstimation`` takes the
    subject's id or the file's identifier, as movement does). Keypoints follow the skeleton's
    nodes. Samples are placed on one frame axis by their times (``rate`` or ``timestamps``), so
    individuals tracked over different frames line up. ``data`` is scaled by its
    ``conversion`` and ``offset``. Files written by :func:`write_nwb` come back with their
    ``frame``, ``uncertainty``, ``suspicion``, order of individuals and unknown fps.

    Parameters
    ----------
    path : str or Path
        The ``.nwb`` file.
    processing_module : str, optional
        The processing module to read; needed only when several hold ``PoseEstimation``
        objects (sleap-io writes one per video).

    Returns
    -------
    Poses
        With ``metadata`` ``identifier`` and ``session_start_time`` (ISO 8601) of the file.

    Raises
    ------
    PoseFileError
        If the file is not readable NWB, keeps data or links in other files, holds no
        ``PoseEstimation``, or its series are malformed (naming the series).
    """
    path = Path(path)
    handle = open_hdf5(path)  # refuses datasets stored in other files; names a corrupt file
    try:
        problem = _link_elsewhere(handle)
        if problem:
            raise PoseFileError(path, problem)
        return _read_open(path, handle, processing_module)
    except PoseFileError:
        raise
    except Exception as err:  # pynwb/hdmf raise many kinds of errors on a malformed file
        raise PoseFileError(path, f"not a readable NWB file ({_short(err)})") from None
    finally:
        handle.close()


_LONGEST_REASON = 300


def _short(err: Exception) -> str:
    """One short sentence for an error of pynwb/hdmf.

    hdmf's ``ConstructError`` carries the whole builder tree of the object it failed on (kilobytes
    of repr): only its path and the reason are kept. Class reprs become class names, object
    addresses go, and the text is cut at 300 characters.
    """
    args = err.args
    if len(args) == 2 and isinstance(args[1], str) and hasattr(args[0], "path"):
        text = f"{args[0].path}: {args[1]}"  # hdmf ConstructError(builder, reason)
    else:
        text = str(err)
    text = re.sub(r"<class '(?:[\w.]*\.)?(\w+)'>", r"\1", text)
    text = re.sub(r" at 0x[0-9a-fA-F]+", "", text)
    text = " ".join(text.split())
    if len(text) > _LONGEST_REASON:
        text = text[: _LONGEST_REASON - 3] + "..."
    return f"{type(err).__name__}: {text}"


def _link_elsewhere(handle: h5py.File) -> str | None:
    """An external link (pynwb would open the other file), or None."""
    groups = [handle]
    while groups:
        group = groups.pop()
        for member in group:
            link = group.get(member, getlink=True)
            if isinstance(link, h5py.ExternalLink):
                return (
                    f"holds an external link {group.name.rstrip('/')}/{member} -> "
                    f"{link.filename}:{link.path}; refused: opening it would read another file"
                )
            if isinstance(link, h5py.HardLink):
                obj = group.get(member)
                if isinstance(obj, h5py.Group):
                    groups.append(obj)
    return None


def _read_open(path: Path, handle: h5py.File, processing_module: str | None) -> Poses:
    from pynwb import NWBHDF5IO

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # cached-namespace notices and other chatter
        with NWBHDF5IO(file=handle, mode="r") as io:
            nwbfile = io.read()
            return _poses(path, nwbfile, processing_module)


def _poses(path: Path, nwbfile: Any, module_name: str | None) -> Poses:
    found = {  # by type name: a class generated from a file's cached spec is another class
        name: [
            obj
            for obj in module.data_interfaces.values()
            if getattr(obj, "neurodata_type", None) == "PoseEstimation"
        ]
        for name, module in nwbfile.processing.items()
    }
    found = {name: estimates for name, estimates in found.items() if estimates}
    if module_name is not None:
        if module_name not in found:
            raise PoseFileError(
                path,
                f"no PoseEstimation in a processing module {module_name!r} "
                f"(modules with poses: {sorted(found) or 'none'})",
            )
    elif not found:
        raise PoseFileError(
            path,
            "no ndx-pose PoseEstimation in any processing module "
            f"(modules: {sorted(nwbfile.processing) or 'none'})",
        )
    elif len(found) > 1:
        raise PoseFileError(
            path,
            f"PoseEstimation objects in several processing modules {sorted(found)}: "
            "choose one with processing_module=...",
        )
    else:
        module_name = next(iter(found))
    estimates = found[module_name]
    module = nwbfile.processing[module_name]
    series = [list(pe.pose_estimation_series.values()) for pe in estimates]
    ours = all(str(s.comments).startswith(WRITTEN_HERE) for ss in series for s in ss)
    if ours:
        estimates, series = _in_written_order(estimates, series)
    keypoints, edges = _skeleton(estimates)
    individuals = [_individual(pe.name, nwbfile, len(estimates)) for pe in estimates]
    samples = {(i, s.name): _series_arrays(s) for i, ss in enumerate(series) for s in ss}
    if not samples:
        raise PoseFileError(path, "PoseEstimation holds no PoseEstimationSeries: no poses to read")
    n_space = {data.shape[1] for data, _, _ in samples.values()}
    if len(n_space) != 1:
        raise PoseFileError(path, f"series mix 2D and 3D data (widths {sorted(n_space)})")
    axis = _FrameAxis([times for _, _, times in samples.values()], [s for ss in series for s in ss])
    coords = np.full((axis.n_frames, len(estimates), len(keypoints), n_space.pop()), np.nan)
    confidence = np.full(coords.shape[:3], np.nan)
    index = {name: k for k, name in enumerate(keypoints)}
    for (i, name), (data, conf, times) in samples.items():
        frames = axis.index(times)
        coords[frames, i, index[name]] = data
        confidence[frames, i, index[name]] = conf
    units = {str(s.unit) for ss in series for s in ss}
    if len(units) != 1:
        raise PoseFileError(path, f"series in different units {sorted(units)}")
    unit = units.pop()
    extra: dict[str, Any] = {}
    if ours:
        extra = _written_extras(module, estimates, series, axis, coords.shape, keypoints)
    video = _video(estimates)
    try:
        return Poses(
            coords=coords,
            keypoints=keypoints,
            confidence=confidence,
            edges=edges,
            individuals=individuals,
            fps=None if axis.fps_unknown else axis.fps,
            units="px" if unit == "pixels" else unit,
            source=str(path),
            source_format="nwb",
            video=video,
            metadata={
                "identifier": str(nwbfile.identifier),
                "session_start_time": nwbfile.session_start_time.isoformat(),
            },
            **extra,
        )
    except ValueError as err:
        raise PoseFileError(path, str(err)) from None


def _in_written_order(estimates: list, series: list) -> tuple[list, list]:
    """Individuals in the order they were written (HDF5 lists them by name)."""
    ranks = [_ORDER.search(str(pe.description or "")) for pe in estimates]
    if all(ranks):
        order = np.argsort([int(rank.group(1)) for rank in ranks], kind="stable")
        return [estimates[i] for i in order], [series[i] for i in order]
    return estimates, series


def _individual(name: str, nwbfile: Any, count: int) -> str:
    if name == "PoseEstimation" and count == 1:  # movement's layout: one individual per file
        subject = nwbfile.subject
        return (
            str(subject.subject_id) if subject and subject.subject_id else str(nwbfile.identifier)
        )
    return name.removeprefix("track=")  # sleap-io names them track=<track>


def _skeleton(estimates: list) -> tuple[list[str], list[tuple[int, int]]]:
    """Keypoints (skeleton nodes first, then any other series) and edges, over all individuals."""
    keypoints: list[str] = []
    pairs: list[tuple[str, str]] = []
    for pe in estimates:
        skeleton = getattr(pe, "skeleton", None)
        nodes = skeleton.nodes if skeleton is not None else getattr(pe, "nodes", None)
        edges = skeleton.edges if skeleton is not None else getattr(pe, "edges", None)
        nodes = [] if nodes is None else [_text(n) for n in np.asarray(nodes[()]).ravel()]
        for name in [*nodes, *pe.pose_estimation_series]:
            if name not in keypoints:
                keypoints.append(name)
        if edges is not None and len(nodes):
            for a, b in np.asarray(edges[()], dtype=np.int64).reshape(-1, 2):
                if not (0 <= a < len(nodes) and 0 <= b < len(nodes)):
                    raise ValueError(f"skeleton edge ({a}, {b}) outside its {len(nodes)} nodes")
                if (nodes[a], nodes[b]) not in pairs:
                    pairs.append((nodes[a], nodes[b]))
    index = {name: k for k, name in enumerate(keypoints)}
    return keypoints, [(index[a], index[b]) for a, b in pairs]


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _array(value: object, what: str) -> np.ndarray:
    """A dataset's values (refusing a few bytes that claim a huge shape), or an array as is."""
    if isinstance(value, h5py.Dataset):
        return np.asarray(read_dataset(value.parent, value.name.rsplit("/", 1)[-1]), float)
    if value is None:
        raise ValueError(f"{what}: missing")
    return np.asarray(value, dtype=float)


def _series_arrays(series: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(data, confidence, times)`` of one PoseEstimationSeries, data in its ``unit``."""
    where = f"series {series.name!r}"
    data = _array(series.data, f"{where} data")
    if data.ndim != 2 or data.shape[1] not in (2, 3):
        raise ValueError(f"{where}: data: expected shape (frames, 2|3), got {data.shape}")
    conversion, offset = float(series.conversion), float(series.offset or 0.0)
    if conversion != 1.0 or offset != 0.0:
        data = data * conversion + offset
    n = data.shape[0]
    if series.confidence is None:
        conf = np.full(n, np.nan)
    else:
        conf = _array(series.confidence, f"{where} confidence").reshape(-1)
        if conf.shape != (n,):
            raise ValueError(f"{where}: confidence: expected {n} values, got {conf.shape[0]}")
    if series.timestamps is not None:
        times = _array(series.timestamps, f"{where} timestamps").reshape(-1)
        if times.shape != (n,):
            raise ValueError(f"{where}: timestamps: expected {n} values, got {times.shape[0]}")
    elif series.rate is not None:
        start, rate = _timing(series, where)
        times = start + np.arange(n) / rate
    else:
        raise ValueError(f"{where}: neither timestamps nor a rate")
    if not np.isfinite(times).all():
        raise ValueError(f"{where}: timestamps: expected finite times, got NaN or infinity")
    return data, conf, times


def _timing(series: Any, where: str) -> tuple[float, float]:
    """``(starting_time, rate)`` of a series sampled at a rate, checked.

    Raises
    ------
    ValueError
        ``"<where>: rate: expected a positive finite rate, got ..."`` (zero, negative, NaN,
        infinite or missing), or a ``starting_time`` that is not a finite time.
    """
    try:
        rate = float(series.rate)
    except (TypeError, ValueError):
        rate = float("nan")
    if not (np.isfinite(rate) and rate > 0):
        raise ValueError(f"{where}: rate: expected a positive finite rate, got {series.rate}")
    start = series.starting_time
    try:
        start = float(0.0 if start is None else start)
    except (TypeError, ValueError):
        start = float("nan")
    if not np.isfinite(start):
        raise ValueError(
            f"{where}: starting_time: expected a finite time, got {series.starting_time}"
        )
    return start, rate


class _FrameAxis:
    """One frame axis for samples given by their times (seconds).

    With one rate (or evenly spaced times) frames are ``round((t - t0) * fps)``, so gaps stay
    gaps; times off that grid, or a grid over 10 times longer than the samples, fall back to
    one frame per distinct time.
    """

    def __init__(self, times: list[np.ndarray], series: list) -> None:
        rates = {float(s.rate) for s in series if s.timestamps is None and s.rate}
        every = np.unique(np.concatenate(times)) if times else np.zeros(0)
        self.fps_unknown = all(FPS_UNKNOWN in str(s.comments) for s in series)
        if len(rates) == 1 and all(s.timestamps is None for s in series):
            fps = rates.pop()
        elif every.size > 1:
            fps = float(1.0 / np.median(np.diff(every)))
        else:
            fps = None
        self.fps = fps
        self.start = float(every[0]) if every.size else 0.0
        self.distinct = None
        if fps is not None and every.size:
            steps = (every - self.start) * fps
            on_grid = np.abs(steps - np.round(steps)).max() < 0.05
            self.n_frames = int(np.round(steps[-1])) + 1
            if on_grid and self.n_frames <= 10 * every.size + 10:
                return
        self.distinct = every
        self.n_frames = every.size

    def index(self, times: np.ndarray) -> np.ndarray:
        """Frame index of each time."""
        if self.distinct is not None:
            return np.searchsorted(self.distinct, times)
        return np.round((times - self.start) * self.fps).astype(np.int64)


def _written_extras(module, estimates, series, axis, shape, keypoints) -> dict[str, Any]:
    """``frame``, ``uncertainty`` and ``suspicion`` of a file written by :func:`write_nwb`."""
    extra: dict[str, Any] = {}
    texts = {str(s.reference_frame) for ss in series for s in ss}
    for frame in ("world", "camera", "upright"):
        if texts == {REFERENCE_FRAMES[frame]}:
            extra["frame"] = frame
    nodes = list(keypoints)
    for what, width in (("uncertainty", len(nodes)), ("suspicion", None)):
        found = [module.data_interfaces.get(f"{pe.name}_{what}") for pe in estimates]
        if not all(found):
            continue
        values = np.full(shape[:3] if width else shape[:2], np.nan)
        for i, ts in enumerate(found):
            data = _array(ts.data, f"{ts.name} data")
            start, rate = _timing(ts, ts.name)
            times = start + np.arange(data.shape[0]) / rate
            expected = (data.shape[0], width) if width else (data.shape[0],)
            if data.shape != expected:
                raise ValueError(f"{ts.name}: expected shape {expected}, got {data.shape}")
            values[axis.index(times), i] = data
        extra[what] = values
    return extra


def _video(estimates: list) -> str | None:
    for pe in estimates:
        video = getattr(pe, "source_video", None)
        files = getattr(video, "external_file", None) if video is not None else None
        if files is not None and len(files):
            return _text(files[0])
    return None
