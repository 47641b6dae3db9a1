"""Pose interpolation: ego resampling and per-track object poses at a timestamp.

The rules are NVIDIA's (docs/world_scenario.md, "Interpolation"):

- Ego (ClipGT): positions linear per axis over µs, extrapolated linearly from the first/last two
  keyframes; orientations SLERP inside the keyframe range and constant angular velocity outside
  (ω = rotvec(R0⁻¹·R1)/Δt from the two end keyframes, R(t) = R_end·exp(ω·(t − t_end))).
- Objects: inside [t_first, t_last] the keyframe pair is i−1, i with i = max(searchsorted(ts, t), 1);
  centre and size linear, orientation SLERP. Outside, when |Δt| ≤ ``track.max_extrapolation_us``:
  constant linear and angular velocity from the two end keyframes, size held; else absent.

Choices where NVIDIA's code has no answer or crashes:

- A track (or ego trajectory) with one keyframe is held constant where it is defined
  (NVIDIA's RDS-HQ path raises IndexError for single-frame tracks; its ClipGT path drops them
  earlier, which :mod:`scene2world.scene.clipgt` still does).
- Quaternions are normalised and SLERP takes the shortest arc, as scipy's ``Slerp`` does.

Everything is vectorised over query timestamps; :func:`objects_at_timestamp` is the per-frame
call the scene model uses, :func:`track_poses` the batched one for a whole timeline.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from scene2world.errors import SceneError
from scene2world.scene.model import FrameObjects, Track
from scene2world.typing import NDArrayBool, NDArrayFloat, NDArrayInt

__all__ = [
    "interpolate_poses",
    "matrix_to_quat_xyzw",
    "objects_at_timestamp",
    "quat_slerp",
    "quat_xyzw_to_matrix",
    "track_poses",
]


def quat_xyzw_to_matrix(quats_xyzw: NDArrayFloat) -> NDArrayFloat:
    """Rotation matrices of quaternions.

    Args:
        quats_xyzw: (N, 4) quaternions (x, y, z, w), any non-zero norm.

    Returns:
        (N, 3, 3) rotation matrices.
    """
    q = np.asarray(quats_xyzw, dtype=np.float64).reshape(-1, 4)
    q = q / np.linalg.norm(q, axis=1, keepdims=True)
    x, y, z, w = q[:, 0], q[:, 1], q[:, 2], q[:, 3]
    out = np.empty((len(q), 3, 3))
    out[:, 0, 0] = 1 - 2 * (y * y + z * z)
    out[:, 0, 1] = 2 * (x * y - z * w)
    out[:, 0, 2] = 2 * (x * z + y * w)
    out[:, 1, 0] = 2 * (x * y + z * w)
    out[:, 1, 1] = 1 - 2 * (x * x + z * z)
    out[:, 1, 2] = 2 * (y * z - x * w)
    out[:, 2, 0] = 2 * (x * z - y * w)
    out[:, 2, 1] = 2 * (y * z + x * w)
    out[:, 2, 2] = 1 - 2 * (x * x + y * y)
    return out


def matrix_to_quat_xyzw(rotations: NDArrayFloat) -> NDArrayFloat:
    """Quaternions (x, y, z, w) with w ≥ 0 of rotation matrices.

    Args:
        rotations: (N, 3, 3) rotation matrices (or (N, 4, 4) poses; the rotation block is used).

    Returns:
        (N, 4) unit quaternions.
    """
    m = np.asarray(rotations, dtype=np.float64)
    m = m.reshape(-1, *m.shape[-2:])[:, :3, :3]
    # Shepperd's method, vectorised: pick the largest of w, x, y, z as the pivot.
    tr = np.trace(m, axis1=1, axis2=2)
    diag = np.stack([m[:, 0, 0], m[:, 1, 1], m[:, 2, 2], tr], axis=1)
    pivot = np.argmax(diag, axis=1)
    q = np.empty((len(m), 4))
    for k in range(4):
        sel = pivot == k
        if not np.any(sel):
            continue
        r = m[sel]
        if k == 3:
            s = np.sqrt(1.0 + tr[sel]) * 2
            q[sel] = np.stack(
                [(r[:, 2, 1] - r[:, 1, 2]) / s, (r[:, 0, 2] - r[:, 2, 0]) / s, (r[:, 1, 0] - r[:, 0, 1]) / s, s / 4],
                axis=1,
            )
        else:
            i, j, n = k, (k + 1) % 3, (k + 2) % 3
            s = np.sqrt(np.maximum(1.0 + r[:, i, i] - r[:, j, j] - r[:, n, n], 0.0)) * 2
            qi = s / 4
            qj = (r[:, j, i] + r[:, i, j]) / s
            qn = (r[:, n, i] + r[:, i, n]) / s
            qw = (r[:, n, j] - r[:, j, n]) / s
            block = np.empty((len(r), 4))
            block[:, i], block[:, j], block[:, n], block[:, 3] = qi, qj, qn, qw
            q[sel] = block
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    q[q[:, 3] < 0] *= -1
    return q


def _quat_mul(a: NDArrayFloat, b: NDArrayFloat) -> NDArrayFloat:
    """Hamilton product of (N, 4) xyzw quaternions."""
    ax, ay, az, aw = np.moveaxis(a, -1, 0)
    bx, by, bz, bw = np.moveaxis(b, -1, 0)
    return np.stack(
        [
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
            aw * bw - ax * bx - ay * by - az * bz,
        ],
        axis=-1,
    )


def _quat_power(q: NDArrayFloat, s: NDArrayFloat) -> NDArrayFloat:
    """q**s for (N, 4) unit quaternions with w ≥ 0 and (N,) exponents (rotation angle scaled by s)."""
    sin_half = np.linalg.norm(q[:, :3], axis=1)
    half = np.arctan2(sin_half, q[:, 3])  # half rotation angle, in [0, π/2] since w ≥ 0
    small = sin_half < 1e-15
    axis = np.where(small[:, None], 0.0, q[:, :3] / np.where(small, 1.0, sin_half)[:, None])
    new_half = half * s
    return np.concatenate([axis * np.sin(new_half)[:, None], np.cos(new_half)[:, None]], axis=1)


def _relative(q0: NDArrayFloat, q1: NDArrayFloat) -> NDArrayFloat:
    """Shortest-arc q0⁻¹·q1 (w ≥ 0) for (N, 4) unit quaternions."""
    conj = q0 * np.array([-1.0, -1.0, -1.0, 1.0])
    rel = _quat_mul(conj, q1)
    rel[rel[:, 3] < 0] *= -1
    return rel


def quat_slerp(q0: NDArrayFloat, q1: NDArrayFloat, alpha: NDArrayFloat) -> NDArrayFloat:
    """Shortest-arc spherical interpolation q0·(q0⁻¹q1)^α, row by row.

    ``alpha`` outside [0, 1] extrapolates at constant angular velocity.

    Args:
        q0: (N, 4) start quaternions (x, y, z, w).
        q1: (N, 4) end quaternions.
        alpha: (N,) fractions.

    Returns:
        (N, 4) unit quaternions.
    """
    q0 = np.asarray(q0, dtype=np.float64).reshape(-1, 4)
    q1 = np.asarray(q1, dtype=np.float64).reshape(-1, 4)
    q0 = q0 / np.linalg.norm(q0, axis=1, keepdims=True)
    q1 = q1 / np.linalg.norm(q1, axis=1, keepdims=True)
    alpha = np.broadcast_to(np.asarray(alpha, dtype=np.float64), (len(q0),))
    return _quat_mul(q0, _quat_power(_relative(q0, q1), alpha))


def _pair_and_alpha(timestamps_us: NDArrayInt, query_us: NDArrayInt) -> tuple[NDArrayInt, NDArrayFloat]:
    """Keyframe pair index i (pair i−1, i) and fraction α for each query, extrapolating at the ends.

    Inside the range: i = max(searchsorted(ts, t), 1). Before: i = 1; after: i = K−1. α is
    (t − ts[i−1]) / (ts[i] − ts[i−1]), so it is < 0 before and > 1 after the range.
    """
    k = len(timestamps_us)
    i = np.clip(np.searchsorted(timestamps_us, query_us), 1, k - 1)
    t0 = timestamps_us[i - 1]
    dt = (timestamps_us[i] - t0).astype(np.float64)
    alpha = (query_us - t0).astype(np.float64) / dt
    return i, alpha


def _poses_from(quats_xyzw: NDArrayFloat, positions: NDArrayFloat) -> NDArrayFloat:
    out = np.zeros((len(positions), 4, 4))
    out[:, :3, :3] = quat_xyzw_to_matrix(quats_xyzw)
    out[:, :3, 3] = positions
    out[:, 3, 3] = 1.0
    return out


def interpolate_poses(
    timestamps_us: NDArrayInt,
    positions_world: NDArrayFloat,
    quats_xyzw: NDArrayFloat,
    query_us: NDArrayInt,
) -> NDArrayFloat:
    """Ego-style resampling: linear positions and SLERP, both extrapolated beyond the keyframes.

    Args:
        timestamps_us: (K,) strictly increasing keyframe times, µs.
        positions_world: (K, 3) positions in the world frame, metres.
        quats_xyzw: (K, 4) body->world rotations.
        query_us: (F,) times to evaluate, µs (any order, any range).

    Returns:
        (F, 4, 4) body->world poses. With K = 1 the single pose is held.

    Raises:
        SceneError: on empty, mismatched or non-increasing keyframes.
    """
    ts = np.asarray(timestamps_us, dtype=np.int64).reshape(-1)
    pos = np.asarray(positions_world, dtype=np.float64).reshape(-1, 3)
    quats = np.asarray(quats_xyzw, dtype=np.float64).reshape(-1, 4)
    query = np.asarray(query_us, dtype=np.int64).reshape(-1)
    if len(ts) == 0 or len(pos) != len(ts) or len(quats) != len(ts):
        raise SceneError(
            f"pose keyframes must be non-empty and of equal length, got {len(ts)} timestamps, "
            f"{len(pos)} positions, {len(quats)} quaternions"
        )
    if np.any(np.diff(ts) <= 0):
        raise SceneError("pose keyframe timestamps must be strictly increasing")
    if len(ts) == 1:
        return np.repeat(_poses_from(quats, pos), len(query), axis=0)
    i, alpha = _pair_and_alpha(ts, query)
    positions = pos[i - 1] + alpha[:, None] * (pos[i] - pos[i - 1])
    # α outside [0, 1] continues the end pair's rotation: constant angular velocity, and
    # q[K-2]·rel^α equals q[K-1]·rel^(α-1), i.e. anchored at the end keyframe itself.
    q = quat_slerp(quats[i - 1], quats[i], alpha)
    return _poses_from(q, positions)


def track_poses(track: Track, query_us: NDArrayInt) -> tuple[NDArrayBool, NDArrayFloat, NDArrayFloat]:
    """Pose and size of one track at many timestamps.

    Args:
        track: the track.
        query_us: (F,) absolute times, µs.

    Returns:
        ``valid`` (F,) whether the object exists at each time; ``world_SE3_obj`` (F, 4, 4)
        object->world poses; ``lwh_m`` (F, 3) sizes. Rows where ``valid`` is False hold the
        nearest-end values and must be ignored.
    """
    query = np.asarray(query_us, dtype=np.int64).reshape(-1)
    ts = track.timestamps_us
    first, last = int(ts[0]), int(ts[-1])
    limit = int(track.max_extrapolation_us)
    valid = (query >= first - limit) & (query <= last + limit)
    if len(ts) == 1:
        world_SE3_obj = np.repeat(_poses_from(track.quats_xyzw, track.centers_world), len(query), axis=0)
        return valid, world_SE3_obj, np.repeat(track.lwh_m, len(query), axis=0)
    i, alpha = _pair_and_alpha(ts, query)
    centers = track.centers_world[i - 1] + alpha[:, None] * (track.centers_world[i] - track.centers_world[i - 1])
    # Size: linear inside, held outside.
    a_size = np.clip(alpha, 0.0, 1.0)[:, None]
    lwh = track.lwh_m[i - 1] + a_size * (track.lwh_m[i] - track.lwh_m[i - 1])
    quats = track.quats_xyzw
    q = quat_slerp(quats[i - 1], quats[i], alpha)  # α < 0 or > 1: constant angular velocity
    return valid, _poses_from(q, centers), lwh


class _StackedTracks:
    """All keyframes of a track tuple in flat arrays, for one vectorised lookup per frame.

    ``key`` = timestamp − track start + track index · span is globally sorted, so one
    ``searchsorted`` finds every track's keyframe pair at once.
    """

    def __init__(self, tracks: tuple[Track, ...]) -> None:
        self.tracks = tracks
        counts = np.array([len(t.timestamps_us) for t in tracks], dtype=np.int64)
        self.start = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        self.count = counts
        self.ts = np.concatenate([t.timestamps_us for t in tracks])
        self.centers = np.concatenate([t.centers_world for t in tracks])
        self.lwh = np.concatenate([t.lwh_m for t in tracks])
        quats = np.concatenate([t.quats_xyzw for t in tracks])
        self.quats = quats / np.linalg.norm(quats, axis=1, keepdims=True)
        self.first = self.ts[self.start]
        self.last = self.ts[self.start + counts - 1]
        self.limit = np.array([t.max_extrapolation_us for t in tracks], dtype=np.int64)
        self.span = int((self.last - self.first).max()) + 1
        owner = np.repeat(np.arange(len(tracks), dtype=np.int64), counts)
        self.key = self.ts - self.first[owner] + owner * self.span
        self.ids = tuple(t.track_id for t in tracks)
        self.types = tuple(t.object_type for t in tracks)

    def at(self, t_us: int) -> FrameObjects:
        present = np.flatnonzero((t_us >= self.first - self.limit) & (t_us <= self.last + self.limit))
        n = len(present)
        centers = np.empty((n, 3))
        lwh = np.empty((n, 3))
        quats = np.empty((n, 4))
        single = self.count[present] == 1
        if np.any(single):
            rows = self.start[present[single]]
            centers[single], lwh[single], quats[single] = self.centers[rows], self.lwh[rows], self.quats[rows]
        multi = present[~single]
        if len(multi):
            pos = np.searchsorted(self.key, (t_us - self.first[multi]) + multi * self.span)
            local = np.clip(pos - self.start[multi], 1, self.count[multi] - 1)
            i = self.start[multi] + local
            t0 = self.ts[i - 1]
            alpha = (t_us - t0).astype(np.float64) / (self.ts[i] - t0).astype(np.float64)
            centers[~single] = self.centers[i - 1] + alpha[:, None] * (self.centers[i] - self.centers[i - 1])
            a_size = np.clip(alpha, 0.0, 1.0)[:, None]
            lwh[~single] = self.lwh[i - 1] + a_size * (self.lwh[i] - self.lwh[i - 1])
            quats[~single] = quat_slerp(self.quats[i - 1], self.quats[i], alpha)
        return FrameObjects(
            track_ids=tuple(self.ids[k] for k in present),
            object_types=tuple(self.types[k] for k in present),
            world_SE3_obj=_poses_from(quats, centers),
            lwh_m=lwh,
        )


_STACK_CACHE: dict[int, _StackedTracks] = {}
_STACK_CACHE_SIZE = 8


def _stacked(tracks: tuple[Track, ...]) -> _StackedTracks:
    cached = _STACK_CACHE.get(id(tracks))
    if cached is not None and cached.tracks is tracks:
        return cached
    stacked = _StackedTracks(tracks)
    if len(_STACK_CACHE) >= _STACK_CACHE_SIZE:
        _STACK_CACHE.pop(next(iter(_STACK_CACHE)))
    _STACK_CACHE[id(tracks)] = stacked  # holds a reference, so the id stays unique while cached
    return stacked


def objects_at_timestamp(tracks: Sequence[Track], t_us: int) -> FrameObjects:
    """The objects defined at ``t_us``, in the order of ``tracks``.

    Same rules as :func:`track_poses`, evaluated for every track in one vectorised step (the
    flattened keyframes of a tracks tuple are cached, so calling this per frame is cheap).

    Args:
        tracks: the scene's tracks (loaders keep them sorted by track id, NVIDIA's draw order).
        t_us: absolute time, µs.

    Returns:
        The stacked poses (M, 4, 4), sizes (M, 3), ids and types of the M objects present.
    """
    tracks = tuple(tracks)
    if not tracks:
        return FrameObjects(track_ids=(), object_types=(), world_SE3_obj=np.zeros((0, 4, 4)), lwh_m=np.zeros((0, 3)))
    return _stacked(tracks).at(int(t_us))
