"""What changed since the last generation: clips by content digest, cameras and samples by reuse.

Pure functions over manifests (no Prefect, no I/O besides what the caller passes in).
"""

from pathlib import PurePosixPath
from typing import Any

from scene2world.contracts import DownloadData, InferData, RenderData
from scene2world.manifest import Manifest, payload, sha256_json
from scene2world.regeneration.state import Generation


def clip_digests(download: Manifest) -> dict[str, str]:
    """Clip id -> digest of the clip's own files (paths below its folder and their sha256).

    A clip's files are those under its folder whose name starts with the clip id (ClipGT's
    ``<id>.*.parquet``, RDS-HQ's ``<attribute>/<id>.tar``); when none does, the whole folder.
    Files of other clips sharing the folder and unrelated files (a README) do not count.
    """
    out: dict[str, str] = {}
    for clip in payload(download, DownloadData).clips:
        folder = PurePosixPath(clip.path)
        below = [f for f in download.files if PurePosixPath(f.path).is_relative_to(folder)]
        own = [f for f in below if PurePosixPath(f.path).name.startswith(f"{clip.clip_id}.")] or below
        out[clip.clip_id] = sha256_json(
            sorted((PurePosixPath(f.path).relative_to(folder).as_posix(), f.sha256) for f in own)
        )
    return out


def compare_clips(previous: dict[str, str], current: dict[str, str]) -> dict[str, list[str]]:
    """Clip ids added, removed, changed (other digest) and unchanged, each sorted."""
    return {
        "added": sorted(set(current) - set(previous)),
        "removed": sorted(set(previous) - set(current)),
        "changed": sorted(c for c in current if c in previous and previous[c] != current[c]),
        "unchanged": sorted(c for c in current if c in previous and previous[c] == current[c]),
    }


def camera_counts(render: Manifest, cache_hit: bool) -> dict[str, int]:
    """Camera videos rendered vs reused by this run (a cached render step reused them all)."""
    clips = payload(render, RenderData).clips.values()
    total = sum(len(c.cameras) for c in clips)
    if cache_hit:
        return {"rendered": 0, "reused": total}
    if clips and all(c.rendered is not None and c.reused is not None for c in clips):
        return {
            "rendered": sum(len(c.rendered or ()) for c in clips),
            "reused": sum(len(c.reused or ()) for c in clips),
        }
    rendered = int(render.stats.get("rendered_cameras", total))
    return {"rendered": rendered, "reused": int(render.stats.get("reused_cameras", total - rendered))}


def sample_counts(infer: Manifest, cache_hit: bool) -> dict[str, int]:
    """Inference samples run vs reused by this run (per-sample ``reused`` flags when the manifest has them)."""
    samples = payload(infer, InferData).samples
    if cache_hit:
        return {"inferred": 0, "reused": len(samples)}
    reused = sum(1 for s in samples.values() if s.reused)
    return {"inferred": len(samples) - reused, "reused": reused}


def sample_names(infer: Manifest) -> list[str]:
    """The infer manifest's sample names, sorted."""
    return sorted(payload(infer, InferData).samples)


def build_report(
    *,
    source: str,
    not_modified: bool | None,
    content_changed: bool,
    previous: Generation | None,
    clips: dict[str, list[str]],
    cameras: dict[str, int],
    samples: dict[str, int],
    run_dir: str,
) -> dict[str, Any]:
    """The JSON-able report of one regeneration (the artifact and the state file show it)."""
    return {
        "source": source,
        "not_modified": not_modified,
        "content_changed": content_changed,
        "first_generation": previous is None,
        "previous_generated_at": previous.generated_at if previous else None,
        "clips": clips,
        "cameras": cameras,
        "samples": samples,
        "run_dir": run_dir,
        "new_run": previous is None or previous.run_dir != run_dir,
    }


def report_markdown(report: dict[str, Any]) -> str:
    """The report as the markdown of the "what changed since the last generation" artifact."""
    if report["first_generation"]:
        since = "first generation of this source"
    else:
        since = f"since the last generation ({report['previous_generated_at']})"
    if report["not_modified"]:
        asked = "not modified (HTTP 304)"
    elif report["content_changed"] or report["first_generation"]:
        asked = "new content"
    else:
        asked = "same content"
    lines = [
        f"# What changed {since}",
        "",
        f"Source `{report['source']}`: {asked}.",
        "",
        "| clips | count | ids |",
        "|---|---:|---|",
    ]
    for kind in ("added", "removed", "changed", "unchanged"):
        ids = report["clips"][kind]
        lines.append(f"| {kind} | {len(ids)} | {', '.join(ids[:20])}{' …' if len(ids) > 20 else ''} |")
    cams, samples = report["cameras"], report["samples"]
    lines += [
        "",
        f"Camera videos: {cams['rendered']} rendered, {cams['reused']} reused.",
        f"Samples: {samples['inferred']} inferred, {samples['reused']} reused.",
        "",
        ("New run folder: " if report["new_run"] else "Nothing changed; the run folder is the last one: ")
        + f"`{report['run_dir']}`",
    ]
    return "\n".join(lines) + "\n"
