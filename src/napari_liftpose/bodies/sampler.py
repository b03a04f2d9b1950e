"""Plausible 3D pose sequences from a body model, for training lifters without a 3D library.

Each sequence is one behaviour of one individual, animated on the model's joint angles:

- gaits from the file's ``[gaits]`` (mouse: lateral-sequence ``walk``, ``trot``; fly: ``tripod``,
  ``tetrapod``): every leg's tip follows a stance/swing cycle at its phase, the body moves
  forward at the speed the stride implies and turns slowly;
- ``rear``: the body pitches up onto the hind legs (which turn back to stay under it), forelegs
  lift and reach;
- ``groom``: forelegs reach for the groom target (nose, head) and stroke at a few Hz; the body
  sits up part way (when the model can rear) and the head bends down;
- ``head_turn``: large, smooth head and neck turns; ``crouch``: legs fold and the back hunches;
  ``still``: posture only.

On top of every behaviour: small smooth changes of every joint (posture), tail swings (a wave
down the tail), and a different body for every sequence (overall size and each bone drawn from
the file's spread, left and right bones equal). Joint angles are clipped to the file's ranges;
the lowest foot of every frame touches the ground (z = 0) and bones that would go below it
(a tail in a rear) tilt up to lie on it; the heading is random.

Leg motion is computed once per model: a damped least-squares inverse of the leg's Jacobian at
rest maps a wanted tip displacement (forward/back, up) to joint angles, so a lab's own model
needs no hand-written gait tables beyond the phases.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from napari_liftpose.bodies.model import BodyModel, load_body_model, rotation_matrices
from napari_liftpose.poses import Poses

__all__ = ["SampledMotion", "sample_motion", "motion_to_coords", "sample_poses"]

_CHUNK_POSES = 20000  # forward kinematics in chunks of sequences: bounded memory


@dataclass
class SampledMotion:
    """Joint angles and body motion of ``n`` sequences of ``t`` frames.

    Attributes
    ----------
    behaviours : list of str
        Behaviour of each sequence.
    angles : np.ndarray
        Joint angles ``(n, t, keypoints, 3)`` in degrees (roll, pitch, yaw), within the ranges.
    lengths : np.ndarray
        Bone lengths ``(n, keypoints)`` of each sequence's individual (0 for the root).
    scale : np.ndarray
        Overall size factor ``(n,)`` of each individual (already in ``lengths``).
    heading : np.ndarray
        Body yaw ``(n, t)`` in radians about the world's z.
    body_pitch : np.ndarray
        Body pitch ``(n, t)`` in degrees, nose up positive (rearing).
    xy : np.ndarray
        Root position on the ground ``(n, t, 2)``.
    """

    behaviours: list[str]
    angles: np.ndarray
    lengths: np.ndarray
    scale: np.ndarray
    heading: np.ndarray
    body_pitch: np.ndarray
    xy: np.ndarray


def sample_poses(
    model: BodyModel | str,
    n_poses: int,
    *,
    seq_len: int = 64,
    fps: float | None = None,
    seed: int | np.random.Generator | None = 0,
    behaviours: Sequence[str] | None = None,
) -> Poses:
    """A 3D pose library drawn from a body model.

    Parameters
    ----------
    model : BodyModel or str
        The body model, or a name/path for :func:`load_body_model`.
    n_poses : int
        Poses wanted; rounded up to whole sequences of ``seq_len`` frames.
    seq_len : int
        Frames per sequence.
    fps : float, optional
        Frame rate of the sequences; the model's ``[motion] fps`` if omitted.
    seed : int or np.random.Generator, optional
        Seed (or generator): the same seed gives the same library.
    behaviours : sequence of str, optional
        Behaviours to draw from, equally often; default: the model's, with the file's weights.

    Returns
    -------
    Poses
        ``coords`` ``(seq_len, n_sequences, keypoints, 3)`` in the model's units and body axes
        (z up): every individual is one sequence (the training code takes each as one sequence;
        windows never cross from one into another). ``individuals`` are
        ``"<behaviour>_<number>"``; ``metadata`` holds ``body_model``, ``behaviours`` and
        ``seed``.
    """
    if isinstance(model, str):
        model = load_body_model(model)
    if n_poses < 1 or seq_len < 1:
        raise ValueError(f"n_poses and seq_len: expected >= 1, got {n_poses} and {seq_len}")
    fps = float(model.motion.fps if fps is None else fps)
    if not fps > 0:
        raise ValueError(f"fps: expected a positive number, got {fps}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    n_seq = -(-int(n_poses) // int(seq_len))
    motion = sample_motion(model, n_seq, seq_len, fps, rng, behaviours)
    coords = np.empty((n_seq, seq_len, len(model.keypoints), 3))
    step = max(1, _CHUNK_POSES // seq_len)
    for a in range(0, n_seq, step):
        coords[a : a + step] = motion_to_coords(model, motion, slice(a, a + step))
    return Poses(
        coords=coords.transpose(1, 0, 2, 3),
        keypoints=model.keypoints,
        edges=model.edges,
        individuals=[f"{b}_{i:05d}" for i, b in enumerate(motion.behaviours)],
        fps=fps,
        units=model.units,
        source_format="bodymodel",
        frame="world",
        metadata={
            "body_model": model.name,
            "behaviours": list(motion.behaviours),
            "seed": seed if isinstance(seed, int) else None,
        },
    )


def motion_to_coords(
    model: BodyModel, motion: SampledMotion, which: slice | None = None
) -> np.ndarray:
    """World coordinates ``(n, t, keypoints, 3)`` of (a slice of) sampled sequences.

    Forward kinematics in the body frame, then the body's pitch and heading, then the root's
    ground position; each frame is lifted so that its lowest leg tip has z = 0, bones other than
    legs that would go under the floor tilt up to lie on it, and a frame with a leg joint still
    under the floor is lifted until it is not.
    """
    which = slice(None) if which is None else which
    angles = motion.angles[which]
    local = model.forward_kinematics(angles, motion.lengths[which][:, None, :])
    pitch = np.deg2rad(motion.body_pitch[which])
    yaw = motion.heading[which]
    body = np.stack([np.zeros_like(pitch), -pitch, yaw], -1)  # nose up = -pitch about y
    rot = rotation_matrices(body)  # (n, t, 3, 3)
    world = np.einsum("ntij,ntkj->ntki", rot, local)
    world[..., :2] += motion.xy[which][:, :, None, :]
    feet = _leg_tips(model) or slice(None)
    world[..., 2] -= world[..., feet, 2].min(axis=-1, keepdims=True)
    world = _above_floor(model, world)
    world[..., 2] -= world[..., 2].min(axis=-1, keepdims=True)  # a knee below the floor
    return world


def _above_floor(model: BodyModel, world: np.ndarray) -> np.ndarray:
    """Bones that would go below the ground (a tail, a nose) turn up to lie on it.

    The pose is rebuilt from the root down: a bone whose end would be under z = 0 is tilted up
    just enough (its length kept), and everything below it follows.
    """
    parents = model.parents
    bones = world - world[..., np.where(parents < 0, np.arange(len(parents)), parents), :]
    legs = {k for leg in model.motion.legs for k in model.chain(leg)}
    out = world.copy()
    for k in model.order:
        p = parents[k]
        if p < 0:
            continue
        if k in legs:  # legs stand on the floor; they are not laid on it
            out[..., k, :] = out[..., p, :] + bones[..., k, :]
            continue
        bone = bones[..., k, :]
        need = -out[..., p, 2]
        low = bone[..., 2] < need
        if low.any():
            length = np.linalg.norm(bone, axis=-1)
            z = np.minimum(need, length)
            flat = np.linalg.norm(bone[..., :2], axis=-1)
            keep = np.sqrt(np.maximum(length**2 - z**2, 0.0))
            with np.errstate(invalid="ignore", divide="ignore"):
                ratio = np.where(flat > 0, keep / flat, 0.0)
            fixed = np.concatenate([bone[..., :2] * ratio[..., None], z[..., None]], -1)
            bone = np.where(low[..., None], fixed, bone)
        out[..., k, :] = out[..., p, :] + bone
    return out


def _leg_tips(model: BodyModel) -> list[int]:
    """The tip keypoint of every leg: what stands on the ground."""
    return [model.chain(leg)[-1] for leg in model.motion.legs]


# -- the motion ------------------------------------------------------------------------------


class _Plan:
    """Per-model quantities the sampler needs: joint ranges, legs and their inverse Jacobians."""

    def __init__(self, model: BodyModel):
        self.model = model
        limits = model.angle_limits  # (k, 3, 2)
        self.lo, self.hi = limits[..., 0], limits[..., 1]
        self.mid = (self.lo + self.hi) / 2
        self.half = (self.hi - self.lo) / 2
        self.free = self.half > 0
        motion = model.motion
        self.legs = {leg: model.chain(leg) for leg in motion.legs}
        self.rest = model.forward_kinematics()
        self.leg_len = {
            leg: float(model.lengths[chain[1:]].sum()) if len(chain) > 1 else 0.0
            for leg, chain in self.legs.items()
        }
        self.inverse = {leg: self._inverse(chain) for leg, chain in self.legs.items()}
        self.groom = {}
        if motion.groom_target is not None:
            target = self.rest[model.index(motion.groom_target)]
            for leg in motion.front_legs:
                self.groom[leg] = self._reach(self.legs[leg], target)
        self.spine = [model.index(n) for n in motion.spine]
        self.neck = [model.index(n) for n in motion.neck]
        self.tail = [model.index(n) for n in motion.tail]
        dirs = model.directions
        # pitch that lowers a bone's far end: + for a forward bone, - for a backward one
        self.curl = {k: 1.0 if dirs[k, 0] >= 0 else -1.0 for k in self.spine + self.neck}

    def dofs(self, chain: list[int]) -> list[tuple[int, int]]:
        return [(k, a) for k in chain for a in range(3) if self.free[k, a]]

    def jacobian(self, chain: list[int], angles: np.ndarray) -> np.ndarray:
        """d(tip position)/d(angle in degrees) ``(3, n_dofs)`` at ``angles`` ``(k, 3)``."""
        dofs = self.dofs(chain)
        tip = chain[-1]
        eps = 0.5
        probes = np.repeat(angles[None], 2 * len(dofs), axis=0)
        for i, (k, a) in enumerate(dofs):
            probes[2 * i, k, a] += eps
            probes[2 * i + 1, k, a] -= eps
        pos = self.model.forward_kinematics(probes)[:, tip]
        return ((pos[0::2] - pos[1::2]) / (2 * eps)).T

    def _inverse(self, chain: list[int]) -> np.ndarray:
        """Damped least-squares inverse ``(n_dofs, 3)`` of the leg's Jacobian at rest."""
        if not self.dofs(chain):
            return np.zeros((0, 3))
        jac = self.jacobian(chain, np.zeros((len(self.model.keypoints), 3)))
        damp = (0.05 * np.linalg.norm(jac)) ** 2
        return jac.T @ np.linalg.inv(jac @ jac.T + damp * np.eye(3))

    def _reach(self, chain: list[int], target: np.ndarray) -> np.ndarray:
        """Joint angles ``(k, 3)`` that bring the leg's tip as near ``target`` as ranges allow.

        Iterated damped least squares; the tip keeps a little of its side offset.
        """
        angles = np.zeros((len(self.model.keypoints), 3))
        dofs = self.dofs(chain)
        if not dofs:
            return angles
        tip = chain[-1]
        goal = target.copy()
        goal[1] = 0.3 * self.rest[tip, 1]
        idx = tuple(np.array(dofs).T)
        for _ in range(40):
            pos = self.model.forward_kinematics(angles)[tip]
            jac = self.jacobian(chain, angles)
            damp = (0.05 * np.linalg.norm(jac)) ** 2
            step = jac.T @ np.linalg.solve(jac @ jac.T + damp * np.eye(3), goal - pos)
            angles[idx] += np.clip(step, -10, 10)
            angles = np.clip(angles, self.lo, self.hi)
        return angles


def sample_motion(
    model: BodyModel,
    n_sequences: int,
    seq_len: int,
    fps: float,
    rng: np.random.Generator,
    behaviours: Sequence[str] | None = None,
) -> SampledMotion:
    """Joint angles, bodies and body motion of ``n_sequences`` sequences (see the module doc).

    Raises
    ------
    ValueError
        If a behaviour asked for is not one the model has.
    """
    plan = _Plan(model)
    known = model.behaviours
    if behaviours is None:
        names = [b for b in known if model.motion.behaviours[b] > 0]
        weights = np.array([model.motion.behaviours[b] for b in names])
    else:
        names = list(dict.fromkeys(behaviours))
        unknown = [b for b in names if b not in known]
        if unknown or not names:
            raise ValueError(
                f"behaviours: {unknown[0] if unknown else 'none'!r} is not a behaviour of body "
                f"model {model.name!r} (it has {', '.join(known)})"
            )
        weights = np.ones(len(names))
    n, t_len, k = int(n_sequences), int(seq_len), len(model.keypoints)
    which = rng.choice(len(names), size=n, p=weights / weights.sum())
    chosen = [names[i] for i in which]
    t = np.arange(t_len) / fps  # seconds
    angles = np.zeros((n, t_len, k, 3))
    pitch = np.zeros((n, t_len))
    speed = np.zeros((n, t_len))
    turn_rate = np.zeros((n, t_len))

    # posture: every free joint wanders smoothly around mid-range (about a sixth of its half-range)
    angles += plan.mid + 0.35 * plan.half * _smooth(rng, (n, k, 3), t, (0.1, 1.0))
    lengths, scale = _bodies(model, n, rng)
    motion = model.motion
    for b in dict.fromkeys(chosen):  # first-drawn order: the same whatever PYTHONHASHSEED is
        sel = np.flatnonzero(np.array(chosen) == b)
        if b in motion.gaits:
            _gait(plan, motion.gaits[b], sel, t, rng, angles, speed, scale)
            turn_rate[sel] = np.deg2rad(40.0) * _smooth(rng, (len(sel),), t, (0.05, 0.5))
        elif b == "rear":
            _rear(plan, sel, t, rng, angles, pitch, 1.0)
        elif b == "groom":
            _groom(plan, sel, t, rng, angles, pitch)
        elif b == "head_turn":
            _head_turn(plan, sel, t, rng, angles)
        elif b == "crouch":
            _crouch(plan, sel, t, rng, angles)
    _tail(plan, n, t, rng, angles)
    angles = np.clip(angles, plan.lo, plan.hi)
    heading = rng.uniform(0, 2 * np.pi, (n, 1)) + np.cumsum(turn_rate, axis=1) / fps
    step = speed[..., None] / fps * np.stack([np.cos(heading), np.sin(heading)], -1)
    xy = np.cumsum(step, axis=1) - step[:, :1]
    return SampledMotion(chosen, angles, lengths, scale, heading, pitch, xy)


def _smooth(rng: np.random.Generator, shape: tuple, t: np.ndarray, hz: tuple) -> np.ndarray:
    """Smooth random signals ``(shape[0], len(t), *shape[1:])`` in [-1, 1].

    Random values at knots ``0.5 / hz[1]`` seconds apart (``hz[0]`` is not used below that),
    blended by a cubic B-spline: one small matrix product however many signals.
    """
    gap = 0.5 / hz[1]
    n_knots = int(np.ceil((t[-1] - t[0]) / gap)) + 4 if len(t) else 4
    values = rng.uniform(-1, 1, (n_knots, int(np.prod(shape))))
    u = (t - t[0]) / gap + rng.uniform(0, 1)  # random knot offset
    i = np.floor(u).astype(int)
    f = u - i
    basis = np.zeros((len(t), n_knots))
    w = (
        np.stack([(1 - f) ** 3, 3 * f**3 - 6 * f**2 + 4, -3 * f**3 + 3 * f**2 + 3 * f + 1, f**3])
        / 6
    )
    for j in range(4):
        np.add.at(basis, (np.arange(len(t)), np.minimum(i + j, n_knots - 1)), w[j])
    out = (basis @ values).reshape(len(t), *shape)
    return np.moveaxis(out, 0, 1)


def _bodies(model: BodyModel, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Bone lengths ``(n, k)`` and size factors ``(n,)``: one individual per sequence.

    Each bone is drawn within 2.5 standard deviations of its mean, the whole body scaled by a
    factor within 3 ``size_sd`` of 1; the right bone of a left/right pair copies the left's.
    """
    sd = model.size_sd
    scale = np.clip(1 + sd * rng.standard_normal(n), 1 - 3 * sd, 1 + 3 * sd)
    z = np.clip(rng.standard_normal((n, len(model.keypoints))), -2.5, 2.5)
    for a, b in model.pairs:
        z[:, model.index(b)] = z[:, model.index(a)]
    bones = model.lengths + z * model.length_sds
    return bones * scale[:, None], scale


def _leg_angles(plan: _Plan, leg: str, disp: np.ndarray, angles: np.ndarray, sel) -> None:
    """Add the joint angles that move ``leg``'s tip by ``disp`` ``(len(sel), t, 3)``."""
    dofs = plan.dofs(plan.legs[leg])
    if not dofs:
        return
    delta = disp @ plan.inverse[leg].T  # (s, t, n_dofs)
    ks, axes = np.array(dofs).T
    angles[sel[:, None], :, ks, axes] += np.moveaxis(delta, -1, 0).transpose(1, 0, 2)


def _gait(plan, gait, sel, t, rng, angles, speed, scale) -> None:
    """Stance/swing cycles of every leg at the gait's phases; the body's forward speed."""
    s = len(sel)
    dt = t[1] - t[0] if len(t) > 1 else 0.0
    freq = rng.uniform(*gait.frequency_hz, (s, 1)) * (1 + 0.1 * _smooth(rng, (s,), t, (0.05, 0.3)))
    cycle = np.cumsum(freq, axis=1) * dt + rng.uniform(0, 1, (s, 1))
    stride = gait.stride * rng.uniform(0.7, 1.15, (s, 1))
    lift = rng.uniform(0.08, 0.15, (s, 1))
    for leg, phase in gait.phases.items():
        ph = (cycle + phase) % 1.0
        stance = ph < gait.duty
        u = np.where(stance, ph / gait.duty, (ph - gait.duty) / (1 - gait.duty))
        fore = np.where(stance, 1 - 2 * u, -np.cos(np.pi * u))  # +1 front .. -1 back
        up = np.where(stance, 0.0, np.sin(np.pi * u))
        length = plan.leg_len[leg]
        disp = np.zeros((s, len(t), 3))
        disp[..., 0] = fore * stride * length / 2
        disp[..., 2] = up * lift * length
        _leg_angles(plan, leg, disp, angles, sel)
    mean_leg = np.mean([plan.leg_len[leg] for leg in gait.phases]) if gait.phases else 0.0
    speed[sel] = stride * mean_leg * freq / gait.duty * scale[sel, None]


def _ramp(rng: np.random.Generator, s: int, t: np.ndarray) -> np.ndarray:
    """Smooth 0 -> 1 (-> 0 for some) envelopes ``(s, t)``: a behaviour starting and ending."""
    dur = t[-1] if len(t) > 1 else 1.0
    start = rng.uniform(-0.3, 0.3, (s, 1)) * dur
    rise = rng.uniform(0.1, 0.3, (s, 1)) * dur
    end = rng.uniform(0.8, 1.6, (s, 1)) * dur
    up = np.clip((t - start) / rise, 0, 1)
    down = np.clip((end - t) / rise, 0, 1)
    env = np.minimum(up, down)
    return env * env * (3 - 2 * env)


def _rear(plan, sel, t, rng, angles, pitch, amount: float) -> None:
    """Body up on the hind legs (they turn back to stay under it), forelegs lift and reach."""
    motion = plan.model.motion
    s = len(sel)
    env = _ramp(rng, s, t) * amount
    deg = rng.uniform(*motion.rear_pitch_deg, (s, 1)) * env  # (s, t)
    pitch[sel] += deg
    for leg in motion.hind_legs:
        chain = plan.legs[leg]
        k = max(chain, key=lambda j: plan.half[j, 1])  # the leg's widest pitch joint
        angles[sel, :, k, 1] += deg
    for leg in motion.front_legs:
        length = plan.leg_len[leg]
        disp = np.zeros((s, len(t), 3))
        disp[..., 0] = 0.25 * length * env
        disp[..., 2] = 0.35 * length * env
        _leg_angles(plan, leg, disp, angles, sel)
    for k in plan.neck:  # look ahead rather than at the sky
        angles[sel, :, k, 1] += 0.25 * deg * plan.curl[k]
    left = deg.copy()  # the tail (a backward chain) turns up, as far as its joints go, to lie back
    for k in plan.tail:
        take = np.clip(left, 0, max(plan.hi[k, 1], 0))
        angles[sel, :, k, 1] += take
        left -= take


def _groom(plan, sel, t, rng, angles, pitch) -> None:
    """Forelegs to the groom target with fast strokes; sit up part way; head down."""
    motion = plan.model.motion
    s = len(sel)
    if motion.rear_pitch_deg[1] > 0:
        _rear(plan, sel, t, rng, angles, pitch, rng.uniform(0.4, 0.8))
    env = _ramp(rng, s, t)
    freq = rng.uniform(*motion.groom_hz, (s, 1))
    phase = rng.uniform(0, 2 * np.pi, (s, 1))
    for i, leg in enumerate(motion.front_legs):
        target = plan.groom[leg]  # (k, 3)
        stroke = 0.8 + 0.2 * np.sin(2 * np.pi * freq * t + phase + i * np.pi * rng.uniform(0, 1))
        weight = (env * stroke)[..., None, None]  # (s, t, 1, 1)
        chain = plan.legs[leg]
        angles[sel[:, None], :, chain] += (weight * target[chain]).transpose(0, 2, 1, 3)
    for k in plan.neck:
        angles[sel, :, k, 1] += 0.6 * plan.half[k, 1] * env * plan.curl[k]


def _head_turn(plan, sel, t, rng, angles) -> None:
    """Large smooth turns of the neck joints (yaw and pitch, some roll)."""
    s = len(sel)
    for k in plan.neck:
        wave = _smooth(rng, (s, 3), t, (0.2, 1.2))  # (s, t, 3)
        angles[sel, :, k, :] += 1.5 * plan.half[k] * wave


def _crouch(plan, sel, t, rng, angles) -> None:
    """Legs fold (tips towards the body), back hunches, head lowers."""
    s = len(sel)
    env = _ramp(rng, s, t) * rng.uniform(0.4, 1.0, (s, 1))
    for leg in plan.model.motion.legs:
        disp = np.zeros((s, len(t), 3))
        disp[..., 2] = 0.3 * plan.leg_len[leg] * env
        _leg_angles(plan, leg, disp, angles, sel)
    for k in plan.spine + plan.neck:
        angles[sel, :, k, 1] += 0.6 * plan.half[k, 1] * env * plan.curl[k]


def _tail(plan, n, t, rng, angles) -> None:
    """Side-to-side waves travelling down the tail, and a slow up/down drift."""
    if not plan.tail:
        return
    amp = rng.uniform(0.1, 0.7, (n, 1))
    freq = rng.uniform(0.3, 2.0, (n, 1))
    phase = rng.uniform(0, 2 * np.pi, (n, 1))
    drift = _smooth(rng, (n,), t, (0.05, 0.5))
    for i, k in enumerate(plan.tail):
        wave = np.sin(2 * np.pi * freq * t + phase - 0.7 * i)
        angles[:, :, k, 2] += amp * plan.half[k, 2] * wave
        angles[:, :, k, 1] += 0.4 * plan.half[k, 1] * drift
