"""DeepLabCut tables: ``.h5`` and ``.csv``, single- and multi-animal, 2D and DLC-3D.

DeepLabCut writes a pandas table whose columns are a MultiIndex ``(scorer, [individuals,]
bodyparts, coords)`` with ``coords`` in ``x, y[, z], likelihood``. Rows are video frames in order.
"""

from __future__ import annotations

import csv
import io
import reprlib
from pathlib import Path

import numpy as np
import pandas as pd

from napari_liftpose.io._csv import EXACT_FLOATS
from napari_liftpose.io._hdf5 import is_hdf5, pandas_keys
from napari_liftpose.io.atomic import (
    atomic_path,
    atomic_write_bytes,
    hdf5_store_image,
    verify_csv_lines,
)
from napari_liftpose.io.errors import PoseFileError, not_a_file_error
from napari_liftpose.io.hdf5_safety import check_no_pickles
from napari_liftpose.poses import Poses

__all__ = ["is_dlc_file", "read_dlc", "write_dlc", "find_dlc_config", "VIDEO_SUFFIXES"]

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".mpg", ".mpeg")
_LEVELS_SINGLE = ["scorer", "bodyparts", "coords"]
_LEVELS_MULTI = ["scorer", "individuals", "bodyparts", "coords"]


def is_dlc_file(path: str | Path) -> bool:
    """True for a DeepLabCut table: an HDF5 pandas table, or a CSV whose first cell is ``scorer``.

    Looks at the HDF5 structure with h5py only: detection never unpickles anything.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".h5", ".hdf5"):
        # h5py only: pandas.HDFStore(path).keys() would unpickle a crafted file's attributes.
        # A crafted pandas table is claimed here, so that read_dlc refuses it by name.
        return is_hdf5(path) and bool(pandas_keys(path))
    if suffix == ".csv":
        return _csv_layout(path) is not None
    return False


def _csv_layout(path: Path) -> tuple[int, int] | None:
    """``(header rows, index columns)`` of a DLC CSV, or None if it is not one.

    Header rows: 3 single-animal, 4 multi-animal. Index columns: 1 for inference output, 3 for
    labelled data (``labeled-data, video, image``): the cells after ``scorer`` that are empty.
    """
    try:
        with open(path, encoding="utf-8-sig", errors="replace") as f:  # Excel saves a BOM
            rows = [f.readline().rstrip("\r\n").split(",") for _ in range(4)]
    except OSError:
        return None
    firsts = [row[0].strip() for row in rows]
    if firsts[0] != "scorer":
        return None
    n_index = 1
    while n_index < len(rows[0]) and rows[0][n_index].strip() == "":
        n_index += 1
    if firsts[1] == "individuals" and firsts[2] == "bodyparts" and firsts[3] == "coords":
        return 4, n_index
    if firsts[1] == "bodyparts" and firsts[2] == "coords":
        return 3, n_index
    return None


def _read_table(path: Path) -> pd.DataFrame:
    """The DataFrame of a DLC table; the file is read once and parsed from memory."""
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise PoseFileError(path, f"cannot be read: {err.strerror or err}") from None
    if path.suffix.lower() == ".csv":
        return _read_csv_table(path, raw)
    return _read_hdf_table(path, raw)


def _read_hdf_table(path: Path, raw: bytes) -> pd.DataFrame:
    """Read a pandas HDF5 table after refusing any pickled content (PyTables unpickles it)."""
    check_no_pickles(path, raw)
    try:  # PyTables opens the very bytes that were checked ("<path>/in-memory" is never a file)
        with pd.HDFStore(
            str(path / "in-memory"),
            mode="r",
            driver="H5FD_CORE",
            driver_core_image=raw,
            driver_core_backing_store=0,
        ) as store:
            frame = pd.read_hdf(store)
    except Exception as err:
        raise PoseFileError(
            path, f"not a readable DeepLabCut HDF5 table (truncated or corrupt?): {err}"
        ) from None
    if not isinstance(frame, pd.DataFrame):
        raise PoseFileError(path, "not a DeepLabCut table: the HDF5 store holds no DataFrame")
    return frame


def _read_csv_table(path: Path, raw: bytes) -> pd.DataFrame:
    """Read a DLC CSV strictly: every row as wide as the header, values bit-exact."""
    layout = _csv_layout(path)
    if layout is None:
        raise PoseFileError(
            path,
            "not a DeepLabCut table: expected header rows "
            "'scorer', ['individuals',] 'bodyparts', 'coords'",
        )
    n_header, n_index = layout
    header = _check_csv_rows(path, raw, n_header)
    try:
        frame = pd.read_csv(
            io.BytesIO(raw),
            header=list(range(n_header)),
            index_col=list(range(n_index)),
            **EXACT_FLOATS,
        )
    except Exception as err:
        if isinstance(err, pd.errors.ParserError):
            _scan_rows(path, raw, n_header)  # a row too wide: name its line
        raise PoseFileError(path, f"unreadable DeepLabCut CSV: {err}") from None
    # the header's own cells: pandas renames a repeated column ("x" -> "x.1")
    _check_unique_columns(path, [tuple(row[n_index:]) for row in header[1:]])
    _check_numeric(path, frame, first_line=n_header + 1)
    return frame


def _check_csv_rows(path: Path, raw: bytes, n_header: int) -> list[list[str]]:
    """Refuse ragged, gappy or truncated CSV rows; return the header rows' cells.

    A quick look first (comma and newline counts, in C); the rows are scanned one by one only
    when those do not add up, to name the offending line.
    """
    end = len(raw)
    while end and raw[end - 1] in b"\r\n":
        end -= 1  # blank lines at the end are fine
    n_lines = raw.count(b"\n", 0, end) + 1
    first_end = raw.find(b"\n", 0, end)
    width = raw.count(b",", 0, end if first_end < 0 else first_end) + 1
    # every line as wide as the first one, if the commas add up (a blank line has none) and
    # no line has more (pandas' parser refuses those); else scan them to name the line
    quick = b'"' not in raw and raw.count(b",", 0, end) == (width - 1) * n_lines
    header = None if quick else _scan_rows(path, raw, n_header)
    if n_lines > n_header and not raw.endswith((b"\n", b"\r")):
        raise PoseFileError(
            path,
            f"the last line ({n_lines}) does not end with a newline: the file looks "
            "truncated (if that row is complete, end the file with a newline)",
        )
    if header is None:
        header, start = [], 0
        for _ in range(min(n_header, n_lines)):
            stop = raw.find(b"\n", start, end)
            stop = end if stop < 0 else stop
            header.append(raw[start:stop].decode("utf-8", "replace").rstrip("\r").split(","))
            start = stop + 1
    return header


def _scan_rows(path: Path, raw: bytes, n_header: int) -> list[list[str]]:
    """Check every row's cell count (csv module: quoted cells); return the header rows."""
    reader = csv.reader(io.StringIO(raw.decode("utf-8", "replace"), newline=""))
    rows = [(reader.line_num, row) for row in reader]
    while rows and not rows[-1][1]:
        rows.pop()  # blank lines at the end
    width = len(rows[0][1]) if rows else 0
    for number, cells in rows:
        if not cells:
            raise PoseFileError(path, f"line {number} is empty: rows must follow each other")
        if len(cells) != width:
            raise PoseFileError(
                path,
                f"line {number} has {len(cells)} cells, the header has {width}: "
                "the table is ragged (truncated or edited?)",
            )
    return [cells for _, cells in rows[:n_header]]


def _check_unique_columns(path: Path, levels: list[tuple[str, ...]]) -> None:
    """Refuse a table whose (individual,) bodypart, coordinate column appears twice.

    ``levels``: the header rows below ``scorer``, one tuple of cells per row. Several scorers
    for one bodypart count as duplicates too (the scorer is not part of the pose).
    """
    keys = list(zip(*levels, strict=False))
    seen: set[tuple[str, ...]] = set()
    duplicates = list(dict.fromkeys(k for k in keys if k in seen or seen.add(k)))
    if duplicates:
        shown = ", ".join("/".join(map(str, k)) for k in duplicates[:6])
        more = f" and {len(duplicates) - 6} more" if len(duplicates) > 6 else ""
        raise PoseFileError(
            path,
            f"duplicate columns (the same bodypart and coordinate twice): {shown}{more}; "
            "rename or remove them",
        )


def _check_numeric(path: Path, frame: pd.DataFrame, first_line: int | None) -> None:
    """Refuse a table with a cell that is not a number (name its column and CSV line).

    ``first_line``: the CSV line number of the first row, or None for an HDF5 table.
    """
    for position, (key, column) in enumerate(frame.items()):
        if pd.api.types.is_numeric_dtype(column.dtype):
            continue
        numbers = pd.to_numeric(column, errors="coerce")
        bad = np.flatnonzero(numbers.isna().to_numpy() & column.notna().to_numpy())
        row = int(bad[0]) if len(bad) else 0
        name = "/".join(map(str, key[1:])) if isinstance(key, tuple) else str(key)
        where = f"on line {first_line + row}" if first_line else f"in row {row}"
        raise PoseFileError(
            path,
            f"column {name} (number {position + 1}) holds {str(column.iloc[row])!r} "
            f"{where}: expected numbers",
        )


def read_dlc(path: str | Path, config: str | Path | None = None) -> Poses:
    """Read a DeepLabCut ``.h5`` or ``.csv`` table (2D, or 3D with ``z`` columns).

    Parameters
    ----------
    path : str or Path
        The table.
    config : str or Path, optional
        A DeepLabCut ``config.yaml`` for the skeleton. By default one is looked for next to
        the file and up to two folders above (:func:`find_dlc_config`).

    Raises
    ------
    PoseFileError
        If the table is not a DeepLabCut table, or the skeleton names unknown bodyparts.
    """
    path = Path(path)
    frame = _read_table(path)
    columns = frame.columns
    if not isinstance(columns, pd.MultiIndex) or columns.nlevels not in (3, 4):
        raise PoseFileError(
            path, "not a DeepLabCut table: expected 3 or 4 column levels (scorer, ..., coords)"
        )
    names = _LEVELS_SINGLE if columns.nlevels == 3 else _LEVELS_MULTI
    levels = [tuple(map(str, columns.get_level_values(i))) for i in range(1, columns.nlevels)]
    _check_unique_columns(path, levels)
    if path.suffix.lower() != ".csv":
        _check_numeric(path, frame, first_line=None)
    columns = columns.set_names(names)
    frame.columns = columns
    coords_names = list(dict.fromkeys(columns.get_level_values("coords")))
    space = [c for c in ("x", "y", "z") if c in coords_names]
    if space not in (["x", "y"], ["x", "y", "z"]):
        raise PoseFileError(path, f"coords: expected x, y[, z][, likelihood], got {coords_names}")
    bodyparts = list(dict.fromkeys(columns.get_level_values("bodyparts")))
    if columns.nlevels == 4:
        individuals = list(dict.fromkeys(columns.get_level_values("individuals")))
    else:
        individuals = ["individual_0"]
    values = frame.to_numpy(dtype=np.float64, na_value=np.nan)
    n_frames = len(frame)
    coords = np.full((n_frames, len(individuals), len(bodyparts), len(space)), np.nan)
    confidence = np.full(coords.shape[:3], np.nan)
    ind_pos = {n: i for i, n in enumerate(individuals)}
    kp_pos = {n: i for i, n in enumerate(bodyparts)}
    space_pos = {n: i for i, n in enumerate(space)}
    for column, key in enumerate(columns):
        ind = ind_pos[key[1]] if columns.nlevels == 4 else 0
        kp = kp_pos[key[-2]]
        if key[-1] in space_pos:
            coords[:, ind, kp, space_pos[key[-1]]] = values[:, column]
        elif key[-1] == "likelihood":
            confidence[:, ind, kp] = values[:, column]
    config_path = Path(config) if config is not None else find_dlc_config(path)
    edges = _skeleton_edges(config_path, bodyparts) if config_path else None
    return Poses(
        coords=coords,
        confidence=confidence,
        keypoints=bodyparts,
        edges=edges,
        individuals=individuals,
        units="px" if len(space) == 2 else "units",  # DLC 3D: the calibration board's units
        source=str(path),
        source_format="dlc",
        video=find_dlc_video(path),
        metadata={
            "dlc_columns": columns,
            "dlc_index": frame.index,
            "dlc_config": str(config_path) if config_path else None,
        },
    )


def find_dlc_config(path: str | Path) -> Path | None:
    """A ``config.yaml`` beside ``path`` or up to two folders above it, else None."""
    folder = Path(path).resolve().parent
    for candidate in (folder, folder.parent, folder.parent.parent):
        config = candidate / "config.yaml"
        if config.is_file():
            return config
    return None


def find_dlc_video(path: str | Path) -> str | None:
    """The video beside a DLC output table: ``<video stem>DLC_<scorer>.h5`` names its video."""
    path = Path(path)
    folder = sorted(path.parent.iterdir()) if path.parent.is_dir() else []
    # regular files only: a FIFO or device named like the video would hang the viewer
    candidates = [v for v in folder if _dlc_suffix(path.stem, v) and v.is_file()]
    return str(max(candidates, key=lambda v: len(v.stem))) if candidates else None


def _dlc_suffix(table_stem: str, video: Path) -> bool:
    """True if the table is ``<video stem>DLC_...`` (DeepLabCut's naming) or ``<video stem>``."""
    if video.suffix.lower() not in VIDEO_SUFFIXES or not table_stem.startswith(video.stem):
        return False
    rest = table_stem[len(video.stem) :]
    return rest == "" or rest.startswith("DLC") or rest.startswith("_DLC")


def _skeleton_edges(config: Path, bodyparts: list[str]) -> list[tuple[int, int]]:
    import yaml

    if not config.is_file():  # an explicit config= that is missing, a FIFO or a device
        raise not_a_file_error(config)
    try:
        settings = yaml.safe_load(config.read_text()) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise PoseFileError(config, f"unreadable DeepLabCut config: {err}") from None
    if not isinstance(settings, dict):
        raise PoseFileError(config, "not a DeepLabCut config: expected a YAML mapping")
    pairs = settings.get("skeleton") or []
    bad = [pair for pair in pairs if not _is_name_pair(pair)] if isinstance(pairs, list) else []
    if bad or not isinstance(pairs, list):
        bad = bad[0] if bad else pairs
        raise PoseFileError(
            config,
            "skeleton: expected a list of [bodypart, bodypart] pairs of names, "
            f"got {reprlib.repr(bad)}",
        )
    pairs = [(str(a), str(b)) for a, b in pairs]
    unknown = sorted({name for pair in pairs for name in pair if name not in bodyparts})
    if unknown:
        raise PoseFileError(
            config, f"the skeleton names keypoints that are not in the tracks: {unknown}"
        )
    return [(bodyparts.index(a), bodyparts.index(b)) for a, b in pairs]


def _is_name_pair(pair: object) -> bool:
    """True for ``[name, name]`` (names: strings, or integers YAML read from digits)."""
    return (
        isinstance(pair, (list, tuple))
        and len(pair) == 2
        and all(isinstance(name, (str, int)) and not isinstance(name, bool) for name in pair)
    )


def write_dlc(poses: Poses, path: str | Path) -> Path:
    """Write ``poses`` as a DeepLabCut table (``.h5`` or ``.csv``, chosen by suffix).

    Poses read from a DeepLabCut file are written with the original columns and index, so
    untouched values come back bit-exact; others get a ``napari-liftpose`` scorer. The write
    is atomic and verified (the written file is re-opened and its shape checked before it
    replaces ``path``); a write error such as a full disk raises :class:`PoseFileError` and
    keeps the old file. Returns the path written.
    """
    path = Path(path)
    if path.suffix.lower() not in (".h5", ".csv"):
        raise PoseFileError(path, "DeepLabCut tables are written as .h5 or .csv")
    frame = to_dlc_dataframe(poses)
    if path.suffix.lower() == ".csv":
        with atomic_path(path, verify=lambda tmp: _verify_dlc_csv(tmp, frame)) as tmp:
            frame.to_csv(tmp)
        return path
    # labelled data has a (folder, video, image) row index: only "fixed" stores it
    layout = "fixed" if isinstance(frame.index, pd.MultiIndex) else "table"
    # PyTables builds the file in memory: on a full disk it could report success for a
    # broken file, while plain Python I/O raises a clean OSError
    # store.put, not frame.to_hdf(store): pandas 2 turns the store back into its file name
    # (HDFStore.__fspath__) and would write a file of that name in the working directory
    image = hdf5_store_image(
        lambda store: store.put(_DLC_KEY, frame, format=layout, track_times=False)
    )
    atomic_write_bytes(path, image, verify=lambda tmp: _verify_dlc_h5(tmp, frame.shape))
    return path


_DLC_KEY = "df_with_missing"


def _verify_dlc_h5(path: Path, shape: tuple[int, int]) -> None:
    """Check a written DLC store's row and column counts with h5py (no pandas, no pickle)."""
    import h5py

    with h5py.File(path, "r") as f:
        group = f.get(_DLC_KEY)
        if not isinstance(group, h5py.Group):
            raise ValueError(f"no {_DLC_KEY!r} table")
        if "table" in group:  # pandas "table" layout: one compound row per frame
            table = group["table"]
            fields = table.dtype.fields or {}
            blocks = [fields[n][0] for n in fields if n.startswith("values_block_")]
            found = (table.shape[0], sum(int(np.prod(b.shape)) for b in blocks))
        else:  # "fixed" layout: block<i>_values (rows, columns)
            blocks = [group[n] for n in group if n.startswith("block") and n.endswith("_values")]
            rows = {b.shape[0] for b in blocks}
            found = (rows.pop() if len(rows) == 1 else -1, sum(b.shape[1] for b in blocks))
    if found != tuple(shape):
        raise ValueError(f"expected {shape[0]} rows x {shape[1]} values, got {found}")


def _verify_dlc_csv(path: Path, frame: pd.DataFrame) -> None:
    """Check a written DLC CSV: header rows, then one line per frame; the last one complete."""
    names = frame.index.names
    if isinstance(frame.index, pd.MultiIndex):
        labels = [name or "" for name in names]
    else:
        labels = ["" if name is None else name for name in names]
    # pandas adds a row of index names under the column levels unless they are all empty
    header_rows = frame.columns.nlevels + (set(labels) != {""})
    verify_csv_lines(path, header_rows, len(frame), frame.index.nlevels + frame.shape[1])


def to_dlc_dataframe(poses: Poses) -> pd.DataFrame:
    """The DeepLabCut DataFrame of ``poses`` (original columns when it came from DLC)."""
    space = ["x", "y", "z"][: poses.n_space]
    columns = poses.metadata.get("dlc_columns")
    index = poses.metadata.get("dlc_index")
    if columns is None:
        multi = poses.n_individuals > 1
        keys = [
            ("napari-liftpose", *((ind,) if multi else ()), kp, c)
            for ind in poses.individuals
            for kp in poses.keypoints
            for c in [*space, "likelihood"]
        ]
        columns = pd.MultiIndex.from_tuples(keys, names=_LEVELS_MULTI if multi else _LEVELS_SINGLE)
    if index is None or len(index) != poses.n_frames:
        index = pd.RangeIndex(poses.n_frames)
    ind_pos = {n: i for i, n in enumerate(poses.individuals)}
    kp_pos = {n: i for i, n in enumerate(poses.keypoints)}
    values = np.full((poses.n_frames, len(columns)), np.nan)
    for column, key in enumerate(columns):
        ind = ind_pos[key[1]] if columns.nlevels == 4 else 0
        kp = kp_pos[key[-2]]
        if key[-1] in space:
            values[:, column] = poses.coords[:, ind, kp, space.index(key[-1])]
        elif key[-1] == "likelihood":
            values[:, column] = poses.confidence[:, ind, kp]
    return pd.DataFrame(values, index=index, columns=columns)
