"""The end-of-run summary as markdown: per clip, what was rendered or reused, what was inferred or
reused, step durations, the run folder and the contact sheet (a small inline JPEG).

Plain Python over the step manifests; the flow publishes it as a Prefect markdown artifact.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from scene2world.contracts import InferData, RenderData
from scene2world.manifest import Manifest, payload

THUMBNAIL_WIDTH_PX = 960
"""Width of the contact sheet's inline copy (the full PNG stays in the run folder)."""


def clip_rows(render: Manifest, infer: Manifest | None, *, render_hit: bool, infer_hit: bool) -> list[dict[str, Any]]:
    """One row per clip: cameras rendered / reused and samples inferred / reused in this run.

    A step that was a cache hit as a whole reused everything it lists.
    """
    samples = payload(infer, InferData).samples if infer is not None else {}
    rows = []
    for clip_id, clip in sorted(payload(render, RenderData).clips.items()):
        cameras = list(clip.cameras)
        rendered = [] if render_hit else (cameras if clip.rendered is None else clip.rendered)
        mine = [s for s in samples.values() if s.clip_id == clip_id]
        reused_samples = len(mine) if infer_hit else sum(1 for s in mine if s.reused)
        rows.append(
            {
                "clip": clip_id,
                "cameras": len(cameras),
                "rendered": len(rendered),
                "reused": len(cameras) - len(rendered),
                "frames": clip.num_frames,
                "samples": len(mine),
                "inferred": len(mine) - reused_samples,
                "samples_reused": reused_samples,
            }
        )
    return rows


def thumbnail_data_uri(png: Path, width_px: int = THUMBNAIL_WIDTH_PX) -> str | None:
    """A ``data:image/jpeg;base64,...`` copy of an image, at most ``width_px`` wide (None if unreadable)."""
    import cv2

    image = cv2.imread(str(png), cv2.IMREAD_COLOR)
    if image is None:
        return None
    h, w = image.shape[:2]
    if w > width_px:
        image = cv2.resize(image, (width_px, max(1, round(h * width_px / w))), interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 80])
    return f"data:image/jpeg;base64,{base64.b64encode(data.tobytes()).decode()}" if ok else None


def run_summary(
    name: str,
    run_dir: Path,
    rows: Sequence[dict[str, Any]],
    steps: Sequence[dict[str, Any]],
    contact_sheet: Path | None,
) -> str:
    """The markdown summary of one pipeline run.

    ``steps``: ``{"step", "status", "seconds"}`` per step, in order; ``contact_sheet``: the PNG
    in the run folder, shown inline when readable.
    """
    lines = [f"# scene2world run `{name}`", "", f"Run folder: `{run_dir}`", ""]
    lines += ["| step | status | seconds |", "|---|---|---:|"]
    lines += [f"| {s['step']} | {s['status']} | {s.get('seconds', 0.0):.1f} |" for s in steps]
    lines += ["", "| clip | cameras | rendered | reused | frames | samples | inferred | reused |"]
    lines += ["|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(
            f"| {r['clip']} | {r['cameras']} | {r['rendered']} | {r['reused']} | {r['frames']} "
            f"| {r['samples']} | {r['inferred']} | {r['samples_reused']} |"
        )
    totals = {k: sum(int(r[k] or 0) for r in rows) for k in ("cameras", "rendered", "reused", "inferred")}
    lines += [
        "",
        f"{len(rows)} clip(s): {totals['rendered']} of {totals['cameras']} camera video(s) rendered, "
        f"{totals['reused']} reused; {totals['inferred']} sample(s) inferred.",
    ]
    if contact_sheet is not None and contact_sheet.is_file():
        uri = thumbnail_data_uri(contact_sheet)
        lines += ["", f"Contact sheet: `{contact_sheet}`", ""]
        if uri is not None:
            lines.append(f"![contact sheet]({uri})")
    return "\n".join(lines) + "\n"
