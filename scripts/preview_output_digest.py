"""Print the sha256 of every file the preview engine writes for a fixed input (a world of one, no torchrun).

Run before and after a change to the preview worker or the video writer: identical lines mean
identical outputs (the mp4 bytes included). The sidecar JSON holds the control paths, so use the same
WORKDIR both times. Usage (from the repository root): PYTHONPATH=. python scripts/preview_output_digest.py WORKDIR
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from scene2world.config import InferConfig
from scene2world.inference import preview_worker
from scene2world.inference.spec import build_sample, write_spec
from tests.inference.conftest import CAMERAS, stripe_frame, write_video


def main(work: Path) -> None:
    work.mkdir(parents=True, exist_ok=True)
    controls = {}
    for view, cam in enumerate(CAMERAS[:3]):
        controls[cam] = write_video(work / f"{cam}.mp4", (stripe_frame(i, view, 360, 640) for i in range(40)))
    for combined in (False, True):
        cfg = InferConfig(fps=30, save_combined_views=combined)
        name = "combined" if combined else "views"
        spec = write_spec([build_sample(name, controls, cfg, work)], work / f"{name}.json")
        out = work / f"out-{name}"
        assert preview_worker.main(["-i", str(spec), "-o", str(out)]) == 0
        for f in sorted(out.iterdir()):
            if f.suffix in (".mp4", ".json", ".yaml"):
                print(f"{hashlib.sha256(f.read_bytes()).hexdigest()[:16]}  {name}/{f.name}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
