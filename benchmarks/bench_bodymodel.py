#!/usr/bin/env python
"""How well a lifter built only from a body model lifts real recordings (issue 12, "How it is checked").

No frame of any 3D recording trains or tunes the body-model lifters; the 3D is used only to
score. Every prediction is compared with the truth after a similarity alignment
(``bodymodel_scoring.py``): PA-MPJPE (one alignment per frame) and MPJPE after one alignment for
the whole sequence on root-relative poses (orientation and size must then hold from frame to
frame). Errors in the truth's units.

* **sleap-anipose mouse** (``sleap_anipose_minimal_session``, 120 frames, 15 keypoints): the
  real proofread 2D of the ``top`` camera lifted by the built-in ``mouse-top``, of ``back`` and
  ``mid`` by ``mouse-side``; beside it the body model's mean pose (trivial baseline, the same
  mapped keypoints) and a lifter trained on the session's real 2D/3D pairs of that camera
  (first 80 % of the frames; default ``TrainConfig``). All rows on the last 20 % (24 frames);
  the body-model lifter also on all 120. Root: ``Trunk``. Targets: body-model <= 0.5x trivial,
  <= 1.5x real pairs.
* **DeepFly3D fly** (1000 frames, 30 keypoints): its 3D projected through a side camera
  (azimuth 90, elevation 20, 20 mm, focal 1000 px, as ``liftpose_suite.fly_known``) with 1.5 px
  of Gaussian detector noise, lifted by the built-in ``fly-side``; beside it a lifter trained on
  the real library's first 80 % through that known camera, and the truth's own mean pose (over
  the frames scored). Root: the centroid of the six coxae. Target: better than the mean pose.
* **open-field DLC CSV** (4 keypoints): lifted through ``lift --builtin mouse-top`` (the CLI,
  or the Python API where the CLI lacks it); the fraction of frames whose both 3D ears lie
  above the horizontal plane through the tail base (z up) is printed.

``--mixed N`` adds a fly row: the ``fly-side`` recipe trained again with the fly's first ``N``
real 3D frames mixed in (``bodies.library.training_library``; the remedy the docs give for a
wrong build), scored on the same last 20 %.

Until the built-in lifters exist (``napari_liftpose.bodies.builtin``), ``--interim`` (automatic
then) trains an equivalent one here: a sampled library, random cameras in the view's elevation
range, ``subset_dropout=0.8``; the table says which was used.

Usage: ``nice -n 10 python benchmarks/bench_bodymodel.py [--mixed N] [--interim] [--threads 1]``
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bodymodel_scoring import (  # noqa: E402
    Scores,
    fraction_above,
    root_relative,
    score,
    sequence_errors,
    similarity_fit,
)

from napari_liftpose import Poses  # noqa: E402
from napari_liftpose.bodies import load_body_model  # noqa: E402
from napari_liftpose.bodies.mapping import (  # noqa: E402
    KeypointMapping,
    map_keypoints,
    to_model_poses,
)
from napari_liftpose.io import read_poses  # noqa: E402
from napari_liftpose.lifting import (  # noqa: E402
    KnownCamera,
    Lifter,
    PairedTracks,
    RandomCameras,
    TrainConfig,
    camera_from_angles,
    load_lifter,
    train,
)

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("LIFTPOSE_TEST_DATA", REPO.parent / "shared" / "data"))
SESSION = DATA / "sleap_anipose_minimal_session"
FLY = DATA / "fly_df3d_210902" / "points3d.npz"
OPENFIELD = DATA / "dlc_openfield_csv" / "openfield_dlc_inference_example.csv"

TRAIN_FRACTION = 0.8
NOISE_PX = 1.5
MOUSE_CAMERAS = (("top", "mouse-top"), ("back", "mouse-side"), ("mid", "mouse-side"))
FLY_CAMERA = {"azimuth": 90.0, "elevation": 20.0, "distance": 20.0, "focal": 1000.0}
#: Interim body-model lifters (until the built-ins land): body model, camera elevations.
INTERIM = {
    "mouse-top": ("mouse", (55.0, 89.0)),
    "mouse-side": ("mouse", (-5.0, 40.0)),
    "fly-side": ("fly", (-5.0, 40.0)),
}
INTERIM_POSES = 20_000
TARGET_TRIVIAL = 0.5
TARGET_PAIRS = 1.5


@dataclass
class Row:
    """One line of the table."""

    task: str
    lifter: str
    frames: str
    scores: Scores
    note: str = ""
    role: str = ""  # "body", "trivial" (the baseline of the target), "pairs", or "" (extra)
    joints: dict[str, float] = field(default_factory=dict)  # per-joint seq.-aligned error


def per_joint(pred: np.ndarray, truth: np.ndarray, root, names: list[str]) -> dict[str, float]:
    """Mean :func:`sequence_errors` of every joint, by name (roots and never-valid ones left out)."""
    errors = sequence_errors(pred, truth, root)
    seen = np.isfinite(errors).any(axis=0)
    means = np.nanmean(np.where(seen, errors, 0.0), axis=0)
    return {k: float(v) for k, v, ok in zip(names, means, seen, strict=True) if ok}


# -- lifters ---------------------------------------------------------------------------------
def _builtin_module():
    if importlib.util.find_spec("napari_liftpose.bodies.builtin") is None:
        return None
    from napari_liftpose.bodies import builtin

    return builtin


def _shipped(name: str) -> bool:
    """Whether built-in ``name`` is shipped (its file and manifest entry present and readable)."""
    builtin = _builtin_module()
    if builtin is None:
        return False
    try:
        return builtin.builtin_info(name).path.is_file()
    except Exception:  # noqa: BLE001 - a missing or half-written manifest: not shipped yet
        return False


def _interim_lifter(name: str, cache: Path, epochs: int) -> Lifter:
    """Built-in ``name`` trained here: its own recipe where the module has one, else ours."""
    path = cache / f"interim-{name}.safetensors"
    builtin = _builtin_module()
    if not path.exists():
        t0 = time.perf_counter()
        if builtin is not None and name in getattr(builtin, "RECIPES", {}):
            builtin.build_builtin(name, path)
        else:
            from napari_liftpose.bodies import sample_poses

            body, elevation = INTERIM[name]
            model = load_body_model(body)
            library = sample_poses(model, INTERIM_POSES, seq_len=64, seed=0)
            config = TrainConfig(epochs=epochs, subset_dropout=0.8, device="cpu", seed=0)
            train(library, RandomCameras(elevation=elevation), path, config, roots=[model.root])
        print(f"  trained interim {name} in {time.perf_counter() - t0:.0f} s", flush=True)
    return load_lifter(path, device="cpu")


def body_lifter(
    name: str, tracks: Poses, body: str, cache: Path, interim: bool, epochs: int
) -> tuple[Lifter, KeypointMapping, str]:
    """The body-model lifter ``name`` for ``tracks``, its keypoint mapping, and which it is."""
    builtin = _builtin_module()
    if not interim and _shipped(name):
        lifter, mapping = builtin.lifter_for_tracks(name, tracks)
        return lifter, mapping, f"built-in {name}"
    lifter = _interim_lifter(name, cache, epochs)
    if builtin is not None and "body_model" in lifter.meta:
        adapted, mapping = builtin.lifter_for_tracks(lifter, tracks)
        return adapted, mapping, f"interim {name} (its recipe, trained here)"
    model = load_body_model(body)
    mapping = map_keypoints(tracks.keypoints, model.keypoints, aliases=model.aliases)
    return lifter, mapping, f"interim {name} (trained here)"


def lift_user(lifter: Lifter, mapping: KeypointMapping, tracks: Poses) -> np.ndarray:
    """Lift ``tracks`` with a body-model lifter: ``(frames, user keypoints, 3)``, NaN unmapped.

    An adapted lifter (the user's names) lifts the tracks directly; a whole-model one gets every
    model keypoint, NaN where nothing maps onto it.
    """
    users = list(tracks.keypoints)
    out = np.full((tracks.n_frames, len(users), 3), np.nan)
    if set(lifter.keypoints) <= set(users):
        lifted = lifter.lift(tracks, uncertainty=False, suspicion=False)
        for j, name in enumerate(lifted.keypoints):
            out[:, users.index(name)] = lifted.coords[:, 0, j]
        return out
    inputs = to_model_poses(tracks, mapping, complete=True).select_keypoints(lifter.keypoints)
    lifted = lifter.lift(inputs, uncertainty=False, suspicion=False)
    for user, model in mapping.pairs.items():
        out[:, users.index(user)] = lifted.coords[:, 0, lifted.keypoints.index(model)]
    return out


def mean_pose_user(body: str, mapping: KeypointMapping, users: list[str]) -> np.ndarray:
    """The body model's mean pose on the user's keypoints ``(keypoints, 3)``, NaN unmapped."""
    model = load_body_model(body)
    pose = model.mean_pose()
    out = np.full((len(users), 3), np.nan)
    for user, name in mapping.pairs.items():
        out[users.index(user)] = pose[model.index(name)]
    return out


def _frames(poses: Poses, frames: slice) -> Poses:
    """The frames ``frames`` of ``poses`` (a copy)."""
    return poses.copy(
        coords=poses.coords[frames].copy(), confidence=poses.confidence[frames].copy()
    )


def _train_quiet(*args, **kwargs):
    """``train``, timed; numpy's warnings about keypoints a camera never sees are silenced."""
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = train(*args, **kwargs)
    return result, time.perf_counter() - t0


# -- the mouse -------------------------------------------------------------------------------
def mouse_rows(
    camera: str, name: str, workdir: Path, cache: Path, interim: bool, epochs: int
) -> list[Row]:
    tracks = read_poses(SESSION / camera / f"minimal_{camera}_proofread.analysis.h5")
    truth_poses = read_poses(SESSION / "points3d.h5").select_keypoints(tracks.keypoints)
    truth = truth_poses.coords[:, 0].astype(np.float64)
    users = list(tracks.keypoints)
    root = users.index("Trunk")
    n = tracks.n_frames
    cut = int(round(n * TRAIN_FRACTION))
    test = slice(cut, None)
    task = f"mouse {camera}"

    lifter, mapping, which = body_lifter(name, tracks, "mouse", cache, interim, epochs)
    body = lift_user(lifter, mapping, tracks)
    trivial = np.repeat(mean_pose_user("mouse", mapping, users)[None], n, axis=0)
    own_mean = np.repeat(truth[test].mean(0, keepdims=True), n - cut, axis=0)

    # a lifter trained on this camera's real pairs, first 80 % of the frames
    part, library = _frames(tracks, slice(0, cut)), _frames(truth_poses, slice(0, cut))
    out = workdir / f"pairs-{camera}.safetensors"
    result, seconds = _train_quiet(
        library, PairedTracks([part]), out, TrainConfig(device="cpu", seed=0), roots=["Trunk"]
    )
    pairs = load_lifter(result.path, device="cpu")
    lifted = pairs.lift(_frames(tracks, test), uncertainty=False, suspicion=False)
    real = lifted.select_keypoints(users).coords[:, 0]

    last = f"last {n - cut}"
    mapped = f"{len(mapping.pairs)}/{len(users)} mapped"
    rows = [
        Row(task, which, last, score(body[test], truth[test], root), mapped, "body"),
        Row(task, which, f"all {n}", score(body, truth, root), mapped),
        Row(
            task,
            "body model's mean pose (trivial)",
            last,
            score(trivial[test], truth[test], root),
            role="trivial",
        ),
        Row(
            task,
            f"real pairs, {cut} frames (MLP)",
            last,
            score(real, truth[test], root),
            f"trained {seconds:.0f} s",
            "pairs",
        ),
        Row(task, "session's own mean pose (oracle)", last, score(own_mean, truth[test], root)),
    ]
    rows[0].joints = per_joint(body[test], truth[test], root, users)
    rows[2].joints = per_joint(trivial[test], truth[test], root, users)
    return rows


def session_motion() -> tuple[float, float, int]:
    """Per-joint sd over time (root-relative, per coordinate), the body's radius, the frames."""
    truth = read_poses(SESSION / "points3d.h5")
    pts = truth.coords[:, 0].astype(np.float64)
    rel = pts - pts[:, [truth.keypoints.index("Trunk")]]
    sd = float(np.nanmean(np.nanstd(rel, axis=0)))
    radius = float(np.nanmedian(np.linalg.norm(rel, axis=-1)))
    return sd, radius, len(pts)


def landmark_distances() -> str:
    """Distances from Trunk: the session's mean pose, and the body model's mean pose scaled to it.

    The scale is the one similarity that takes the model's mean pose onto the session's mean
    (root-relative), as the scores use.
    """
    truth = read_poses(SESSION / "points3d.h5")
    users = list(truth.keypoints)
    root = users.index("Trunk")
    model = load_body_model("mouse")
    mapping = map_keypoints(users, model.keypoints, aliases=model.aliases)
    mean_truth = root_relative(truth.coords[:, 0].astype(np.float64), root).mean(0)
    mean_model = root_relative(mean_pose_user("mouse", mapping, users)[None], root)[0]
    keep = np.isfinite(mean_model).all(-1) & (np.arange(len(users)) != root)
    scale = similarity_fit(mean_model[keep], mean_truth[keep]).scale
    parts = [
        f"{k} {np.linalg.norm(mean_truth[i]):.0f} | {scale * np.linalg.norm(mean_model[i]):.0f}"
        for i, k in enumerate(users)
        if keep[i]
    ]
    return ", ".join(parts)


# -- the fly ---------------------------------------------------------------------------------
def mixed_lifter(
    recipe_name: str, tracks: Poses, real: Poses, workdir: Path
) -> tuple[Lifter, float, str]:
    """Built-in ``recipe_name``'s recipe with ``real`` 3D frames mixed in, for ``tracks``' keypoints.

    The library is restricted to the tracks' mapped keypoints (``training_library``), the real
    frames repeated to :data:`~napari_liftpose.bodies.library.REAL_SHARE` of it and the sampled
    poses scaled to their size. Returns the lifter, the training seconds and the mix's summary.
    """
    from napari_liftpose.bodies.builtin import RECIPES
    from napari_liftpose.bodies.library import training_library

    recipe = RECIPES[recipe_name]
    lib = training_library(
        recipe.body_model,
        recipe.n_poses,
        user_keypoints=list(tracks.keypoints),
        user_edges=tracks.edges,
        real=[real],
        seed=recipe.seed,
    )
    config = TrainConfig(
        architecture={"width": recipe.width, "blocks": recipe.blocks},
        epochs=recipe.epochs,
        seed=recipe.seed,
        device="cpu",
        subset_dropout=recipe.subset_dropout,
        bone_jitter=recipe.bone_jitter,
    )
    out = workdir / f"mixed-{recipe_name}.safetensors"
    result, seconds = _train_quiet(
        lib.libraries, RandomCameras(elevation=recipe.elevation), out, config, roots=lib.roots
    )
    summary = lib.mix.describe() if hasattr(lib.mix, "describe") else str(lib.mix)
    return load_lifter(result.path, device="cpu"), seconds, summary


def fly_rows(workdir: Path, cache: Path, interim: bool, epochs: int, mixed: int = 0) -> list[Row]:
    z = np.load(FLY, allow_pickle=False)
    pts = z["points3d"].astype(np.float64)
    names = [str(k) for k in z["keypoints"]]
    edges = np.asarray(z["edges"])
    n = len(pts)
    cut = int(round(n * TRAIN_FRACTION))
    test = slice(cut, None)
    root = [i for i, k in enumerate(names) if k.endswith("_Coxa")]
    cam = camera_from_angles(**FLY_CAMERA, name="side")
    rng = np.random.default_rng(1)
    p2 = cam.project(pts) + rng.normal(0.0, NOISE_PX, (n, len(names), 2))
    tracks = Poses(p2[:, None], names, edges=edges, units="px", fps=float(z["fps"]))
    task = "fly side"

    lifter, mapping, which = body_lifter("fly-side", tracks, "fly", cache, interim, epochs)
    body = lift_user(lifter, mapping, tracks)

    library = Poses(pts[:cut, None], names, edges=edges, units="mm")
    out = workdir / "fly-known.safetensors"
    result, seconds = _train_quiet(
        library, KnownCamera(cam), out, TrainConfig(device="cpu", seed=0)
    )
    known = load_lifter(result.path, device="cpu")
    real = known.lift(_frames(tracks, test), uncertainty=False, suspicion=False).coords[:, 0]

    model_mean = np.repeat(mean_pose_user("fly", mapping, names)[None], n, axis=0)

    def own_mean(frames: slice) -> np.ndarray:
        rel = pts[frames] - pts[frames][:, root].mean(1, keepdims=True)
        return np.repeat(rel.mean(0, keepdims=True), len(rel), axis=0)

    last, everything = f"last {n - cut}", f"all {n}"
    mapped = f"{len(mapping.pairs)}/{len(names)} mapped"
    rows = [
        Row(task, which, last, score(body[test], pts[test], root), mapped, "body"),
        Row(task, which, everything, score(body, pts, root), mapped),
        Row(
            task,
            "truth's own mean pose (target)",
            last,
            score(own_mean(test), pts[test], root),
            role="trivial",
        ),
        Row(task, "truth's own mean pose", everything, score(own_mean(slice(None)), pts, root)),
        Row(task, "body model's mean pose", last, score(model_mean[test], pts[test], root)),
        Row(
            task,
            f"real library, {cut} frames, known camera (MLP)",
            last,
            score(real, pts[test], root),
            f"trained {seconds:.0f} s",
            "pairs",
        ),
    ]
    rows[0].joints = per_joint(body[test], pts[test], root, names)
    rows[2].joints = per_joint(own_mean(test), pts[test], root, names)
    if mixed:
        mixed = min(mixed, cut)
        real3d = Poses(pts[:mixed, None], names, edges=edges, units="mm")
        lifter, seconds, summary = mixed_lifter("fly-side", tracks, real3d, workdir)
        lifted = lift_user(lifter, mapping, _frames(tracks, test))
        print(f"  mixed: {summary}", flush=True)
        rows.append(
            Row(
                task,
                f"fly-side recipe + the first {mixed} real frames mixed in",
                last,
                score(lifted, pts[test], root),
                f"trained {seconds:.0f} s",
            )
        )
    return rows


# -- the open field --------------------------------------------------------------------------
def _cli_has_builtin() -> bool:
    exe = shutil.which("napari-liftpose") or str(Path(sys.executable).parent / "napari-liftpose")
    try:
        done = subprocess.run(
            [exe, "lift", "--help"], capture_output=True, text=True, timeout=120, check=False
        )
    except OSError:
        return False
    return "--builtin" in done.stdout


def openfield(
    workdir: Path, cache: Path, interim: bool, epochs: int
) -> tuple[str, float, int, int, str, float]:
    """Lift the open-field CSV with mouse-top: how, fraction with both ears up, frames, axes, height.

    The height is the median over frames of the lower ear's height above the tail base.
    """
    tracks = read_poses(OPENFIELD)
    how = "API"
    if not interim and _cli_has_builtin():
        out = workdir / "openfield_3d.npz"
        exe = shutil.which("napari-liftpose") or str(
            Path(sys.executable).parent / "napari-liftpose"
        )
        done = subprocess.run(
            [exe, "lift", "--builtin", "mouse-top", str(OPENFIELD), "-o", str(out)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise SystemExit(f"lift --builtin mouse-top failed: {done.stderr.strip()}")
        lifted = read_poses(out)
        pts = lifted.coords[:, 0].astype(np.float64)
        names, frame, how = list(lifted.keypoints), lifted.frame, "CLI"
    else:
        lifter, mapping, how = body_lifter("mouse-top", tracks, "mouse", cache, interim, epochs)
        pts, names = lift_user(lifter, mapping, tracks), list(tracks.keypoints)
        frame = lifter.output_frame()
    ears = [names.index("leftear"), names.index("rightear")]
    base = names.index("tailbase")
    fraction, counted = fraction_above(pts, ears, base)
    height = float(np.nanmedian(pts[:, ears, 2].min(axis=1) - pts[:, base, 2]))
    return how, fraction, counted, tracks.n_frames, str(frame), height


# -- the table -------------------------------------------------------------------------------
def _f(x: float) -> str:
    return "-" if not np.isfinite(x) else f"{x:.3g}"


def print_table(rows: list[Row]) -> None:
    print("| task | lifter | frames | PA-MPJPE | seq. MPJPE | motion only (diag.) | note |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r.task} | {r.lifter} | {r.frames} | {_f(r.scores.pa_mpjpe)} | "
            f"{_f(r.scores.sequence_mpjpe)} | {_f(r.scores.motion_mpjpe)} | {r.note} |"
        )


def _verdict(ratios: list[float], target: float, strict: bool = False) -> str:
    if not all(np.isfinite(ratios)):
        return "-"
    met = all(r < target for r in ratios) if strict else all(r <= target for r in ratios)
    return "met" if met else "missed"


def print_ratios(rows: list[Row]) -> None:
    print()
    print(
        "| task | body-model lifter / trivial: PA, seq. (target) | "
        "body-model lifter / real-data lifter: PA, seq. (target) |"
    )
    print("|---|---|---|")
    for task in dict.fromkeys(r.task for r in rows):
        role = {r.role: r.scores for r in rows if r.task == task and r.role}
        b, t, p = role["body"], role["trivial"], role["pairs"]
        vs_t = [b.pa_mpjpe / t.pa_mpjpe, b.sequence_mpjpe / t.sequence_mpjpe]
        vs_p = [b.pa_mpjpe / p.pa_mpjpe, b.sequence_mpjpe / p.sequence_mpjpe]
        if task.startswith("fly"):
            first = f"< 1 vs the truth's own mean pose: {_verdict(vs_t, 1.0, strict=True)}"
            second = "none"
        else:
            first = f"<= {TARGET_TRIVIAL:g}: {_verdict(vs_t, TARGET_TRIVIAL)}"
            second = f"<= {TARGET_PAIRS:g}: {_verdict(vs_p, TARGET_PAIRS)}"
        print(
            f"| {task} | {vs_t[0]:.2f}, {vs_t[1]:.2f} ({first}) | "
            f"{vs_p[0]:.3g}, {vs_p[1]:.3g} ({second}) |"
        )


def _joint_list(names: list[str], body: dict, trivial: dict) -> str:
    return ", ".join(f"{k} {body[k]:.3g} ({trivial.get(k, float('nan')):.3g})" for k in names)


def print_joints(rows: list[Row], worst: int = 6) -> None:
    print()
    print("Per joint, body-model lifter's seq.-aligned error (the trivial row's), last frames:")
    for task in dict.fromkeys(r.task for r in rows):
        role = {r.role: r for r in rows if r.task == task and r.role}
        body, trivial = role["body"].joints, role["trivial"].joints
        largest = sorted(body, key=body.get, reverse=True)[:worst]
        excess = sorted(body, key=lambda k: body[k] - trivial.get(k, np.inf), reverse=True)
        print(
            f"- {task}: largest: {_joint_list(largest, body, trivial)}; most above trivial: "
            f"{_joint_list(excess[:worst], body, trivial)}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--interim", action="store_true", help="train the body-model lifters here (not built-ins)"
    )
    parser.add_argument("--epochs", type=int, default=30, help="interim lifters' epochs")
    parser.add_argument(
        "--cache",
        default=str(Path(tempfile.gettempdir()) / "bench_bodymodel_interim"),
        help="folder for interim lifters (reused between runs)",
    )
    parser.add_argument(
        "--mixed",
        type=int,
        default=0,
        metavar="N",
        help="fly: also the fly-side recipe with the first N real frames mixed in (0: not)",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument(
        "--only", default="mouse,fly,openfield", help="comma list of: mouse, fly, openfield"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    names = {name for _, name in MOUSE_CAMERAS} | {"fly-side"}
    interim = args.interim or not all(_shipped(name) for name in names)
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    only = {s.strip() for s in args.only.split(",")}
    rows: list[Row] = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_bodymodel_") as tmp:
        work = Path(tmp)
        if "mouse" in only:
            for camera, name in MOUSE_CAMERAS:
                print(f"mouse {camera} ...", flush=True)
                rows += mouse_rows(camera, name, work, cache, interim, args.epochs)
        if "fly" in only:
            print("fly ...", flush=True)
            rows += fly_rows(work, cache, interim, args.epochs, args.mixed)
        field = openfield(work, cache, interim, args.epochs) if "openfield" in only else None
    print()
    print_table(rows)
    print_ratios(rows)
    print_joints(rows)
    print()
    if "mouse" in only:
        sd, radius, frames = session_motion()
        print(
            f"sleap-anipose session: per-joint sd over {frames} frames {sd:.3g} units (root-relative, "
            f"per coordinate) against a median keypoint distance from Trunk of {radius:.3g}: it "
            "tests proportions and orientation, not pose."
        )
        print(f"Distance from Trunk, session mean | body model (scaled): {landmark_distances()}")
    if field is not None:
        how, fraction, counted, total, frame, height = field
        print(
            f"open-field DLC CSV through mouse-top ({how}, {frame} axes): both ears above the "
            f"tail base's plane (z up) in {fraction:.1%} of {counted} frames ({total} in the "
            f"file); lower ear's median height above the tail base {height:.3g} mm."
        )
    print(f"\n{time.perf_counter() - t0:.0f} s in all, torch threads {args.threads}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
