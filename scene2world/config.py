"""Every setting of the pipeline, in one place, as pydantic models.

The models are the Prefect parameter schema and the CLI's ``--set`` keys. YAML files in
``configs/`` are validated against :class:`PipelineConfig`; an invalid value fails with a
message naming the file, the key, the value and what is allowed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, TypeVar, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from scene2world.errors import ConfigError
from scene2world.scene.model import DEFAULT_CAMERA_NAMES

CameraNameLiteral = Literal[
    "camera_front_wide_120fov",
    "camera_front_tele_30fov",
    "camera_cross_right_120fov",
    "camera_cross_left_120fov",
    "camera_rear_left_70fov",
    "camera_rear_right_70fov",
    "camera_rear_tele_30fov",
]
CAMERA_NAMES: tuple[CameraNameLiteral, ...] = get_args(CameraNameLiteral)
if CAMERA_NAMES != DEFAULT_CAMERA_NAMES:  # the Literal mirrors scene.model.CameraName for the schema
    raise ImportError("config.CameraNameLiteral is out of step with scene.model.CameraName")
# The enumerations of the settings below: each is the one owner of its values; the code that
# checks or offers them (the CLI's choices, the renderer's argument checks) takes them from here
# with typing.get_args.
Look = Literal["nvidia", "fixed"]
"""``nvidia``: NVIDIA's public renderer, quirks included; ``fixed``: the quirks corrected (docs/looks.md)."""
Device = Literal["auto", "cpu", "gpu"]
"""EGL device: ``gpu`` = NVIDIA EGL, ``cpu`` = Mesa llvmpipe, ``auto`` = GPU when present."""
Msaa = Literal[1, 4]
"""Multisample anti-aliasing samples per pixel (NVIDIA: 4)."""
LineCaps = Literal["culled", "all"]
X264Preset = Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"]
ArchiveKind = Literal["zip", "tar.gz"]
"""Archive formats of a run folder (``package.archive`` adds ``none``)."""
Engine = Literal["preview", "cosmos"]
Backend = Literal["auto", "gloo", "nccl"]
"""torch.distributed backend; ``auto`` = NCCL on GPU, gloo on CPU."""

DEFAULT_CRF = 18
"""libx264 constant rate factor of NVIDIA's control videos."""
DEFAULT_PRESET: X264Preset = "slow"
"""libx264 preset of NVIDIA's control videos."""

NVIDIA_EXAMPLE1_URL = (
    "https://github.com/nvidia-cosmos/cosmos-dependencies/releases/download/assets/multiview_example1.zip"
)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


_ModelT = TypeVar("_ModelT", bound=BaseModel)


class DownloadConfig(_Model):
    """Where the scene dataset comes from and how it is fetched."""

    source: str = Field(
        "assets/example",
        description="Dataset name from `datasets`, an http(s):// or file:// URL, an archive (.zip, .tar.*) "
        "or a folder. Relative paths are taken from the current directory.",
    )
    sha256: str | None = Field(
        None, pattern=r"^[0-9a-f]{64}$", description="Expected sha256 of a downloaded archive (hex); None = not pinned."
    )
    clip_ids: list[str] | None = Field(None, description="Only these clips (default: every clip discovered).")
    retries: int = Field(4, ge=0, le=20, description="HTTP retries with exponential backoff.")
    timeout_s: float = Field(60.0, gt=0, description="HTTP connect/read timeout, seconds.")
    max_extract_bytes: int = Field(
        20 * 1024**3, gt=0, description="Refuse archives that would extract to more than this many bytes."
    )


class RenderConfig(_Model):
    """World-scenario control-video rendering (NVIDIA v3 look)."""

    cameras: list[CameraNameLiteral] | None = Field(
        None,
        description="Rig cameras to render (underscore names); None = every camera each clip's own rig has. "
        "A named camera that no clip has is an error.",
    )
    frames: str | None = Field(
        None,
        pattern=r"^\d*:\d*$",
        description="Half-open range START:END of the 30 fps timeline (either side may be empty); None = all.",
    )
    look: Look = Field(
        "nvidia", description="`nvidia` reproduces NVIDIA's pixels, quirks included; `fixed` corrects the quirks."
    )
    msaa: Msaa = Field(4, description="Multisample anti-aliasing samples (NVIDIA uses 4).")
    line_caps: LineCaps = Field(
        "culled",
        description="`culled`: line caps that neighbouring geometry covers are left out and dense runs lofted "
        "(2.9x fewer triangles; on the bundled example 2e-6 of lit pixels differ from `all` by more than 16/255); "
        "`all`: NVIDIA's geometry triangle for triangle (18 per line segment).",
    )
    device: Device = Field(
        "auto", description="EGL device: `gpu` = NVIDIA EGL, `cpu` = Mesa llvmpipe, `auto` = GPU when present."
    )
    crf: int = Field(DEFAULT_CRF, ge=0, le=51, description="libx264 constant rate factor (NVIDIA: 18).")
    preset: X264Preset = Field(DEFAULT_PRESET, description="libx264 preset (NVIDIA: slow).")
    png: bool = Field(False, description="Write lossless PNG frames instead of mp4 videos.")
    workers: int = Field(0, ge=0, le=64, description="Camera render processes; 0 = one per CPU core (max cameras).")
    task_runner: Literal["local", "dask"] = Field(
        "local",
        description="Where the per-(clip, camera) render tasks run in a pipeline run: `local` = render processes "
        "on this machine (`workers` of them); `dask` = prefect-dask's DaskTaskRunner (the `dask` extra).",
    )
    dask_address: str | None = Field(
        None,
        pattern=r"^(tcp|tls|inproc|ucx)://\S+$",
        description="Scheduler of an existing Dask cluster (tcp://host:8786) for `task_runner: dask`; "
        "None = a local Dask cluster started for the run.",
    )


VIDEO_WIDTH_PX = 1280
VIDEO_HEIGHT_PX = 720
"""NVIDIA's control-video size (its renderer's ``RESIZE_RESOLUTION`` = [720, 1280]): what the renderer draws
and writes, and the frame size Cosmos's 720p models take (docs/cosmos.md)."""

MAX_SEED = 2**32 - 1
"""The largest seed NVIDIA's generator takes (numpy's 32-bit seed); autoregressive chunk i uses seed + i."""


class CosmosEngineConfig(_Model):
    """Settings of the real Cosmos-Transfer2.5 engine (a user's cosmos-transfer2.5 checkout)."""

    repo_dir: Path | None = Field(None, description="cosmos-transfer2.5 checkout (runs `-m examples.multiview`).")
    python: str | None = Field(
        None,
        description="Python interpreter of the Cosmos environment; None = the checkout's `.venv/bin/python`. "
        "A bare name (`python3`) is looked up on PATH.",
    )
    checkpoint_path: str | None = Field(
        None,
        description="Checkpoint (.pt, hf://...); None = the model's default. A relative local path is taken from "
        "the current directory.",
    )
    experiment: str | None = Field(None, description="Experiment name; None = the model's default.")
    disable_guardrails: bool = Field(False, description="Pass --disable-guardrails.")
    offload_guardrail_models: bool = Field(False, description="Pass --offload-guardrail-models.")


class InferConfig(_Model):
    """Cosmos multiview inference: the spec fields, the engine and the launch."""

    engine: Engine = Field(
        "preview", description="`preview`: scene2world's own torchrun worker (no model); `cosmos`: the real model."
    )
    nproc_per_node: int = Field(2, ge=1, le=64, description="torchrun ranks (Cosmos needs 1, 2, 4 or 8).")
    backend: Backend = Field("auto", description="torch.distributed backend (auto: nccl on GPU).")
    timeout_s: float = Field(6 * 3600, gt=0, description="Stop the whole torchrun process group after this long.")
    hang_timeout_s: float = Field(
        600.0,
        gt=0,
        description="Stop the launch when a rank that heartbeats (the preview engine) has been silent this long.",
    )
    prompt: str = Field(
        "A realistic autonomous driving scene through city streets in daylight, consistent across all cameras.",
        min_length=1,
        description="Text prompt of the single `default` variant, used when neither `prompts` nor the dataset "
        "gives variants (`{caption}` is replaced by the clip's caption).",
    )
    prompts: dict[str, str] | None = Field(
        None,
        description="Prompt variants {name: text}; one sample per clip x variant x seed. `{caption}` in a text is "
        "replaced by the clip's caption (captions/<clip>.txt). Overrides the dataset's prompts/<clip>.json.",
    )
    negative_prompt: str | None = Field(None, description="Written to the spec; the multiview model ignores it.")
    seed: int = Field(
        0,
        ge=0,
        le=MAX_SEED,
        description="Sampling seed when `seeds` is not set (autoregressive chunk i uses seed + i).",
    )
    seeds: list[int] | None = Field(
        None, min_length=1, description="Several seeds: one sample per clip x variant x seed (overrides `seed`)."
    )
    guidance: int = Field(3, ge=0, le=7, description="Classifier-free guidance, integer 0-7.")
    num_conditional_frames: int = Field(0, ge=0, le=32, description="RGB frames to condition on (0: control only).")
    control_weight: float = Field(1.0, ge=0.0, le=1.0, description="Scale of the control branch.")
    fps: int = Field(10, ge=1, le=30, description="Model fps; the 30 fps controls are subsampled by 30/fps.")
    num_steps: int = Field(35, ge=1, le=200, description="Sampler steps.")
    enable_autoregressive: bool = Field(False, description="Generate several overlapping 29-frame chunks.")
    num_chunks: int = Field(2, ge=1, le=100, description="Autoregressive chunks (clamped to what the controls allow).")
    chunk_overlap: int = Field(1, ge=0, le=28, description="Frames shared between autoregressive chunks.")
    save_combined_views: bool = Field(False, description="One time-concatenated mp4 instead of per-view mp4s + grid.")
    cosmos: CosmosEngineConfig = Field(default_factory=CosmosEngineConfig)

    @field_validator("prompts")
    @classmethod
    def _variant_names(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is not None:
            if not value:
                raise ValueError("give at least one variant {name: text}, or leave `prompts` unset")
            for name, text in value.items():
                if not name.strip() or not str(text).strip():
                    raise ValueError(f"variant {name!r}: name and text must be non-empty")
        return value

    @field_validator("seeds")
    @classmethod
    def _seed_range(cls, value: list[int] | None) -> list[int] | None:
        if value is not None:
            bad = [s for s in value if not 0 <= s <= MAX_SEED]
            if bad:
                raise ValueError(f"seeds must be 0..{MAX_SEED}, got {bad}")
            if len(set(value)) != len(value):
                raise ValueError(f"seeds must be distinct, got {value}")
        return value

    def seed_list(self) -> list[int]:
        """The seeds of every variant: ``seeds``, else ``[seed]``."""
        return list(self.seeds) if self.seeds else [self.seed]


class PackageConfig(_Model):
    """What the run folder contains."""

    archive: Literal["none", ArchiveKind] = Field("zip", description="Also write the run folder as an archive.")
    contact_sheet: bool = Field(True, description="Write a PNG of all control views at the middle frame.")
    cosmos_layout: bool = Field(
        False, description="Also write Cosmos's post-training layout (control_input_hdmap_bbox/ftheta_camera_*/)."
    )


class PipelineConfig(_Model):
    """The whole pipeline: download -> render -> infer -> package."""

    name: str = Field("scene2world", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="Run name (folder names).")
    data_root: Path = Field(Path(".scene2world"), description="Cache and outputs; relative to the current directory.")
    runs_dir: Path = Field(Path("runs"), description="Packaged run folders; relative to the current directory.")
    datasets: dict[str, str] = Field(
        default_factory=lambda: {"nvidia-example1": NVIDIA_EXAMPLE1_URL},
        description="Named dataset sources usable as `download.source`.",
    )
    download: DownloadConfig = Field(default_factory=DownloadConfig)
    render: RenderConfig = Field(default_factory=RenderConfig)
    infer: InferConfig = Field(default_factory=InferConfig)
    package: PackageConfig = Field(default_factory=PackageConfig)

    @field_validator("datasets")
    @classmethod
    def _names(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not key or "/" in key or ":" in key:
                raise ValueError(f"dataset name {key!r} must be a plain word (no '/' or ':')")
        return value


def format_validation_error(err: ValidationError, source: str) -> str:
    """One line per problem: ``<source>: `key.path`: message (got value)``, with allowed values."""
    lines = []
    for item in err.errors():
        loc = ".".join(str(x) for x in item["loc"]) or "(top level)"
        msg = item["msg"]
        if item["type"] == "extra_forbidden":
            msg = "unknown key; check the spelling against the settings of scene2world/config.py"
        got = item.get("input")
        shown = "" if item["type"] in ("missing", "extra_forbidden") or isinstance(got, dict) else f" (got {got!r})"
        lines.append(f"{source}: `{loc}`: {msg}{shown}")
    return "\n".join(lines)


def parse_overrides(overrides: list[str]) -> dict[str, Any]:
    """Turn ``["render.msaa=1", "infer.engine=preview"]`` into a nested dict (values parsed as YAML)."""
    tree: dict[str, Any] = {}
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. --set render.msaa=1")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError as e:
            raise ConfigError(f"--set {item!r}: the value is not valid YAML: {e}") from e
        node = tree
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {item!r}: `{part}` was already given a scalar value")
        node[parts[-1]] = value
    return tree


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def load_config(path: Path | None = None, overrides: list[str] | None = None) -> PipelineConfig:
    """Load a pipeline config from YAML (or the defaults) and apply ``--set`` overrides.

    Raises ConfigError naming the file, the key and the allowed values.
    """
    data: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        path = Path(path)
        source = str(path)
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except FileNotFoundError as e:
            raise ConfigError(f"{path}: config file not found; see configs/ for examples") from e
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise ConfigError(f"{path}: invalid YAML{where}: {getattr(e, 'problem', e)}") from e
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of settings, got {type(loaded).__name__}")
        data = loaded
    if overrides:
        data = _deep_merge(data, parse_overrides(overrides))
        source += " + --set"
    try:
        return PipelineConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError(format_validation_error(e, source)) from e


def updated(model: _ModelT, changes: dict[str, Any], source: str) -> _ModelT:
    """A copy of ``model`` with ``changes`` applied and validated; ConfigError names the option."""
    try:
        return type(model).model_validate({**model.model_dump(), **changes})
    except ValidationError as e:
        raise ConfigError(format_validation_error(e, source)) from e


def merge_config(path: Path | None, explicit: dict[str, Any]) -> PipelineConfig:
    """The config file at ``path`` (or the defaults) with ``explicit`` values laid over it, key by key.

    ``explicit`` holds only what a caller set (e.g. a flow's parameters that are not None, nested
    models dumped with ``exclude_unset``), so ``{"render": {"frames": "0:30"}}`` changes that one
    key and keeps the file's other render settings. Raises ConfigError naming the key.
    """
    base = load_config(path).model_dump(mode="json")
    source = (str(path) if path is not None else "defaults") + " + parameters"
    try:
        return PipelineConfig.model_validate(_deep_merge(base, explicit))
    except ValidationError as e:
        raise ConfigError(format_validation_error(e, source)) from e
