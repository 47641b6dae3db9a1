"""Write the bundled example scene as a ClipGT bundle.

Usage: python scripts/make_example.py [OUT_ROOT]   (default: assets/example)

Writes OUT_ROOT/<clip_id>/<clip_id>.*.parquet from scene2world.scene.demo.build_demo_scene(),
ego and objects at 10 Hz (every 3rd frame of the 30 fps timeline), float64 coordinates.
Deterministic: running it twice gives identical bytes (same pyarrow version).
"""

from __future__ import annotations

import sys
from pathlib import Path

from scene2world.scene.clipgt_writer import write_clipgt
from scene2world.scene.demo import build_demo_scene

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str]) -> int:
    out_root = Path(argv[0]) if argv else REPO / "assets" / "example"
    scene = build_demo_scene()
    folder = out_root / scene.clip_id
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob(f"{scene.clip_id}.*"):
        old.unlink()
    files = write_clipgt(scene, folder, ego_stride=3)
    total = sum(f.stat().st_size for f in files)
    for f in files:
        print(f"{f.stat().st_size:>8}  {f.relative_to(out_root)}")
    print(f"{total:>8}  bytes in {len(files)} files, {scene.num_frames} frames, {len(scene.tracks)} tracks")
    print(folder)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
