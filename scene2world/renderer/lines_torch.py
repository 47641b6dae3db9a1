"""The static map's per-frame geometry in torch: f-theta projection and line expansion (docs/speed.md).

The same arithmetic as the numpy path (:mod:`scene2world.renderer.camera`,
:mod:`scene2world.renderer.lines`, ``frame.build_frame``), op for op in the same precisions, on a
torch device: CUDA when present (``device="auto"``), else the CPU. Only the ``nvidia`` look's
static lines run here (they are most of a frame's work); triangles, traffic lights and boxes stay
in numpy. The world-space points, segment index, colours and widths go to the device once per clip
(:class:`TorchStaticLines`); per frame only the 4x4 pose goes up and the finished mesh comes back.

Results agree with numpy to float rounding: elementwise float64 arithmetic is the same IEEE
arithmetic, but ``atan2``/``hypot``, the 3x3 transform and CUDA's parallel ``cumsum`` may differ in
the last bit, which can move a vertex by ~1e-12 px or, rarely, flip a line-plan threshold (one loft
rim more or less). ``tests/renderer/test_lines_torch.py`` compares both paths.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from scene2world.errors import RenderError
from scene2world.renderer.batch import FAR_CLIP_M, NEAR_CLIP_M, DrawBatch
from scene2world.renderer.camera import FThetaCamera
from scene2world.renderer.lines import (
    CAP_CULL_MAX_BEND_RAD,
    CAP_CULL_MAX_STEP_PX,
    CAP_CULL_MIN_WEDGE_PX2,
    CAP_FAN_TRIANGLES,
    CAP_SEGMENTS,
    LOFT_DEPTH_BIAS,
    LOFT_MARGIN_PX,
    LOFT_MAX_DEPTH_ERROR_M,
    LOFT_MAX_DEPTH_STEP_M,
    LOFT_MAX_STEP,
    LOFT_MAX_TURN_RAD,
    LOFT_SPACING,
    VERTICES_PER_SEGMENT,
    _cap_rim_fan,
    _line_faces_template,
    _line_vertex_weights,
)
from scene2world.renderer.style import FAR_M

_COS_MAX_BEND = float(np.cos(CAP_CULL_MAX_BEND_RAD))


def torch_device(name: str = "auto") -> Any:
    """The torch device for ``name``: ``auto`` = ``cuda`` when available, else ``cpu``."""
    try:
        import torch
    except ImportError as e:  # torch is a dependency; a broken install names itself
        raise RenderError(f"render.geometry 'torch' needs torch: {e}") from e
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RenderError("render.geometry_device 'cuda' but torch sees no CUDA device (use 'auto' or 'cpu')")
    return torch.device(name)


@dataclass(frozen=True, eq=False)
class TorchStaticLines:
    """A clip's static line geometry on a torch device (``StaticGeometry``'s line arrays)."""

    device: Any
    points_world: Any
    """(P, 3) float64 distinct end points, FLU world metres."""
    i0: Any
    """(S,) int64 start point of each segment."""
    i1: Any
    """(S,) int64 end point of each segment."""
    colors: Any
    """(S, 3) float64 base colours 0..1."""
    widths: Any
    """(S,) float64 nominal widths (px)."""

    @classmethod
    def upload(
        cls, points_world: np.ndarray, line_index: np.ndarray, colors: np.ndarray, widths: np.ndarray, device: Any
    ) -> TorchStaticLines:
        """Copy the line arrays of a ``StaticGeometry`` to ``device`` (once per clip)."""
        import torch

        def f64(a: np.ndarray) -> Any:
            return torch.as_tensor(np.ascontiguousarray(a, dtype=np.float64), device=device)

        index = torch.as_tensor(np.ascontiguousarray(line_index, dtype=np.int64), device=device)
        return cls(
            device, f64(points_world), index[:, 0].contiguous(), index[:, 1].contiguous(), f64(colors), f64(widths)
        )


@dataclass(frozen=True, eq=False)
class _CameraConsts:
    """An :class:`FThetaCamera`'s projection constants as Python floats (no per-frame upload)."""

    fw: tuple[float, ...]
    a: tuple[float, float, float, float]
    cx: float
    cy: float
    a_max: float
    r_max: float
    slope: float
    width: int
    height: int


@cache
def _consts(camera: FThetaCamera) -> _CameraConsts:
    a = camera.A
    return _CameraConsts(
        tuple(float(c) for c in camera.fw_poly),
        (float(a[0, 0]), float(a[0, 1]), float(a[1, 0]), float(a[1, 1])),
        float(camera.cx_px),
        float(camera.cy_px),
        float(camera.max_ray_angle_rad),
        float(camera.max_ray_distortion[0]),
        float(camera.max_ray_distortion[1]),
        int(camera.width_px),
        int(camera.height_px),
    )


def project_torch(camera: FThetaCamera, p: Any) -> Any:
    """``FThetaCamera.project`` of (N, 3) float64 camera-frame points on their device: (N, 2) pixels."""
    import torch

    k = _consts(camera)
    rho = torch.hypot(p[:, 0], p[:, 1])
    alpha = torch.atan2(rho, p[:, 2])
    inside = alpha <= k.a_max
    x = torch.clamp(alpha, max=k.a_max)
    poly = torch.zeros_like(x)
    for c in k.fw[::-1]:  # Horner, as camera._polyval
        poly = poly * x + c
    delta = torch.where(inside, poly, k.r_max + (alpha - k.a_max) * k.slope)
    on_axis = rho <= 0.0
    scale = torch.where(on_axis, 0.0, delta / torch.where(on_axis, 1.0, rho))
    x_px, y_px = p[:, 0] * scale, p[:, 1] * scale
    u = x_px * k.a[0] + y_px * k.a[1] + k.cx
    v = x_px * k.a[2] + y_px * k.a[3] + k.cy
    return torch.stack([u, v], dim=1)


@cache
def _weights(device: Any) -> Any:
    import torch

    return torch.as_tensor(_line_vertex_weights(), device=device)


@cache
def _faces_template(device: Any) -> Any:
    import torch

    return torch.as_tensor(_line_faces_template().astype(np.int64), device=device)


@cache
def _small(device: Any) -> dict[str, Any]:
    """Small constant tensors, made once per device (no host-to-device copy per frame)."""
    import torch

    return {
        "tri0": torch.tensor([0, 1, 2], device=device),
        "tri1": torch.tensor([1, 2, 3], device=device),
        "kinds": tuple(torch.tensor(v, device=device) for v in (1, 2, 0)),
    }


@cache
def _rim_fan(device: Any) -> Any:
    import torch

    return torch.as_tensor(_cap_rim_fan().astype(np.int64), device=device)


def _positions(q0: Any, q1: Any, normal: Any, along: Any, cols: slice) -> Any:
    """(k, c, 3) float32 vertices ``cols`` of the shader's template (``lines._line_positions``)."""
    import torch

    w = _weights(q0.device)[:, cols]
    k = q0.shape[0]
    zero = torch.zeros(k, dtype=torch.float64, device=q0.device)
    out = torch.empty((k, w.shape[1], 3), dtype=torch.float32, device=q0.device)
    offsets = ((normal[:, 0], along[:, 0]), (normal[:, 1], along[:, 1]), (zero, zero))
    for axis, (off_n, off_d) in enumerate(offsets):
        features = torch.stack([q0[:, axis], q1[:, axis], off_n, off_d], dim=1).to(torch.float32)
        out[:, :, axis] = features @ w
    return out


def static_lines_torch(
    lines: TorchStaticLines, cam_SE3_world: np.ndarray, camera: FThetaCamera, *, cull_caps: bool = True
) -> DrawBatch:
    """The ``static_lines`` batch of one camera-frame (``nvidia`` look), computed on ``lines.device``.

    Same steps as ``frame.build_frame``: transform all points, drop segments wholly nearer than the
    near plane or beyond the far one, project the points of the others, expand them
    (``lines.expand_lines``, with ``segment_ids``).
    """
    import torch

    if lines.device.type != "cpu":
        return _static_lines(lines, cam_SE3_world, camera, cull_caps)
    # on the CPU, torch's intra-op threads cost ~20x on arrays of ~10^4 rows (231 ms instead of
    # 12 ms per camera-frame on the 2-core machine, docs/speed.md): one thread, restored after
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _static_lines(lines, cam_SE3_world, camera, cull_caps)
    finally:
        torch.set_num_threads(threads)


def _static_lines(
    lines: TorchStaticLines, cam_SE3_world: np.ndarray, camera: FThetaCamera, cull_caps: bool
) -> DrawBatch:
    import torch

    dev = lines.device
    m4 = torch.as_tensor(np.asarray(cam_SE3_world, dtype=np.float64), device=dev)
    points_cam = lines.points_world @ m4[:3, :3].T + m4[:3, 3]
    z = points_cam[:, 2]
    near, far = z < NEAR_CLIP_M, z > FAR_CLIP_M
    i0, i1 = lines.i0, lines.i1
    shown = torch.nonzero(~((near[i0] & near[i1]) | (far[i0] & far[i1]))).squeeze(1)
    i0, i1 = i0[shown], i1[shown]
    used = torch.zeros(z.shape[0], dtype=torch.bool, device=dev)
    used[i0] = True
    used[i1] = True
    uvz = torch.empty((z.shape[0], 3), dtype=torch.float64, device=dev)
    uvz[used, :2] = project_torch(camera, points_cam[used])
    uvz[:, 2] = z
    colors = lines.colors[shown]
    verts, cols, faces = _expand(
        uvz[i0], uvz[i1], colors, lines.widths[shown], camera.width_px, camera.height_px, shown, cull_caps
    )
    # read back ~2 MB per busy frame: float32 vertices and colours, int32 faces
    return DrawBatch(verts.cpu().numpy(), cols.cpu().numpy(), faces.to(torch.int32).cpu().numpy(), "static_lines")


def _expand(
    p0: Any, p1: Any, c: Any, width: Any, image_width: int, image_height: int, segment_ids: Any, cull_caps: bool
) -> tuple[Any, Any, Any]:
    """``lines.expand_lines_with_sources`` for rows with one colour per segment (``c`` at both ends)."""
    import torch

    dev = p0.device
    w, h = float(image_width), float(image_height)
    x0, y0 = 2.0 * p0[:, 0] / w - 1.0, 1.0 - 2.0 * p0[:, 1] / h
    x1, y1 = 2.0 * p1[:, 0] / w - 1.0, 1.0 - 2.0 * p1[:, 1] / h
    dx, dy = x1 - x0, y1 - y0
    length = torch.hypot(dx, dy)
    z0, z1 = p0[:, 2], p1[:, 2]
    half = (2.0 * width / w) * torch.clamp(1.0 - (z0 + z1) / (2.0 * FAR_M), 0.0, 1.0) / 2.0
    off = (torch.maximum(x0, x1) + half < -1.0) | (torch.minimum(x0, x1) - half > 1.0)
    off |= (torch.maximum(y0, y1) + half < -1.0) | (torch.minimum(y0, y1) - half > 1.0)
    keep = (length > 0) & (half > 0) & ~off
    keep &= ~((z0 < NEAR_CLIP_M) & (z1 < NEAR_CLIP_M)) & ~((z0 > FAR_CLIP_M) & (z1 > FAR_CLIP_M))
    idx = torch.nonzero(keep).squeeze(1)
    m = int(idx.shape[0])
    if m == 0:
        empty = torch.zeros((0, 3), dtype=torch.float32, device=dev)
        return empty, empty, torch.zeros((0, 3), dtype=torch.int64, device=dev)
    half, length = half[idx], length[idx]
    scale = (half / length)[:, None]
    normal = torch.stack([-dy[idx], dx[idx]], dim=1) * scale
    along = torch.stack([dx[idx], dy[idx]], dim=1) * scale
    for xy in (normal, along):  # times (W/2, −H/2), column by column (numpy: a broadcast product)
        xy[:, 0] *= w / 2.0
        xy[:, 1] *= -h / 2.0
    q0, q1 = p0[idx], p1[idx]
    k = c[idx]
    fade0 = k * torch.clamp(1.0 - q0[:, 2] / FAR_M, 0.0, 1.0)[:, None]
    fade1 = k * torch.clamp(1.0 - q1[:, 2] / FAR_M, 0.0, 1.0)[:, None]
    if not cull_caps:
        weights = _weights(dev)
        vertices = _positions(q0, q1, normal, along, slice(0, VERTICES_PER_SEGMENT))
        colors = torch.empty_like(vertices)
        for channel in range(3):
            ends = torch.stack([fade0[:, channel], fade1[:, channel]], dim=1).to(torch.float32)
            colors[:, :, channel] = ends @ weights[:2]
        step = torch.arange(m, device=dev) * VERTICES_PER_SEGMENT
        faces = _faces_template(dev)[None] + step[:, None, None]
        return vertices.reshape(-1, 3), colors.reshape(-1, 3), faces.reshape(-1, 3)

    unit = torch.stack([dx[idx], dy[idx]], dim=1) / length[:, None]
    ids = segment_ids[idx]
    plan = _plan(q0, q1, k, width[idx], torch.diff(ids) == 1, unit, half, w)
    start_cap, end_cap, join, join_positive, rim, loft_from, rim_inset_px = plan
    start_rows, end_rows = torch.nonzero(start_cap).squeeze(1), torch.nonzero(end_cap).squeeze(1)
    rim_end, rim_start = torch.nonzero(rim == 1).squeeze(1), torch.nonzero(rim == 2).squeeze(1)
    ns, ne, nre, nrs = (int(t.shape[0]) for t in (start_rows, end_rows, rim_end, rim_start))
    cap_at = 4 * m
    rim_at = cap_at + 9 * (ns + ne)
    vertices = torch.empty((rim_at + 9 * (nre + nrs), 3), dtype=torch.float32, device=dev)
    colors = torch.empty_like(vertices)
    corners = vertices[:cap_at].view(m, 4, 3)
    n32 = normal.to(torch.float32)
    for i, (end, sign) in enumerate(((q0, 1), (q0, -1), (q1, 1), (q1, -1))):
        corners[:, i, :2] = end[:, :2].to(torch.float32) + sign * n32
        corners[:, i, 2] = end[:, 2].to(torch.float32)
    corner_colors = colors[:cap_at].view(m, 4, 3)
    corner_colors[:, :2] = fade0.to(torch.float32)[:, None]
    corner_colors[:, 2:] = fade1.to(torch.float32)[:, None]
    normal_px = torch.hypot(normal[:, 0], normal[:, 1])
    blocks = (
        (start_rows, slice(5, 14), normal[start_rows], cap_at),
        (end_rows, slice(15, 24), normal[end_rows], cap_at + 9 * ns),
        (rim_end, slice(15, 24), normal[rim_end] * (1.0 - rim_inset_px[rim_end] / normal_px[rim_end])[:, None], rim_at),
        (
            rim_start + 1,
            slice(5, 14),
            normal[rim_start + 1] * (1.0 - rim_inset_px[rim_start] / normal_px[rim_start + 1])[:, None],
            rim_at + 9 * nre,
        ),
    )
    for rows, cols, offsets, at in blocks:
        v = _positions(q0[rows], q1[rows], offsets, along[rows], cols)
        n = v.shape[0] * v.shape[1]
        vertices[at : at + n] = v.reshape(-1, 3)
        fade = fade0[rows] if cols.start < 14 else fade1[rows]
        colors[at : at + n].view(v.shape)[:] = fade.to(torch.float32)[:, None]
    cap_rims = vertices[cap_at:rim_at].view(ns + ne, 9, 3)
    cap_rims[:ns, 0], cap_rims[:ns, 8] = corners[start_rows, 1], corners[start_rows, 0]
    cap_rims[ns:, 0], cap_rims[ns:, 8] = corners[end_rows, 2], corners[end_rows, 3]
    if LOFT_DEPTH_BIAS and m > 1:
        step_end = torch.abs(q1[torch.clamp(rim_end + 1, max=m - 1), 2] - q1[rim_end, 2])
        step_start = torch.abs(q0[rim_start, 2] - q0[rim_start + 1, 2])
        bias_end = torch.repeat_interleave(LOFT_DEPTH_BIAS * step_end, 9).to(torch.float32)
        bias_start = torch.repeat_interleave(LOFT_DEPTH_BIAS * step_start, 9).to(torch.float32)
        vertices[rim_at : rim_at + 9 * nre, 2] += bias_end
        vertices[rim_at + 9 * nre :, 2] += bias_start
    rim_base = torch.zeros(m, dtype=torch.int64, device=dev)
    rim_base[rim_end] = rim_at + 9 * torch.arange(nre, device=dev)
    rim_base[rim_start] = rim_at + 9 * nre + 9 * torch.arange(nrs, device=dev)

    lofts = torch.nonzero(loft_from >= 0).squeeze(1)
    n_start = CAP_FAN_TRIANGLES * start_cap.to(torch.int64)
    n_end = CAP_FAN_TRIANGLES * end_cap.to(torch.int64)
    n_loft = torch.zeros(m, dtype=torch.int64, device=dev)
    n_loft[lofts] = 2 * CAP_SEGMENTS
    counts = 2 + n_start + n_end + n_loft + join.to(torch.int64)
    offset = torch.cumsum(counts, 0) - counts
    faces = torch.empty((int(counts.sum()), 3), dtype=torch.int64, device=dev)
    corner0 = torch.arange(0, cap_at, 4, device=dev)
    faces[offset] = corner0[:, None] + _small(dev)["tri0"]
    faces[offset + 1] = corner0[:, None] + _small(dev)["tri1"]
    fan = _rim_fan(dev)
    cap0 = cap_at + 9 * torch.arange(ns + ne, device=dev)
    cap_steps = torch.arange(CAP_FAN_TRIANGLES, device=dev)
    faces[(offset[start_rows] + 2)[:, None] + cap_steps] = fan + cap0[:ns, None, None]
    faces[(offset[end_rows] + 2 + n_start[end_rows])[:, None] + cap_steps] = fan + cap0[ns:, None, None]
    steps = torch.arange(CAP_SEGMENTS, device=dev)
    a, b = rim_base[loft_from[lofts]][:, None] + steps, rim_base[lofts][:, None] + steps
    band = torch.stack([a, a + 1, b + 1, a, b + 1, b], dim=2).reshape(-1, 2 * CAP_SEGMENTS, 3)
    loft_at = (offset[lofts] + 2 + n_start[lofts] + n_end[lofts])[:, None] + torch.arange(2 * CAP_SEGMENTS, device=dev)
    faces[loft_at] = band
    r = torch.nonzero(join).squeeze(1)
    outer = corner0[r] + 4 + torch.where(join_positive[r], 0, 1)
    faces[offset[r] + counts[r] - 1] = torch.stack([corner0[r] + 2, corner0[r] + 3, outer], dim=1)
    return vertices, colors, faces


def _plan(
    q0: Any, q1: Any, k: Any, width: Any, consecutive: Any, direction: Any, half: Any, image_width_px: float
) -> tuple[Any, ...]:
    """``lines.line_plan`` for rows with one colour per segment (so ``k0 = k1 = k``)."""
    import torch

    dev = q0.device
    m = q0.shape[0]
    start_cap = torch.ones(m, dtype=torch.bool, device=dev)
    end_cap = torch.ones(m, dtype=torch.bool, device=dev)
    join = torch.zeros(m, dtype=torch.bool, device=dev)
    join_positive = torch.zeros(m, dtype=torch.bool, device=dev)
    rim = torch.zeros(m, dtype=torch.int64, device=dev)
    loft_from = torch.full((m,), -1, dtype=torch.int64, device=dev)
    if m < 2:
        return start_cap, end_cap, join, join_positive, rim, loft_from, torch.zeros(m, dtype=torch.float64, device=dev)
    e, s = q1[:-1], q0[1:]
    linked = consecutive & (width[:-1] == width[1:]) & torch.all(k[:-1] == k[1:], dim=1)
    linked &= (torch.abs(e[:, 0] - s[:, 0]) <= 1e-4) & (torch.abs(e[:, 1] - s[:, 1]) <= 1e-4)
    linked &= torch.abs(e[:, 2] - s[:, 2]) <= 1e-6
    da, db = direction[:-1], direction[1:]
    cross = da[:, 0] * db[:, 1] - da[:, 1] * db[:, 0]
    linked &= da[:, 0] * db[:, 0] + da[:, 1] * db[:, 1] >= _COS_MAX_BEND
    h_px = half * (image_width_px / 2.0)
    open_joint = linked & (torch.abs(h_px[:-1] - h_px[1:]) <= CAP_CULL_MAX_STEP_PX)
    forward = q1[1:, 2] > e[:, 2]
    backward = q0[:-1, 2] > e[:, 2]
    seg_px = torch.hypot(q1[:, 0] - q0[:, 0], q1[:, 1] - q0[:, 1])
    fine = (seg_px <= LOFT_MAX_STEP * h_px) | (torch.abs(q1[:, 2] - q0[:, 2]) <= LOFT_MAX_DEPTH_STEP_M)
    loftable = open_joint & fine[:-1] & fine[1:]
    one, two, zero = _small(dev)["kinds"]
    kind = torch.where(loftable & forward & ~backward, one, torch.where(loftable & backward & ~forward, two, zero))
    run = kind > 0
    first = run.clone()
    first[1:] &= kind[1:] != kind[:-1]
    last = run.clone()
    last[:-1] &= kind[:-1] != kind[1:]
    arc = torch.floor(torch.cumsum(seg_px / (torch.clamp(h_px, min=1e-3) * LOFT_SPACING), 0)[:-1])
    turn = torch.floor(torch.atan2(da[:, 1], da[:, 0]) / LOFT_MAX_TURN_RAD)
    depth = torch.floor(torch.sqrt(torch.clamp(e[:, 2], min=0.0) / LOFT_MAX_DEPTH_ERROR_M))
    tick = torch.ones(m - 1, dtype=torch.bool, device=dev)
    tick[1:] = (arc[1:] != arc[:-1]) | (turn[1:] != turn[:-1]) | (depth[1:] != depth[:-1])
    rimmed = run & (first | last | tick)
    rim[:-1] = torch.where(rimmed, kind, zero)
    joints = torch.nonzero(rimmed).squeeze(1)
    closes = joints[~first[joints]]
    opens = joints[torch.searchsorted(joints, closes) - 1]
    loft_from[closes] = opens
    arc_px = torch.cumsum(seg_px, 0)
    turned = torch.abs(direction[opens, 0] * direction[closes, 1] - direction[opens, 1] * direction[closes, 0])
    sagitta = (arc_px[closes] - arc_px[opens]) * turned / 8.0 + LOFT_MARGIN_PX
    rim_inset_px = torch.zeros(m, dtype=torch.float64, device=dev)
    rim_inset_px[closes] = sagitta
    rim_inset_px[opens] = torch.maximum(rim_inset_px[opens], sagitta)
    end_cap[:-1] = ~open_joint | (first & (kind == 1)) | (~run & forward)
    start_cap[1:] = ~open_joint | (first & (kind == 2)) | (~run & backward)
    bare = open_joint & ~run & ~forward & ~backward
    wedge = torch.maximum(h_px[:-1], h_px[1:]) ** 2 * torch.abs(cross) / 2.0
    join[:-1] = bare & (wedge >= CAP_CULL_MIN_WEDGE_PX2)
    join_positive[:-1] = cross < 0
    return start_cap, end_cap, join, join_positive, rim, loft_from, rim_inset_px
