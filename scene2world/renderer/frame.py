"""One camera frame of a scene -> NVIDIA's ordered draw batches (docs/world_scenario.md, "How NVIDIA draws").

:func:`prepare_static` builds the world-space static geometry of a clip once (resampling,
patterns, triangulation, cuboids); :func:`build_frame` then only transforms, projects and
expands it, plus the per-frame traffic-light colours and dynamic boxes. The batches come in
NVIDIA's draw order (it decides depth ties under GL_LESS):

1. ``static_lines``: width groups in order of first appearance over [road boundaries, poles,
   wait lines, lane-line pattern pieces] (normally width 12 = road boundaries, wait lines, lane
   lines; then width 5 = poles);
2. ``static_triangles``: crosswalks, road markings, traffic-sign cuboids;
3. ``traffic_lights``: each light's 16-point corner loop as a triangle fan, coloured by state;
4. ``dynamic_boxes``: boxes sorted by track id, each box's 12 faces then its 12 edges.

Looks (docs/looks.md): ``nvidia`` reproduces NVIDIA's public renderer for the scene's
``source_format`` (ClipGT quirks only when it is ``"clipgt"``); ``fixed`` corrects the quirks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property, lru_cache

import numpy as np

from scene2world.errors import RenderError
from scene2world.renderer.batch import FAR_CLIP_M, NEAR_CLIP_M, DrawBatch
from scene2world.renderer.camera import FThetaCamera
from scene2world.renderer.clipping import (
    FIXED_NEAR_M,
)
from scene2world.renderer.lines import expand_finite_lines
from scene2world.renderer.meshes import (
    line_mesh,
    project_lines,
    project_triangles,
    triangle_mesh,
)
from scene2world.renderer.primitives import (
    BOX_EDGES,
    BOX_FACES,
    LIGHT_LOOP,
    SIGN_FACES,
    apply_pattern,
    box_vertex_colors,
    cuboid_corners,
    fan_triangles,
    nvidia_box_visible,
    offset_segments,
    polygon_outline,
    polyline_segments,
    resample_polyline,
    triangulate_ring,
)
from scene2world.renderer.projection import (
    project_segment_ends,
    transform_points,
)
from scene2world.renderer.style import (
    BOX_EDGE_COLOR,
    BOX_EDGE_WIDTH_PX,
    BOX_GRADIENTS,
    DUAL_OFFSET_M,
    LANE_LINE_RESAMPLE_M,
    MAP_COLORS,
    MAP_LINE_WIDTH_PX,
    POLE_WIDTH_PX,
    POLYLINE_RESAMPLE_M,
    SINGLE_POINT_POLE_HEIGHT_M,
    Look,
    box_palette,
    check_look,
    lane_line_style,
    traffic_light_color,
)
from scene2world.scene.model import (
    Cuboid,
    FrameObjects,
    FThetaIntrinsics,
    Polygon,
    Polyline,
    Scene,
    TrafficLightState,
)
from scene2world.typing import NDArrayFloat, NDArrayInt

BATCH_LABELS = ("static_lines", "static_triangles", "traffic_lights", "dynamic_boxes")


@dataclass(frozen=True, eq=False)
class StaticGeometry:
    """World-space static geometry of one clip for one look, in draw order.

    Lines: ``line_points_world`` (P, 3) distinct end points and ``line_index`` (S, 2) the end points
    of each segment (segments share ends, so each point is projected once), ``line_colors`` (S, 3)
    0..1, ``line_widths_px`` (S,). ``triangles_world`` (T, 3, 3), ``triangle_colors`` (T, 3);
    ``light_corners_world`` (L, 8, 3) with ``light_states`` (per light, one state per frame or
    empty). FLU world, metres.
    """

    look: Look
    source_format: str
    line_points_world: NDArrayFloat
    line_index: NDArrayInt
    line_colors: NDArrayFloat
    line_widths_px: NDArrayFloat
    triangles_world: NDArrayFloat
    triangle_colors: NDArrayFloat
    light_corners_world: NDArrayFloat
    light_states: tuple[tuple[str, ...], ...]
    objects_by_frame: dict[int, FrameObjects] = field(default_factory=dict, repr=False)
    """``scene.objects_at_frame`` of the frames built so far (every camera of a frame shares them)."""

    @cached_property
    def line_segments_world(self) -> NDArrayFloat:
        """(S, 2, 3) the static line segments in draw order."""
        return self.line_points_world[self.line_index]


def _rgb(color: tuple[int, int, int]) -> NDArrayFloat:
    return np.asarray(color, dtype=np.float64) / 255.0


def _stack(parts: list[np.ndarray], shape: tuple[int, ...]) -> np.ndarray:
    return np.concatenate(parts).astype(np.float64) if parts else np.zeros((0, *shape))


def _polyline_item(lines: tuple[Polyline, ...]) -> np.ndarray:
    """All (≥ 2-point) polylines of one element kind, resampled at 0.8 m, as one segment list."""
    parts = [
        polyline_segments(resample_polyline(line.points_world, POLYLINE_RESAMPLE_M))
        for line in lines
        if len(line.points_world) >= 2
    ]
    return _stack(parts, (2, 3))


def _pole_points(pole: Polyline, look: Look, clipgt: bool) -> np.ndarray | None:
    """A pole's points; one-point poles: 3 m up (fixed), 3 m forward (nvidia on ClipGT), else dropped."""
    p = pole.points_world
    if len(p) >= 2:
        return p
    if len(p) == 1:
        if look == "fixed":
            return p + np.array([[0.0, 0.0, 0.0], [0.0, 0.0, SINGLE_POINT_POLE_HEIGHT_M]])
        if clipgt:  # NVIDIA adds the 3 m along RDF z = FLU x (docs/world_scenario.md, "ClipGT tables")
            return p + np.array([[0.0, 0.0, 0.0], [SINGLE_POINT_POLE_HEIGHT_M, 0.0, 0.0]])
    return None


def _lane_line_items(scene: Scene, look: Look, clipgt_quirks: bool) -> list[tuple[np.ndarray, NDArrayFloat, float]]:
    """(segments, colour, width) per lane-line pattern piece, in NVIDIA's order."""
    items: list[tuple[np.ndarray, NDArrayFloat, float]] = []
    for line in scene.map.lane_lines:
        if len(line.points_world) < 2:
            continue
        style = lane_line_style(line.lane_type)
        color = _rgb(style.color)
        width = MAP_LINE_WIDTH_PX * style.thickness_multiplier
        segments = polyline_segments(resample_polyline(line.points_world, LANE_LINE_RESAMPLE_M))
        if style.pattern == "dual" and style.dual_pattern:
            left, right = offset_segments(segments, DUAL_OFFSET_M, clipgt_rdf=clipgt_quirks)
            pieces = [apply_pattern(left, style.dual_pattern[0]), apply_pattern(right, style.dual_pattern[1])]
        else:
            pieces = [apply_pattern(segments, style.pattern)]
        items += [(piece, color, width) for piece in pieces]
    return items


def _polygon_triangles(polygons: tuple[Polygon, ...], look: Look, clipgt_quirks: bool) -> np.ndarray:
    parts = []
    for polygon in polygons:
        if len(polygon.points_world) < 3:
            continue
        outline = polygon_outline(polygon.points_world, POLYLINE_RESAMPLE_M, close_ring=look == "fixed")
        tris = np.zeros((0, 3, 3))
        if clipgt_quirks:
            tris = triangulate_ring(outline, plane="rdf_xy")
        if len(tris) == 0:  # NVIDIA's ClipGT path crashes on flat polygons; we fall back to the ground plane
            tris = triangulate_ring(outline, plane="xy", inside_only=look == "fixed")
        parts.append(tris)
    return _stack(parts, (3, 3))


def _cuboid_corners(cuboids: tuple[Cuboid, ...]) -> NDArrayFloat:
    if not cuboids:
        return np.zeros((0, 8, 3))
    return cuboid_corners(np.stack([c.world_SE3_obj for c in cuboids]), np.stack([c.lwh_m for c in cuboids]))


def prepare_static(scene: Scene, look: Look = "nvidia") -> StaticGeometry:
    """World-space static geometry of ``scene`` for ``look``, built once per clip.

    Lane lines are resampled at 0.05 m and cut into their patterns; road boundaries, wait lines
    and poles resampled at 0.8 m; crosswalk and road-marking outlines resampled at 0.8 m and
    Delaunay-filled; traffic signs become 12-triangle cuboids; lights keep their corners and states.
    """
    look = check_look(look)
    clipgt_quirks = look == "nvidia" and scene.source_format == "clipgt"
    m = scene.map

    poles = [p for p in (_pole_points(pole, look, clipgt_quirks) for pole in m.poles) if p is not None]
    items: list[tuple[np.ndarray, NDArrayFloat, float]] = [
        (_polyline_item(m.road_boundaries), _rgb(MAP_COLORS["road_boundaries"]), MAP_LINE_WIDTH_PX),
        (_polyline_item(tuple(Polyline(p) for p in poles)), _rgb(MAP_COLORS["poles"]), POLE_WIDTH_PX),
        (_polyline_item(m.wait_lines), _rgb(MAP_COLORS["wait_lines"]), MAP_LINE_WIDTH_PX),
        *_lane_line_items(scene, look, clipgt_quirks),
    ]
    items = [it for it in items if len(it[0])]
    widths_in_order = list(dict.fromkeys(it[2] for it in items))  # width groups, first appearance
    ordered = [it for w in widths_in_order for it in items if it[2] == w]
    seg = _stack([it[0] for it in ordered], (2, 3))
    seg_colors = _stack([np.broadcast_to(it[1], (len(it[0]), 3)) for it in ordered], (3,))
    seg_widths = np.concatenate([np.full(len(it[0]), it[2]) for it in ordered]) if ordered else np.zeros(0)

    tri_parts, tri_colors = [], []
    for name, polygons in (("crosswalks", m.crosswalks), ("road_markings", m.road_markings)):
        tris = _polygon_triangles(polygons, look, clipgt_quirks)
        tri_parts.append(tris)
        tri_colors.append(np.broadcast_to(_rgb(MAP_COLORS[name]), (len(tris), 3)))
    signs = _cuboid_corners(m.traffic_signs)[:, SIGN_FACES].reshape(-1, 3, 3)
    tri_parts.append(signs)
    tri_colors.append(np.broadcast_to(_rgb(MAP_COLORS["traffic_signs"]), (len(signs), 3)))

    points, index = np.unique(seg.reshape(-1, 3), axis=0, return_inverse=True)
    if not np.isfinite(points).all():  # build_frame relies on it (its per-frame line path skips the checks)
        raise RenderError(f"clip {scene.clip_id!r}: a map line holds NaN or infinite coordinates")
    return StaticGeometry(
        look=look,
        source_format=scene.source_format,
        line_points_world=points,
        line_index=index.reshape(-1, 2).astype(np.int64),
        line_colors=seg_colors,
        line_widths_px=seg_widths,
        triangles_world=_stack(tri_parts, (3, 3)),
        triangle_colors=_stack(tri_colors, (3,)),
        light_corners_world=_cuboid_corners(m.traffic_lights),
        light_states=tuple(tuple(light.states) for light in m.traffic_lights),
    )


@lru_cache(maxsize=256)
def _camera(intrinsics: FThetaIntrinsics, name: str) -> FThetaCamera:
    return FThetaCamera.from_intrinsics(intrinsics, name)


def camera_model(scene: Scene, camera_name: str) -> FThetaCamera:
    """The 1280x720 f-theta camera of ``camera_name`` (built once per intrinsics object)."""
    try:
        spec = scene.camera(camera_name)
    except Exception as e:
        raise RenderError(str(e)) from e
    return _camera(spec.intrinsics, camera_name)


def _light_state(states: tuple[str, ...], frame: int) -> str:
    return states[frame] if frame < len(states) else TrafficLightState.UNKNOWN.value


def _traffic_lights(static: StaticGeometry, cam_SE3_world: NDArrayFloat, camera: FThetaCamera, frame: int) -> DrawBatch:
    corners = static.light_corners_world
    colors = np.array([_rgb(traffic_light_color(_light_state(s, frame))) for s in static.light_states])
    colors = colors.reshape(-1, 3)
    if static.look == "fixed":
        tris = transform_points(cam_SE3_world, corners[:, SIGN_FACES].reshape(-1, 3, 3))
        return project_triangles(
            camera, tris, np.repeat(colors, len(SIGN_FACES), axis=0), clip_and_subdivide=True, label="traffic_lights"
        )
    loops = transform_points(cam_SE3_world, corners[:, LIGHT_LOOP])
    shown = ~np.all(loops[..., 2] < 0, axis=1)
    fans = fan_triangles(loops[shown])
    per_light = len(LIGHT_LOOP) - 2
    return project_triangles(camera, fans, np.repeat(colors[shown], per_light, axis=0), label="traffic_lights")


def _dynamic_boxes(
    scene: Scene, frame: int, look: Look, cam_SE3_world: NDArrayFloat, camera: FThetaCamera, static: StaticGeometry
) -> DrawBatch:
    objects = static.objects_by_frame.get(frame)
    if objects is None:
        objects = static.objects_by_frame[frame] = scene.objects_at_frame(frame)
    if len(objects) == 0:
        return DrawBatch(np.zeros((0, 3)), np.zeros((0, 3)), np.zeros((0, 3)), "dynamic_boxes")
    order = sorted(range(len(objects)), key=lambda i: objects.track_ids[i])
    corners_cam = transform_points(
        cam_SE3_world, cuboid_corners(np.asarray(objects.world_SE3_obj)[order], np.asarray(objects.lwh_m)[order])
    )
    palettes = [BOX_GRADIENTS[box_palette(objects.object_types[i], look)] for i in order]
    if look == "fixed":
        keep = np.any(corners_cam[..., 2] > FIXED_NEAR_M, axis=1)
    else:
        uv = camera.project(corners_cam.reshape(-1, 3))[0].reshape(-1, 8, 2)
        keep = nvidia_box_visible(corners_cam, uv, camera.width_px, camera.height_px)
    kept = np.flatnonzero(keep)
    if len(kept) == 0:
        return DrawBatch(np.zeros((0, 3)), np.zeros((0, 3)), np.zeros((0, 3)), "dynamic_boxes")
    corners_cam = corners_cam[kept]
    vertex_colors = box_vertex_colors(
        np.array([_rgb(palettes[i][0]) for i in kept]), np.array([_rgb(palettes[i][1]) for i in kept])
    )
    fixed = look == "fixed"
    nf, ne = len(BOX_FACES), len(BOX_EDGES)
    fv, fc, ff, fsrc = triangle_mesh(
        camera,
        corners_cam[:, BOX_FACES].reshape(-1, 3, 3),
        vertex_colors[:, BOX_FACES].reshape(-1, 3, 3),
        clip_and_subdivide=fixed,
    )
    edge_rgb = np.broadcast_to(_rgb(BOX_EDGE_COLOR), (len(kept) * ne, 3))
    # box edges keep every cap: they seldom form chains, and they tie with their faces
    ev, ec, ef, esrc = line_mesh(
        camera,
        corners_cam[:, BOX_EDGES].reshape(-1, 2, 3),
        edge_rgb,
        BOX_EDGE_WIDTH_PX,
        clip_and_subdivide=fixed,
        cull_caps=False,
    )
    # NVIDIA draws box by box: its faces, then its edges.
    key = np.concatenate([(fsrc // nf) * 2, (esrc // ne) * 2 + 1])
    faces = np.concatenate([ff, ef + len(fv)])[np.argsort(key, kind="stable")]
    return DrawBatch(np.concatenate([fv, ev]), np.concatenate([fc, ec]), faces, "dynamic_boxes")


def build_frame(
    scene: Scene,
    camera_name: str,
    frame: int,
    look: Look = "nvidia",
    prepared_static: StaticGeometry | None = None,
    *,
    cull_caps: bool = True,
) -> list[DrawBatch]:
    """NVIDIA's ordered draw batches of ``camera_name`` at ``frame`` (1280x720 pixel space).

    Args:
        scene: the clip.
        camera_name: a rig camera (underscore name).
        frame: index on the scene's 30 fps timeline.
        look: ``nvidia`` or ``fixed``.
        prepared_static: :func:`prepare_static` of this scene and look (built here when None).
        cull_caps: leave out the line caps that neighbouring quads cover (same picture, far fewer
            triangles, see ``scene2world.renderer.line_kernel``); False draws
            every cap as NVIDIA's shader does.

    Returns:
        ``[static_lines, static_triangles, traffic_lights, dynamic_boxes]`` (possibly empty batches).
    """
    look = check_look(look)
    if not 0 <= int(frame) < scene.num_frames:
        raise RenderError(f"clip {scene.clip_id!r}: frame {frame} outside 0..{scene.num_frames - 1}")
    frame = int(frame)
    static = prepared_static if prepared_static is not None else prepare_static(scene, look)
    if static.look != look:
        raise RenderError(f"prepared static geometry is for look {static.look!r}, not {look!r}")
    camera = camera_model(scene, camera_name)
    world_SE3_cam = np.asarray(scene.world_SE3_cam(camera_name)[frame], dtype=np.float64)
    try:
        cam_SE3_world = np.linalg.inv(world_SE3_cam).astype(np.float64)
    except np.linalg.LinAlgError:
        cam_SE3_world = np.full((4, 4), np.nan)
    if not np.all(np.isfinite(cam_SE3_world)):
        raise RenderError(f"clip {scene.clip_id!r}: camera {camera_name!r} pose at frame {frame} is not invertible")
    fixed = look == "fixed"
    points_cam = transform_points(cam_SE3_world, static.line_points_world)
    if fixed:
        lines = project_lines(
            camera,
            points_cam[static.line_index],
            static.line_colors,
            static.line_widths_px,
            clip_and_subdivide=True,
            cull_caps=cull_caps,
            label="static_lines",
        )
    else:
        # segments wholly nearer than the near plane or beyond the far one cannot show (the
        # rasteriser clips them away): project only the points of the others, each once
        uvz0, uvz1, shown = project_segment_ends(camera, points_cam, static.line_index, NEAR_CLIP_M, FAR_CLIP_M)
        lines = expand_finite_lines(  # world points checked in prepare_static, pose checked above
            uvz0,
            uvz1,
            static.line_colors[shown],
            static.line_widths_px[shown],
            camera.width_px,
            camera.height_px,
            "static_lines",
            cull_caps=cull_caps,
            segment_ids=shown,
        )
    triangles = project_triangles(
        camera,
        transform_points(cam_SE3_world, static.triangles_world),
        static.triangle_colors,
        clip_and_subdivide=fixed,
        label="static_triangles",
    )
    return [
        lines,
        triangles,
        _traffic_lights(static, cam_SE3_world, camera, frame),
        _dynamic_boxes(scene, frame, look, cam_SE3_world, camera, static),
    ]
