"""The pose sampler: bones within the spread, angles within range, symmetry, seeds, behaviours."""

from __future__ import annotations

import numpy as np
import pytest

from napari_liftpose.bodies import load_body_model, sample_motion, sample_poses
from napari_liftpose.bodies.sampler import motion_to_coords


@pytest.fixture(scope="module", params=["mouse", "fly"])
def model(request):
    return load_body_model(request.param)


@pytest.fixture(scope="module")
def library(model):
    return sample_poses(model, 6000, seq_len=40, seed=3)


def test_library_shape_and_metadata(model, library):
    assert library.coords.shape == (40, 150, len(model.keypoints), 3)
    assert library.keypoints == model.keypoints and library.units == "mm"
    assert library.fps == model.motion.fps and library.frame == "world"
    assert np.isfinite(library.coords).all()
    assert library.metadata["body_model"] == model.name
    behaviours = library.metadata["behaviours"]
    assert [name.rsplit("_", 1)[0] for name in library.individuals] == behaviours
    assert set(behaviours) == set(model.behaviours)  # every behaviour shows up in 150 sequences


def test_bone_lengths_within_the_stated_spread(model, library):
    lengths = model.bone_lengths(library.coords)  # (frames, sequences, keypoints)
    bones = model.parents >= 0
    # rigid within a sequence: the same individual in every frame
    spread_in_time = np.nanstd(lengths[..., bones], axis=0)
    assert spread_in_time.max() < 1e-6 * model.lengths.max()
    ratio = lengths[0][:, bones] / model.lengths[bones]
    sd = model.size_sd
    cv = model.length_sds[bones] / model.lengths[bones]
    low = (1 - 3 * sd) * (1 - 2.5 * cv) - 1e-9
    high = (1 + 3 * sd) * (1 + 2.5 * cv) + 1e-9
    assert ((ratio >= low) & (ratio <= high)).all()
    # and the spread between individuals is the stated one, not zero and not more
    total = np.sqrt(sd**2 + cv**2)
    measured = ratio.std(axis=0)
    assert (measured > 0.5 * total).all() and (measured < 1.5 * total).all()


def test_joint_angles_within_the_ranges_and_coords_follow_them(model):
    rng = np.random.default_rng(0)
    motion = sample_motion(model, 60, 30, model.motion.fps, rng)
    limits = model.angle_limits
    assert (motion.angles >= limits[..., 0] - 1e-9).all()
    assert (motion.angles <= limits[..., 1] + 1e-9).all()
    free = limits[..., 1] > limits[..., 0]
    assert motion.angles[..., free].std(axis=(0, 1)).min() > 0  # every free axis moves
    # each leg's shape in the world is the forward kinematics of those angles (legs are never
    # tilted onto the floor, unlike a tail or a nose)
    coords = motion_to_coords(model, motion)
    local = model.forward_kinematics(motion.angles, motion.lengths[:, None, :])
    for leg in model.motion.legs:
        chain = model.chain(leg)
        start, tip = chain[0], chain[-1]
        d_world = np.linalg.norm(coords[..., tip, :] - coords[..., start, :], axis=-1)
        d_local = np.linalg.norm(local[..., tip, :] - local[..., start, :], axis=-1)
        np.testing.assert_allclose(d_world, d_local, atol=1e-9)
        assert d_local.std() > 0  # and the leg moves


def test_left_and_right_bones_are_equal(model, library):
    lengths = model.bone_lengths(library.coords[0])
    for a, b in model.pairs:
        np.testing.assert_allclose(lengths[:, model.index(a)], lengths[:, model.index(b)])


def test_on_the_ground_and_heading_free(model, library):
    z = library.coords[..., 2]
    assert z.min() > -1e-9
    tips = [model.chain(leg)[-1] for leg in model.motion.legs]
    standing = np.isclose(library.coords[..., tips, 2].min(-1), 0.0, atol=1e-9)
    assert standing.mean() > 0.7  # a foot on the ground (else a knee or ankle touches it)
    head = library.coords[:, :, model.index(model.motion.neck[0])] - library.coords[:, :, 0]
    yaw = np.arctan2(head[0, :, 1], head[0, :, 0])
    counts = np.histogram(yaw, bins=4, range=(-np.pi, np.pi))[0]
    assert counts.min() > 10  # headings in every quadrant


def test_reproducible_with_a_seed(model):
    a = sample_poses(model, 500, seq_len=50, seed=11)
    b = sample_poses(model, 500, seq_len=50, seed=11)
    c = sample_poses(model, 500, seq_len=50, seed=12)
    np.testing.assert_array_equal(a.coords, b.coords)
    assert a.individuals == b.individuals
    assert not np.allclose(a.coords, c.coords)


def test_behaviours_differ(model):
    def root_height_and_speed(behaviour):
        lib = sample_poses(model, 2000, seq_len=50, seed=5, behaviours=[behaviour])
        root = lib.coords[:, :, model.index(model.root)]
        speed = np.linalg.norm(np.diff(root[..., :2], axis=0), axis=-1).mean() * lib.fps
        return np.median(root[..., 2]), speed

    still_height, still_speed = root_height_and_speed("still")
    gait = next(iter(model.motion.gaits))
    _, gait_speed = root_height_and_speed(gait)
    crouch_height, _ = root_height_and_speed("crouch")
    assert still_speed == 0 and gait_speed > 0.5 * model.lengths.sum() / 10  # it walks
    assert crouch_height < still_height  # it crouches
    if "rear" in model.behaviours:
        rear_height, _ = root_height_and_speed("rear")
        assert rear_height > still_height * 1.1
        lib = sample_poses(model, 2000, seq_len=50, seed=5, behaviours=["rear"])
        nose = lib.coords[:, :, model.index("nose"), 2]
        assert np.percentile(nose, 90) > 1.5 * np.median(model.mean_pose()[model.index("nose"), 2])


@pytest.mark.parametrize(
    "gait, same, opposite",
    [("trot", "right_hindpaw", "right_forepaw"), ("walk", None, "right_forepaw")],
)
def test_gait_legs_alternate(gait, same, opposite):
    """Trot: diagonal paws move together, the two forepaws in turn; walk: forepaws in turn."""
    mouse = load_body_model("mouse")
    lib = sample_poses(mouse, 3000, seq_len=60, seed=2, behaviours=[gait])
    body = lib.coords[:, :, mouse.index("spine_mid")]

    def forward(name):  # paw position along the body's heading, relative to the body
        rel = lib.coords[:, :, mouse.index(name)] - body
        heading = lib.coords[:, :, mouse.index("spine_front")] - body
        heading /= np.linalg.norm(heading[..., :2], axis=-1, keepdims=True)
        x = (rel[..., :2] * heading[..., :2]).sum(-1)
        return x - x.mean(0)

    def corr(a, b):
        return np.median((a * b).sum(0) / np.sqrt((a * a).sum(0) * (b * b).sum(0)))

    left = forward("left_forepaw")
    assert corr(left, forward(opposite)) < -0.5
    if same:
        assert corr(left, forward(same)) > 0.5


def test_unknown_behaviour_is_refused():
    with pytest.raises(ValueError, match="'gallop' is not a behaviour of body model 'mouse'"):
        sample_poses("mouse", 10, behaviours=["gallop"])


def test_the_same_seed_gives_the_same_library_in_every_process():
    """Nothing may follow Python's per-process string hashing (set order): built-in lifters
    are rebuilt bit for bit from the seed alone."""
    import subprocess
    import sys

    code = (
        "import hashlib; from napari_liftpose.bodies.sampler import sample_poses; "
        "print(hashlib.sha256(sample_poses('mouse', 3000, seed=3).coords.tobytes()).hexdigest())"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**__import__("os").environ, "PYTHONHASHSEED": str(hash_seed)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for hash_seed in (1, 2, 3)
    }
    assert len(digests) == 1
