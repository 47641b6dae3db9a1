"""Building one run folder from a render and an infer output, never half-written.

Layout of ``RUN_DIR`` (paths in ``manifest.json`` are relative to it)::

    controls/<clip>/<clip>.<camera>.mp4      control videos (or controls/<clip>/<camera>/*.png for PNG renders)
    generated/<sample>/<file>                 Cosmos outputs: <name>_<view>.mp4, <name>_grid.mp4, <name>.mp4 and
                                              the sample dump <name>.json (sample = <clip>.<variant>.<seed>)
    spec/<file>                               the spec file(s) the samples were generated from
    logs/<file>                               inference logs and any extra logs given
    contact_sheet.png                         every control view at the middle frame (PackageConfig.contact_sheet)
    cosmos_layout/control_input_hdmap_bbox/ftheta_<camera>/<clip>_<k>.mp4   (PackageConfig.cosmos_layout)
    manifest.json                             sha256 of every file, settings, config, source, versions (written last)

and beside it, with ``PackageConfig.archive``, ``RUN_DIR.zip`` or ``RUN_DIR.tar.gz`` plus its ``.sha256``.

Upstream files are hard-linked when on the same filesystem, else copied, and checked against their upstream
manifest's sha256 on the way. The spec files and sample dumps are checked to load with NVIDIA's rules from
where they lie in the run folder (their control paths point at ``controls/``); where the infer output's
relative paths would not, they are rewritten (``docs/cosmos.md``, "Spec files"). Everything is built in a
hidden staging folder beside ``RUN_DIR`` and published by a rename (``scene2world.cache``); the archive is
staged under a temporary name and renamed after the folder. A failure at any point leaves neither a run
folder nor an archive.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scene2world import cache
from scene2world.config import PackageConfig
from scene2world.contracts import (
    ArchiveInfo,
    CosmosLayoutInfo,
    InferData,
    InferredSample,
    InputRef,
    PackageData,
    PackagedClip,
    PackagedSample,
    PackageInputs,
    RenderData,
    dump,
)
from scene2world.errors import PackageError
from scene2world.manifest import (
    MANIFEST_NAME,
    FileRecord,
    Manifest,
    UpstreamRef,
    payload,
    read_manifest,
    record_files,
    write_manifest,
)
from scene2world.packaging import archive as archive_mod
from scene2world.packaging.contact_sheet import ClipViews, write_contact_sheet
from scene2world.packaging.cosmos_layout import (
    LAYOUT_DIR,
    MAX_CHUNK,
    OVERLAP_FRAME,
    TARGET_CHUNK_FRAME,
    write_cosmos_layout,
)
from scene2world.packaging.files import check_name, inside, place_file, record_checked
from scene2world.packaging.step import STEP, STEP_VERSION, package_key
from scene2world.packaging.versions import software_versions

CONTROLS_DIR = "controls"
GENERATED_DIR = "generated"
SPEC_DIR = "spec"
COSMOS_DIR = "cosmos_layout"
CONTACT_SHEET = "contact_sheet.png"
_INFO_KEYS = ("name", "source", "config", "cache_key")
_SAMPLE_META = frozenset({"variant", "variant_label", "seed", "prompt", "prompt_source", "reused", "key"})
"""Infer manifest sample fields copied into the run manifest (those the infer manifest has)."""


@dataclass(frozen=True)
class StepOutput:
    """An upstream step's output folder and its manifest, read once."""

    folder: Path
    manifest: Manifest


def read_output(path: Path | StepOutput, step: str) -> StepOutput:
    """The output of ``step`` at ``path`` (its folder or ``manifest.json``); PackageError for another step's.
    An already read output is returned as it is."""
    if isinstance(path, StepOutput):
        return path
    path = Path(path).absolute()
    folder = path.parent if path.name == MANIFEST_NAME else path
    manifest = read_manifest(folder)
    if manifest.step != step:
        raise PackageError(f"{folder / MANIFEST_NAME}: a `{manifest.step}` manifest where a `{step}` one is needed")
    return StepOutput(folder, manifest)


@dataclass
class _Build:
    """What has been placed in the staging folder so far."""

    root: Path
    link: bool
    records: dict[str, FileRecord] = field(default_factory=dict)

    def place(self, src: Path, rel: str, upstream: Manifest | None = None, upstream_rel: str | None = None) -> str:
        dst = self.root / rel
        place_file(src, dst, link=self.link)
        self.records[rel] = record_checked(self.root, dst, upstream, upstream_rel, str(src))
        return rel

    def place_tree(self, src_dir: Path, rel_dir: str, upstream: Manifest, upstream_dir: str) -> str:
        if not src_dir.is_dir():
            raise PackageError(f"{src_dir}: missing; the upstream step output is incomplete (re-run that step)")
        for path in sorted(p for p in src_dir.rglob("*") if p.is_file()):
            sub = path.relative_to(src_dir).as_posix()
            self.place(path, f"{rel_dir}/{sub}", upstream, f"{upstream_dir}/{sub}")
        return rel_dir

    def free_name(self, folder: str, name: str) -> str:
        rel, n = f"{folder}/{name}", 1
        stem, dot, suffix = name.partition(".")
        while rel in self.records or (self.root / rel).exists():
            n += 1
            rel = f"{folder}/{stem}-{n}{dot}{suffix}"
        return rel


def package_run(
    render_manifest_dir: Path | StepOutput,
    infer_manifest_dir: Path | StepOutput | None,
    run_dir: Path,
    cfg: PackageConfig,
    info: Mapping[str, Any] | None = None,
    *,
    log_files: Sequence[Path] = (),
    link: bool = True,
) -> Manifest:
    """Build ``run_dir`` from a render output and an infer output (None: controls only) and return its manifest.

    ``render_manifest_dir``/``infer_manifest_dir``: the step output folders (or their ``manifest.json``, or
    the outputs :func:`read_output` read).
    ``cfg``: what goes in (archive, contact sheet, Cosmos layout). ``info``: JSON-able run facts written to the
    manifest: ``name``, ``source`` (the dataset source), ``config`` (the pipeline config), ``cache_key`` (the
    manifest's key; default :func:`.step.package_key`), and anything else (kept under ``data.info``).
    ``log_files``: extra log files copied into ``logs/``. ``link``: hard-link upstream files when possible.

    Raises PackageError for a missing, altered or malformed upstream output (``CacheError`` when a manifest
    is unreadable, its ``data`` does not fit its step's contract (:mod:`scene2world.contracts`), or ``run_dir``
    is a non-empty folder that is not a scene2world output).
    """
    t0 = time.perf_counter()
    info = dict(info or {})
    try:
        json.dumps(info, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise PackageError(f"package info must be JSON-serialisable: {e}") from e
    render_out = read_output(render_manifest_dir, "render")
    render_dir, render = render_out.folder, render_out.manifest
    infer_dir: Path | None = None
    infer: Manifest | None = None
    if infer_manifest_dir is not None:
        infer_out = read_output(infer_manifest_dir, "infer")
        infer_dir, infer = infer_out.folder, infer_out.manifest
    clips = _clips(render, render_dir)
    samples = _samples(infer, infer_dir) if infer is not None and infer_dir is not None else {}
    run_dir = Path(run_dir).absolute()
    name = str(info.get("name", run_dir.name))
    key = str(
        info.get("cache_key")
        or package_key(cfg, name, render.digest(), infer.digest() if infer is not None else None, info)
    )
    check_name(run_dir.name, "run folder name", str(run_dir))

    archive_kind: archive_mod.ArchiveKind | None = None if cfg.archive == "none" else cfg.archive
    staged_archive: Path | None = None
    try:
        with cache.staging(run_dir) as tmp:
            build = _Build(tmp, link)
            timings: dict[str, float] = {}
            clips_data = _place_controls(build, clips, render)
            samples_data, specs = _place_generated(build, samples, infer, infer_dir)
            logs = _place_logs(build, infer, infer_dir, log_files)
            (tmp / cache.LOGS_DIR).mkdir(exist_ok=True)
            timings["copy"] = time.perf_counter() - t0

            sheet = None
            if cfg.contact_sheet:
                t = time.perf_counter()
                views = [
                    ClipViews(
                        clip_id,
                        {cam: tmp / rel for cam, rel in c.controls.items()},
                        c.num_frames,
                    )
                    for clip_id, c in clips_data.items()
                ]
                write_contact_sheet(tmp / CONTACT_SHEET, views)
                sheet = CONTACT_SHEET
                timings["contact_sheet"] = time.perf_counter() - t

            layout = None
            if cfg.cosmos_layout:
                t = time.perf_counter()
                summary = write_cosmos_layout(
                    tmp / COSMOS_DIR,
                    {
                        clip_id: ({cam: tmp / rel for cam, rel in c.controls.items()}, c.num_frames)
                        for clip_id, c in clips_data.items()
                    },
                    link=link,
                )
                layout = CosmosLayoutInfo(
                    root=f"{COSMOS_DIR}/{LAYOUT_DIR}",
                    chunk_frames=TARGET_CHUNK_FRAME,
                    overlap_frames=OVERLAP_FRAME,
                    max_chunks=MAX_CHUNK,
                    clips=summary,
                )
                timings["cosmos_layout"] = time.perf_counter() - t

            unrecorded = [
                p
                for p in tmp.rglob("*")
                if p.is_file() and p.name != MANIFEST_NAME and p.relative_to(tmp).as_posix() not in build.records
            ]
            records = [*build.records.values(), *record_files(tmp, unrecorded)]
            archive_info = None
            if archive_kind is not None:
                archive_info = ArchiveInfo(
                    path=archive_mod.archive_path(run_dir, archive_kind).name, format=archive_kind
                )
            timings["total"] = time.perf_counter() - t0
            manifest = Manifest(
                step=STEP,
                step_version=STEP_VERSION,
                cache_key=key,
                files=sorted(records, key=lambda r: r.path),
                settings=cfg.model_dump(mode="json"),
                upstream=_upstream(infer, infer_dir) if infer is not None else _upstream(render, render_dir),
                timings_s=timings,
                data=dump(
                    PackageData(
                        name=name,
                        source=info.get("source"),
                        config=info.get("config"),
                        info={k: v for k, v in info.items() if k not in _INFO_KEYS},
                        versions=software_versions(),
                        inputs=PackageInputs(
                            render=_input_ref(render, render_dir),
                            infer=_input_ref(infer, infer_dir) if infer is not None else None,
                        ),
                        clips=clips_data,
                        samples=samples_data,
                        spec=specs,
                        logs=logs,
                        contact_sheet=sheet,
                        cosmos_layout=layout,
                        archive=archive_info,
                    )
                ),
            )
            write_manifest(tmp, manifest)
            if archive_kind is not None:
                dest = archive_mod.archive_path(run_dir, archive_kind)
                staged_archive = archive_mod.stage_archive(tmp, dest, archive_kind, top=run_dir.name)
            published = cache.publish(tmp, run_dir, key)
        if staged_archive is not None and archive_kind is not None:
            if published.created_at == manifest.created_at and published.files == manifest.files:
                archive_mod.commit_archive(staged_archive, archive_mod.archive_path(run_dir, archive_kind))
            else:  # a concurrent run published this key first; its archive goes with its folder
                staged_archive.unlink(missing_ok=True)
            staged_archive = None
        return published
    except OSError as e:
        raise PackageError(f"{run_dir}: cannot build the run folder: {e}") from e
    finally:
        if staged_archive is not None:
            staged_archive.unlink(missing_ok=True)


# ------------------------------------------------------------------------------------------------ upstream inputs


def _upstream(manifest: Manifest, folder: Path | None) -> UpstreamRef:
    assert folder is not None
    return UpstreamRef(
        step=manifest.step,
        cache_key=manifest.cache_key,
        digest=manifest.digest(),
        manifest_path=str(folder / MANIFEST_NAME),
    )


def _input_ref(manifest: Manifest, folder: Path | None) -> InputRef:
    return InputRef(cache_key=manifest.cache_key, digest=manifest.digest(), manifest_path=str(folder))


Upstream = tuple[Path, str]
"""A file of an upstream output: (its path, its path relative to the upstream manifest's folder)."""


def _clips(render: Manifest, render_dir: Path) -> dict[str, tuple[dict[str, Upstream], int]]:
    """Map clip → ({camera: upstream file}, num_frames), validated."""
    where = str(render_dir / MANIFEST_NAME)
    clips = payload(render, RenderData).clips
    if not clips:
        raise PackageError(f"{where}: `data.clips` is empty; nothing to package")
    out = {}
    for clip_id, clip in sorted(clips.items()):
        check_name(clip_id, "clip id", where)
        paths = {}
        for camera, rel in sorted(clip.cameras.items()):
            check_name(camera, "camera name", where)
            paths[camera] = (inside(render_dir, rel, where), rel)
        out[clip_id] = (paths, clip.num_frames)
    return out


@dataclass(frozen=True)
class _SampleFiles:
    """One infer sample and its files, each (path, upstream rel path), validated."""

    sample: InferredSample
    json: Upstream | None
    spec: Upstream | None
    outputs: dict[str, Upstream]
    grid: Upstream | None
    combined: Upstream | None


def _samples(infer: Manifest, infer_dir: Path) -> dict[str, _SampleFiles]:
    """Map sample name → its files in the infer output."""
    where = str(infer_dir / MANIFEST_NAME)

    def upstream(rel: str | None) -> Upstream | None:
        return (inside(infer_dir, rel, where), rel) if rel else None

    out = {}
    for name, sample in sorted(payload(infer, InferData).samples.items()):
        check_name(name, "sample name", where)
        out[name] = _SampleFiles(
            sample,
            json=upstream(sample.json_),
            spec=upstream(sample.spec),
            outputs={view: (inside(infer_dir, rel, where), rel) for view, rel in sorted(sample.outputs.items())},
            grid=upstream(sample.grid),
            combined=upstream(sample.combined),
        )
    return out


# ----------------------------------------------------------------------------------------------------- placement


def _place_controls(
    build: _Build, clips: dict[str, tuple[dict[str, Upstream], int]], render: Manifest
) -> dict[str, PackagedClip]:
    data: dict[str, PackagedClip] = {}
    for clip_id, (cameras, num_frames) in clips.items():
        controls = {}
        for camera, (src, rel) in cameras.items():
            if src.is_dir():
                controls[camera] = build.place_tree(src, f"{CONTROLS_DIR}/{clip_id}/{camera}", render, rel)
            else:
                controls[camera] = build.place(src, f"{CONTROLS_DIR}/{clip_id}/{clip_id}.{camera}.mp4", render, rel)
        data[clip_id] = PackagedClip(num_frames=num_frames, controls=controls)
    return data


def _place_generated(
    build: _Build, samples: dict[str, _SampleFiles], infer: Manifest | None, infer_dir: Path | None
) -> tuple[dict[str, PackagedSample], list[str]]:
    data: dict[str, PackagedSample] = {}
    spec_by_source: dict[Path, str] = {}
    for name, sample in samples.items():
        spec_rel = None
        if sample.spec is not None:
            src, rel = sample.spec
            if src not in spec_by_source:
                placed = build.place(src, build.free_name(SPEC_DIR, src.name), infer, rel)
                spec_by_source[src] = _loadable_spec(build, placed, src, infer_dir)
            spec_rel = spec_by_source[src]

        def gen(pair: Upstream, sample_name: str = name) -> str:
            src, rel = pair
            return build.place(src, f"{GENERATED_DIR}/{sample_name}/{src.name}", infer, rel)

        sample_dump = None
        if sample.json is not None and infer_dir is not None:
            sample_dump = _place_dump(build, sample.json[0], f"{GENERATED_DIR}/{name}", infer_dir)
        data[name] = PackagedSample(
            clip_id=sample.sample.clip_id,
            **sample.sample.model_dump(include=set(_SAMPLE_META), exclude_unset=True),
            spec=spec_rel,
            json_=sample_dump,
            outputs={view: gen(pair) for view, pair in sample.outputs.items()},
            grid=gen(sample.grid) if sample.grid else None,
            combined=gen(sample.combined) if sample.combined else None,
        )
    return data, sorted(spec_by_source.values())


def _spec_problem(path: Path) -> str | None:
    """Why NVIDIA's loader would refuse the spec file at ``path`` as it lies, or None."""
    from scene2world.errors import InferenceError
    from scene2world.inference.spec import load_spec

    try:
        load_spec(path)
    except InferenceError as e:
        return str(e).splitlines()[0]
    return None


def _spec_records(path: Path) -> list[dict[str, Any]]:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        return [json.loads(text)]
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _loadable_spec(build: _Build, rel: str, src: Path, infer_dir: Path | None) -> str:
    """Make the placed spec ``rel`` point at the run folder's own files and load from where it lies.

    Paths into the infer output are rewritten to the run folder's copies (the file is kept as linked when
    that changes nothing); a spec naming files outside the infer output (a user's spec run as is) is kept.
    """
    from scene2world.errors import InferenceError
    from scene2world.inference.spec import rebase_paths

    dst = build.root / rel
    if infer_dir is None:
        return rel
    records = _spec_records(src)
    try:
        moved = [
            rebase_paths(d, old_dir=src.parent, old_root=infer_dir, new_root=build.root, new_dir=dst.parent)
            for d in records
        ]
    except InferenceError:
        return rel
    if moved != records:
        dst.unlink()
        if src.suffix == ".json":
            dst.write_text(json.dumps(moved[0], indent=4, ensure_ascii=False) + "\n", encoding="utf-8")
        else:
            lines = "".join(json.dumps(d, separators=(",", ":"), ensure_ascii=False) + "\n" for d in moved)
            dst.write_text(lines, encoding="utf-8")
        build.records[rel] = record_files(build.root, [dst])[0]
    if (problem := _spec_problem(dst)) is not None:
        raise PackageError(f"{src}: the spec does not load from the run folder: {problem}")
    return rel


def _place_dump(build: _Build, src: Path, folder: str, infer_dir: Path) -> str:
    """The sample dump ``<name>.json`` written into ``folder`` with its paths pointing at the run folder's files."""
    from scene2world.inference.spec import rebase_paths, write_sidecar

    rel = f"{folder}/{src.name}"
    dst = build.root / rel
    dst.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads(src.read_text(encoding="utf-8"))
    write_sidecar(
        rebase_paths(data, old_dir=src.parent, old_root=infer_dir, new_root=build.root, new_dir=dst.parent), dst
    )
    build.records[rel] = record_files(build.root, [dst])[0]
    if (problem := _spec_problem(dst)) is not None:
        raise PackageError(f"{src}: the sample dump does not load from the run folder: {problem}")
    return rel


def _place_logs(build: _Build, infer: Manifest | None, infer_dir: Path | None, extra: Sequence[Path]) -> list[str]:
    placed = []
    if infer is not None and infer_dir is not None:
        where = str(infer_dir / MANIFEST_NAME)
        for rel in payload(infer, InferData).logs:
            src = inside(infer_dir, rel, where)
            placed.append(build.place(src, build.free_name(cache.LOGS_DIR, src.name), infer, rel))
    for path in extra:
        path = Path(path)
        placed.append(build.place(path, build.free_name(cache.LOGS_DIR, path.name)))
    return placed
