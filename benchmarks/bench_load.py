"""Benchmark: load a 20 s ClipGT clip with 100 tracks and 500 map elements.

Usage: python benchmarks/bench_load.py [--runs N]

Writes the clip (our ClipGT writer, ego and objects at 10 Hz, 601 frames at 30 fps, NVIDIA's
7-camera rig) into a temporary folder, then times ``load_scene`` and prints the median.
Target: < 2 s on a 2-core machine.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from scene2world.scene.clipgt import frame_timeline
from scene2world.scene.clipgt_writer import write_clipgt
from scene2world.scene.defaults import nvidia_rig
from scene2world.scene.interpolation import interpolate_poses
from scene2world.scene.load import load_scene
from scene2world.scene.model import (
    Cuboid,
    LaneLine,
    MapElements,
    ObjectType,
    Polygon,
    Polyline,
    Scene,
    Track,
    TrafficLight,
)

T0_US = 1_700_000_000_000_000
DURATION_S = 20
NUM_TRACKS = 100
LANE_TYPES = ("WHITE SOLID_SINGLE", "WHITE LONG_DASHED_SINGLE", "YELLOW SOLID_GROUP", "WHITE SHORT_DASHED_SINGLE")


def build(seed: int = 0) -> Scene:
    rng = np.random.default_rng(seed)
    key_ts = T0_US + np.arange(DURATION_S * 10 + 1, dtype=np.int64) * 100_000
    s = np.linspace(0, 200, len(key_ts))
    key_pos = np.stack([s, 5 * np.sin(s / 40), np.zeros_like(s)], axis=1)
    yaw = np.arctan2(np.gradient(key_pos[:, 1]), np.gradient(key_pos[:, 0]))
    key_q = np.stack([np.zeros_like(yaw), np.zeros_like(yaw), np.sin(yaw / 2), np.cos(yaw / 2)], axis=1)
    frames = frame_timeline(int(key_ts[0]), int(key_ts[-1]))

    def line(n=50):
        x0, y0 = rng.uniform(-50, 250), rng.uniform(-40, 40)
        x = x0 + np.arange(n) * 2.0
        return np.stack([x, y0 + 0.5 * np.sin(x / 30), np.zeros(n)], axis=1)

    def ring():
        c = rng.uniform(-50, 250, 2)
        pts = np.array([[0, 0], [4, 0], [4, 12], [0, 12], [0, 0]], dtype=float) + c
        return np.concatenate([pts, np.zeros((5, 1))], axis=1)

    def box():
        m = np.eye(4)
        m[:3, 3] = [rng.uniform(0, 200), rng.uniform(-20, 20), 3]
        return m

    m = MapElements(
        lane_lines=tuple(LaneLine(line(), lane_type=LANE_TYPES[i % 4]) for i in range(150)),
        lanes=tuple(Polyline(line(), "left_rail" if i % 2 else "right_rail") for i in range(100)),
        road_boundaries=tuple(Polyline(line(), "curb") for _ in range(100)),
        wait_lines=tuple(Polyline(line(3), "STOP") for _ in range(30)),
        poles=tuple(Polyline(line(2), "TREE") for _ in range(40)),
        crosswalks=tuple(Polygon(ring(), "PEDESTRIAN") for _ in range(30)),
        road_markings=tuple(Polygon(ring(), "ARROW") for _ in range(20)),
        traffic_signs=tuple(Cuboid(box(), [0.1, 0.8, 0.8], "SIGN") for _ in range(20)),
        traffic_lights=tuple(TrafficLight(box(), [0.6, 0.6, 1.0], "traffic_light") for _ in range(10)),
    )
    assert len(m) == 500
    tracks = []
    for i in range(NUM_TRACKS):
        start = rng.integers(0, 100)
        ts = key_ts[start : start + rng.integers(20, len(key_ts))]
        n = len(ts)
        v = rng.uniform(-15, 15)
        centers = np.stack(
            [rng.uniform(0, 200) + v * np.arange(n) / 10, np.full(n, rng.uniform(-20, 20)), np.ones(n)], 1
        )
        tracks.append(
            Track(
                f"track_{i:03d}",
                list(ObjectType)[i % 5],
                ts,
                centers,
                np.tile([4.5, 2, 1.6], (n, 1)),
                np.tile([0, 0, 0, 1.0], (n, 1)),
            )
        )
    return Scene(
        clip_id="bench_20s",
        source_format="clipgt",
        frame_timestamps_us=frames,
        world_SE3_rig=interpolate_poses(key_ts, key_pos, key_q, frames),
        cameras=nvidia_rig(),
        map=m,
        tracks=tuple(tracks),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    scene = build()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / scene.clip_id
        write_clipgt(scene, folder, ego_stride=3)
        size = sum(f.stat().st_size for f in folder.iterdir())
        times = []
        for _ in range(args.runs):
            start = time.perf_counter()
            loaded = load_scene(folder)
            times.append(time.perf_counter() - start)
    rows = sum(len(t.timestamps_us) for t in loaded.tracks)
    print(
        f"load_scene: {loaded.num_frames} frames, {len(loaded.tracks)} tracks ({rows} obstacle rows), "
        f"{len(loaded.map)} map elements, {size / 1e6:.1f} MB of parquet"
    )
    print(
        f"median {statistics.median(times):.3f} s over {args.runs} runs "
        f"(min {min(times):.3f} s, max {max(times):.3f} s)"
    )


if __name__ == "__main__":
    main()
