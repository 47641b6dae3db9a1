"""What each step hands to the next: the typed ``data`` payload of every step manifest.

One pydantic model per step (:class:`DownloadData`, :class:`RenderData`, :class:`InferData`,
:class:`PackageData`) plus the per-sample cache entry of the infer step (:class:`SampleCacheData`).
The step that writes a manifest builds its model and stores :func:`dump` of it in
``Manifest.data``; every reader goes through :func:`scene2world.manifest.payload`, which validates
the ``data`` of a manifest against the model of the step that wrote it and raises one line naming
the manifest file and the field when it does not fit.

The JSON is the one the steps wrote before these models existed (same keys, same order, same
values), so cached outputs and their cache keys stay valid. A field whose default is ``None`` and
that is marked *absent in older manifests* may be missing from a manifest written by an earlier
scene2world: it is then left out again when the model is dumped (``exclude_unset``), so a
manifest read and written back is unchanged byte for byte.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

StepName = Literal["download", "render", "infer", "package"]


class Part(BaseModel):
    """Base of every model here: unknown keys are refused, values are read-only; a field spelled
    differently in the JSON (``json``, which would shadow a pydantic method) is read and written by
    its JSON name."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_by_name=True, serialize_by_alias=True)


class Payload(Part):
    """Base of the step payloads (``Manifest.data``)."""

    STEP: ClassVar[StepName]
    """The step whose manifests carry this payload."""


def dump(payload: Payload) -> dict[str, Any]:
    """The JSON-able ``Manifest.data`` of ``payload``: fields not given (absent in older manifests) left out."""
    return payload.model_dump(mode="json", exclude_unset=True)


# ------------------------------------------------------------------------------------------------ download


class DownloadedClip(Part):
    """One clip of the downloaded dataset."""

    clip_id: str
    format: str = Field(description="`clipgt` or `rdshq` (scene.discover.ClipFormat).")
    path: str = Field(description="The clip's folder, POSIX, relative to the manifest's folder.")
    caption: str | None = Field(None, description="The dataset's caption of the clip (absent in older manifests).")
    prompts: dict[str, str] | None = Field(
        None, description="Prompt variant name -> text the dataset carries, None if none (absent in older manifests)."
    )


class DownloadData(Payload):
    """``data`` of a download manifest: where the dataset came from and its clips, sorted by id."""

    STEP: ClassVar[StepName] = "download"

    source: str = Field(description="The resolved source (a named dataset becomes its URL).")
    source_kind: Literal["folder", "archive", "url"]
    content_sha256: str = Field(description="sha256 of the archive, or the folder's tree digest.")
    not_modified: bool | None = Field(description="True when the server answered 304; None for local sources.")
    clips: list[DownloadedClip]


# ------------------------------------------------------------------------------------------------ render


class RenderedClip(Part):
    """One clip of a render output."""

    cameras: dict[str, str] = Field(
        description="Camera -> its control video (or folder of PNG frames), relative to the manifest's folder."
    )
    num_frames: int = Field(ge=0)
    frames: tuple[int, int] = Field(description="Half-open frame range of the clip's 30 fps timeline.")
    format: str = Field(description="`clipgt` or `rdshq` (scene.discover.ClipFormat).")
    rendered: list[str] | None = Field(None, description="Cameras rendered by this run (absent in older manifests).")
    reused: list[str] | None = Field(
        None, description="Cameras reused from the per-camera cache (absent in older manifests)."
    )


class RenderData(Payload):
    """``data`` of a render manifest."""

    STEP: ClassVar[StepName] = "render"

    clips: dict[str, RenderedClip]


# ------------------------------------------------------------------------------------------------ infer


class SampleFiles(Part):
    """The files of one inferred sample, relative to the manifest's folder."""

    json_: str = Field(alias="json", description="Cosmos's sample dump.")
    outputs: dict[str, str] = Field(description="View -> generated video.")
    grid: str | None
    combined: str | None


class SampleCacheData(Payload):
    """``data`` of one sample's entry in the per-sample cache (``<data_root>/infer-samples/<key>``)."""

    STEP: ClassVar[StepName] = "infer"

    name: str
    clip_id: str
    variant: str
    variant_label: str
    seed: int
    prompt: str
    prompt_source: str
    files: SampleFiles


class InferredSample(Part):
    """One sample of an infer output (``<clip>.<variant>.<seed>``; any name for a spec run as is)."""

    clip_id: str | None = Field(description="None for a spec file run as is.")
    variant: str | None = Field(description="None for a spec file run as is.")
    variant_label: str | None = Field(None, description="Absent for a spec file run as is.")
    seed: int | None = Field(description="None for a spec file run as is.")
    prompt: str | None = Field(None, description="Absent for a spec file run as is.")
    prompt_source: str | None = Field(None, description="Absent for a spec file run as is.")
    reused: bool = Field(description="True when taken from the per-sample cache, not inferred by this run.")
    key: str = Field(description="The sample's cache key (the step key for a spec file run as is).")
    spec: str | None = Field(description="The spec file listing the sample.")
    json_: str | None = Field(alias="json", description="Cosmos's sample dump.")
    outputs: dict[str, str] = Field(description="View -> generated video.")
    grid: str | None
    combined: str | None


class InferData(Payload):
    """``data`` of an infer manifest."""

    STEP: ClassVar[StepName] = "infer"

    engine: str
    nproc_per_node: int
    spec: str = Field(description="The spec file of every sample (relative, or absolute for a spec run as is).")
    samples: dict[str, InferredSample]
    logs: list[str]
    warnings: list[str]


# ------------------------------------------------------------------------------------------------ package


class InputRef(Part):
    """An upstream output a run folder was built from."""

    cache_key: str
    digest: str
    manifest_path: str = Field(description="The upstream step's folder when it was read.")


class PackageInputs(Part):
    """The render and infer outputs of a run folder (infer None: controls only)."""

    render: InputRef
    infer: InputRef | None


class PackagedClip(Part):
    """One clip of a run folder."""

    num_frames: int = Field(ge=0)
    controls: dict[str, str] = Field(description="Camera -> control video (or PNG folder) in the run folder.")


class PackagedSample(Part):
    """One sample of a run folder; the infer sample's fields it carried are copied, the others left out."""

    clip_id: str | None
    variant: str | None = None
    variant_label: str | None = None
    seed: int | None = None
    prompt: str | None = None
    prompt_source: str | None = None
    reused: bool | None = None
    key: str | None = None
    spec: str | None
    json_: str | None = Field(alias="json")
    outputs: dict[str, str]
    grid: str | None
    combined: str | None


class CosmosLayoutInfo(Part):
    """The Cosmos training-dataset layout written into a run folder."""

    root: str
    chunk_frames: int
    overlap_frames: int
    max_chunks: int
    clips: dict[str, dict[str, int]] = Field(description='Clip -> {"chunks", "left_out_frames"}.')


class ArchiveInfo(Part):
    """The archive written beside a run folder."""

    path: str = Field(description="File name of the archive, beside the run folder.")
    format: Literal["zip", "tar.gz"]


class PackageData(Payload):
    """``data`` of a run folder's manifest."""

    STEP: ClassVar[StepName] = "package"

    name: str
    source: str | None
    config: dict[str, Any] | None
    info: dict[str, Any] = Field(description="Other run facts the caller gave.")
    versions: dict[str, str | None]
    inputs: PackageInputs
    clips: dict[str, PackagedClip]
    samples: dict[str, PackagedSample]
    spec: list[str]
    logs: list[str]
    contact_sheet: str | None
    cosmos_layout: CosmosLayoutInfo | None
    archive: ArchiveInfo | None
