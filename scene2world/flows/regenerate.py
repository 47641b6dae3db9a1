"""Scheduled regeneration: re-make what changed in each dataset source, report what changed.

For each source: one conditional GET (or a hash of a local source) tells whether the data
changed; the pipeline's steps then run on it, each a cache hit where its inputs did not
change (rendering is cached per clip and camera, inference per sample), so only changed clips
re-render and only their samples re-infer. A markdown artifact lists the clips added, removed,
changed and reused and the cameras and samples made or reused; the last generation is
recorded under the data root (scene2world.regeneration.state). A source that is gone or a
server that does not answer fails that source with one line and touches none of its outputs.

No ``from __future__ import annotations``: see scene2world/flows/pipeline.py.
"""

from datetime import UTC, datetime
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.runtime import flow_run

from scene2world.config import (
    DownloadConfig,
    InferConfig,
    PackageConfig,
    PipelineConfig,
    RenderConfig,
)
from scene2world.errors import DatasetError, Scene2WorldError
from scene2world.flows.hooks import install_user_error_filter, log_cancellation, run_name
from scene2world.flows.params import resolve_config
from scene2world.flows.pipeline import run_steps
from scene2world.manifest import read_manifest
from scene2world.regeneration import diff
from scene2world.regeneration.state import Generation, read_generation, write_generation
from scene2world.tasks.regeneration import probe_task


@flow(
    name="scene2world-regenerate",
    flow_run_name=run_name,
    log_prints=True,
    validate_parameters=True,
    on_cancellation=[log_cancellation],
)
def regenerate(
    config: str | None = None,
    sources: list[str] | None = None,
    name: str | None = None,
    data_root: str | None = None,
    runs_dir: str | None = None,
    datasets: dict[str, str] | None = None,
    download: DownloadConfig | None = None,
    render: RenderConfig | None = None,
    infer: InferConfig | None = None,
    package: PackageConfig | None = None,
) -> dict[str, dict[str, Any]]:
    """Regenerate the outputs of each dataset source that changed since its last generation.

    Every parameter left empty comes from `config`; a given one overrides the file key by key.

    Args:
        config: Pipeline config YAML, relative to the scene2world checkout (e.g. configs/nightly.yaml);
            empty = built-in defaults.
        sources: Dataset names (from `datasets`), URLs or paths to regenerate, one after another;
            empty = the config's download.source.
        name: Run name (run folder names); with several sources each run is named `<name>-<source name>`.
        data_root: Cache, step outputs and the last-generation records, relative to the checkout; empty = the config's.
        runs_dir: Packaged run folders, relative to the checkout; empty = the config's.
        datasets: Named dataset sources, added to the config's.
        download: Download settings to override (only the keys given).
        render: Render settings to override (only the keys given).
        infer: Inference settings to override (only the keys given).
        package: Packaging settings to override (only the keys given).
    """
    install_user_error_filter()
    logger = get_run_logger()
    cfg = resolve_config(
        config,
        name=name,
        data_root=data_root,
        runs_dir=runs_dir,
        datasets=datasets,
        download=download,
        render=render,
        infer=infer,
        package=package,
    )
    wanted = sources or [cfg.download.source]
    reports: dict[str, dict[str, Any]] = {}
    failed: dict[str, str] = {}
    for source in wanted:
        try:
            reports[source] = regenerate_source(cfg, source, several=len(wanted) > 1)
        except Scene2WorldError as e:
            first = str(e).splitlines()[0]
            failed[source] = first if source in first else f"{source}: {first}"
            logger.error("%s; its last generation's outputs were left as they were", failed[source])
    if failed:  # a user error: the run ends Failed with this one line, no traceback
        raise DatasetError(f"{len(failed)} of {len(wanted)} source(s) failed: " + "; ".join(failed.values()))
    return reports


def regenerate_source(cfg: PipelineConfig, source: str, *, several: bool) -> dict[str, Any]:
    """Probe one source, run the steps on it, compare with its last generation, report and record."""
    root = cfg.data_root.absolute()
    previous = read_generation(root, source)
    probe = probe_task(cfg.download.model_copy(update={"source": source}), cfg.datasets, root)
    run_cfg = cfg.model_copy(
        update={
            "name": f"{cfg.name}-{_label(source)}" if several else cfg.name,
            "download": cfg.download.model_copy(update={"source": source, "sha256": probe.pin}),
        }
    )
    summary = run_steps(run_cfg)
    manifests = {s["step"]: read_manifest(s["manifest"]) for s in summary["steps"]}
    hit = {s["step"]: s["status"] == "cached" for s in summary["steps"]}
    clips = diff.clip_digests(manifests["download"])
    report = diff.build_report(
        source=source,
        not_modified=probe.not_modified,
        content_changed=previous is None or previous.content_sha256 != probe.content_sha256,
        previous=previous,
        clips=diff.compare_clips(previous.clips if previous else {}, clips),
        cameras=diff.camera_counts(manifests["render"], hit["render"]),
        samples=diff.sample_counts(manifests["infer"], hit["infer"]),
        run_dir=summary["run_dir"],
    )
    report["steps"] = {s["step"]: s["status"] for s in summary["steps"]}
    create_markdown_artifact(
        key=f"regenerate-{_label(source)}"[:60].rstrip("-"),
        markdown=diff.report_markdown(report),
        description=f"What changed in {source} since the last generation",
    )
    write_generation(
        root,
        Generation(
            source=source,
            resolved=probe.resolved,
            content_sha256=probe.content_sha256,
            etag=probe.etag,
            last_modified=probe.last_modified,
            clips=clips,
            samples=diff.sample_names(manifests["infer"]),
            run_dir=summary["run_dir"],
            generated_at=datetime.now(UTC).isoformat(timespec="seconds"),
            flow_run_id=flow_run.id,
            report=report,
        ),
    )
    return report


def _label(source: str) -> str:
    """A short lowercase name for a source (artifact keys and run names): its last path part."""
    tail = source.rstrip("/").rsplit("/", 1)[-1].split("?")[0]
    for suffix in (".zip", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".tar"):
        tail = tail.removesuffix(suffix)
    cleaned = "".join(ch if ch.isalnum() else "-" for ch in tail.lower()).strip("-")
    return cleaned or "source"
