"""The Cosmos-Transfer2.5 multiview spec: NVIDIA's ``MultiviewInferenceArguments`` as a pydantic model.

Field names, defaults, bounds and order follow NVIDIA's model (``docs/cosmos.md``, "NVIDIA's spec
model"): extra keys are forbidden, paths must name existing files and are resolved from the spec
file's folder, ``prompt`` wins over ``prompt_path`` (whose file must still exist), and the
``validate_input_paths`` rules (an active view needs ``control_path``, conditional frames need
``input_path``) hold. It is stricter than NVIDIA where that is safe: types
are not coerced (``guidance: 3.0``, ``"yes"`` for a bool are rejected), ``~`` paths, blank
``.jsonl`` lines and a ``.json`` holding a list get clear messages instead of crashes. Every file
this module writes is therefore accepted by NVIDIA's own loader.

Error messages name the file, the line (counted from 1), the sample and the field.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from scene2world.atomic import atomic_write_text
from scene2world.config import InferConfig
from scene2world.errors import InferenceError
from scene2world.inference.views import VIEW_KEYS, view_for_camera
from scene2world.scene.model import CameraName

SPEC_SUFFIXES = (".json", ".jsonl")
SPEC_VIEW_FIELDS: tuple[str, ...] = (
    "front_wide",
    "rear",
    "rear_left",
    "rear_right",
    "cross_left",
    "cross_right",
    "front_tele",
)
"""The view fields in NVIDIA's declaration order (the ``<name>.json`` order), not canonical order."""

AUTOREGRESSIVE_CONDITIONAL_FRAMES = (0, 1, 5)
"""Values of ``num_conditional_frames_per_view`` NVIDIA allows in autoregressive mode."""

_MAX_MESSAGES = 20


def _resolve_file(value: Any, info: ValidationInfo) -> Path | None:
    """NVIDIA's ``FilePath`` rule: an existing file, relative paths taken from the spec's folder.

    The folder comes from the validation context ``{"base_dir": ...}``; without one, the current
    directory is used (NVIDIA ``chdir``s into the spec's folder while validating).
    """
    if value is None:
        return None
    if not isinstance(value, str | Path):
        raise ValueError(f"must be a path string, got {type(value).__name__}")
    text = str(value)
    if not text.strip():
        raise ValueError("must be a non-empty path")
    if text.startswith("~"):
        raise ValueError(
            "`~` is not expanded by NVIDIA's loader (it checks the file before expanding, so the path "
            "always fails); write the path relative to the spec file's folder or absolute"
        )
    path = Path(text)
    relative = not path.is_absolute()
    if relative:
        base = (info.context or {}).get("base_dir")
        path = Path(base if base is not None else os.getcwd()) / path
    path = Path(os.path.abspath(path))
    if not path.is_file():
        where = " (relative paths are taken from the spec file's folder)" if relative else ""
        raise ValueError(f"file not found: {path}{where}")
    return path


class ViewConfig(BaseModel):
    """One view of a sample (NVIDIA's ``ViewConfig``). A view is *active* iff it has ``control_path``."""

    model_config = ConfigDict(extra="forbid")

    input_path: Path | None = Field(
        default=None, description="RGB video of this camera; needed when conditioning on input frames."
    )
    control_path: Path | None = Field(
        default=None, description="World-scenario (HD map + boxes) control video; makes the view active."
    )
    num_conditional_frames_per_view: StrictInt = Field(
        default=0, ge=0, le=5, description="Autoregressive mode only: RGB frames to condition on (0, 1 or 5)."
    )

    @field_validator("input_path", "control_path", mode="before")
    @classmethod
    def _existing_file(cls, value: Any, info: ValidationInfo) -> Path | None:
        return _resolve_file(value, info)

    @property
    def active(self) -> bool:
        """Whether the view takes part (it has a control video)."""
        return self.control_path is not None


def _no_view() -> ViewConfig:
    """An inactive view (the default of every view field)."""
    return ViewConfig()


class MultiviewInferenceArguments(BaseModel):
    """One Cosmos multiview sample, field for field NVIDIA's ``MultiviewInferenceArguments``."""

    model_config = ConfigDict(extra="forbid")

    name: StrictStr = Field(description="Output base name; unique per run.")
    prompt_path: Path | None = Field(default=None, description="Text file holding the prompt (stripped).")
    prompt: StrictStr | None = Field(default=None, description="Prompt text; wins over `prompt_path`.")
    negative_prompt: StrictStr | None = Field(
        default=None, description="Written to the sidecar; the multiview model ignores it."
    )
    seed: StrictInt = Field(default=0, description="Sampling seed; autoregressive chunk i uses seed + i.")
    guidance: StrictInt = Field(default=3, ge=0, le=7, description="Classifier-free guidance, integer 0-7.")
    num_conditional_frames: StrictInt = Field(default=1, description="RGB frames of `input_path` to condition on.")
    control_weight: StrictFloat = Field(default=1.0, ge=0.0, le=1.0, description="Scale of the control branch.")
    front_wide: ViewConfig = Field(default_factory=_no_view, description="camera_front_wide_120fov")
    rear: ViewConfig = Field(default_factory=_no_view, description="camera_rear_tele_30fov")
    rear_left: ViewConfig = Field(default_factory=_no_view, description="camera_rear_left_70fov")
    rear_right: ViewConfig = Field(default_factory=_no_view, description="camera_rear_right_70fov")
    cross_left: ViewConfig = Field(default_factory=_no_view, description="camera_cross_left_120fov")
    cross_right: ViewConfig = Field(default_factory=_no_view, description="camera_cross_right_120fov")
    front_tele: ViewConfig = Field(default_factory=_no_view, description="camera_front_tele_30fov")
    fps: StrictInt = Field(default=10, gt=0, description="Model fps: input subsampling and output playback.")
    num_steps: StrictInt = Field(default=35, description="Sampler steps.")
    enable_autoregressive: StrictBool = Field(default=False, description="Generate overlapping 29-frame chunks.")
    num_chunks: StrictInt = Field(default=2, ge=1, description="Autoregressive chunks (clamped to the controls).")
    chunk_overlap: StrictInt = Field(default=1, description="Frames shared by consecutive autoregressive chunks.")
    save_combined_views: StrictBool = Field(
        default=True, description="True: one time-concatenated mp4; false: per-view mp4s and a 3x3 grid."
    )

    _origin: str = PrivateAttr(default="")

    @field_validator("prompt_path", mode="before")
    @classmethod
    def _existing_prompt_file(cls, value: Any, info: ValidationInfo) -> Path | None:
        return _resolve_file(value, info)

    @model_validator(mode="after")
    def _resolve_prompt(self) -> MultiviewInferenceArguments:
        if self.prompt is None and self.prompt_path is not None:
            try:
                self.prompt = self.prompt_path.read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as e:
                raise ValueError(f"`prompt_path`: cannot read {self.prompt_path}: {e}") from e
        return self

    @model_validator(mode="after")
    def _validate_input_paths(self) -> MultiviewInferenceArguments:
        active = self.active_views()
        if not active:
            raise ValueError(
                f"At least one view configuration with a control_path must be provided (views: {', '.join(VIEW_KEYS)})."
            )
        if not self.enable_autoregressive:
            if self.num_conditional_frames > 0:
                self._require_inputs(active, f"`num_conditional_frames` = {self.num_conditional_frames} > 0")
            return self
        per_view = {k: self.view(k).num_conditional_frames_per_view for k in active}
        bad = {k: v for k, v in per_view.items() if v not in AUTOREGRESSIVE_CONDITIONAL_FRAMES}
        if bad:
            raise ValueError(
                "autoregressive mode: `num_conditional_frames_per_view` must be 0, 1 or 5; got "
                + ", ".join(f"{k}={v}" for k, v in bad.items())
            )
        if len({v == 0 for v in per_view.values()}) > 1:
            raise ValueError(
                "autoregressive mode: `num_conditional_frames_per_view` must be 0 on every active view or "
                "non-zero on every active view; got " + ", ".join(f"{k}={v}" for k, v in per_view.items())
            )
        if any(per_view.values()):
            self._require_inputs(active, "`num_conditional_frames_per_view` > 0")
        return self

    def _require_inputs(self, active: Sequence[str], why: str) -> None:
        missing = [k for k in active if self.view(k).input_path is None]
        if missing:
            raise ValueError(
                f"{why} needs `input_path` (an RGB video) on every active view; missing on: "
                f"{', '.join(missing)}. Set `num_conditional_frames` to 0 for control-only generation."
            )

    def view(self, key: str) -> ViewConfig:
        """The :class:`ViewConfig` of spec key ``key`` (``front_wide``, ``rear``, …)."""
        if key not in VIEW_KEYS:
            raise InferenceError(f"unknown Cosmos view {key!r}; expected one of {', '.join(VIEW_KEYS)}")
        return getattr(self, key)

    def active_views(self) -> tuple[str, ...]:
        """Spec keys of the views with a ``control_path``, in canonical order."""
        return tuple(k for k in VIEW_KEYS if getattr(self, k).control_path is not None)

    @property
    def origin(self) -> str:
        """Where the sample came from (``spec.jsonl line 3``); empty when built in memory."""
        return self._origin

    def sidecar_json(self) -> str:
        """NVIDIA's ``<name>.json``: compact one-line dump of every field, absolute paths, resolved prompt."""
        return self.model_dump_json()


def check_sample_name(name: object) -> str:
    """``name`` if it can be an output base name (``<name>.mp4``), else InferenceError with the fix."""
    if not isinstance(name, str) or not name.strip():
        raise InferenceError(f"sample `name` must be a non-empty string, got {name!r}")
    bad = [c for c in ("/", "\\", "\0", "\n", "\r") if c in name]
    if bad or name in (".", "..") or name.startswith(("-", ".")) or name != name.strip():
        raise InferenceError(
            f"sample `name` {name!r} cannot be an output file name (Cosmos writes `<name>.mp4`); "
            "use letters, digits, `_`, `-` and `.`, not starting with `.` or `-`"
        )
    return name


def _check_suffix(path: Path) -> None:
    if path.suffix not in SPEC_SUFFIXES:
        raise InferenceError(
            f"{path}: a Cosmos spec must end in .json (one sample) or .jsonl (one sample per line), "
            f"got {path.suffix or 'no suffix'!r}"
        )


def _format_validation(err: ValidationError, where: str, name: object) -> list[str]:
    """One line per problem: ``<where>: sample 'n': `field`: message (got value)``."""
    who = f"sample {name!r}" if isinstance(name, str) else "sample"
    lines = []
    for item in err.errors():
        loc = ".".join(str(x) for x in item["loc"]) or "(sample)"
        kind = item["type"]
        msg = item["msg"].removeprefix("Value error, ")
        if kind == "extra_forbidden":
            msg = (
                "unknown key; NVIDIA's model forbids extra keys (old keys such as output_dir, "
                "save_individual_views and save_view_grid were removed)"
            )
        elif kind == "missing":
            msg = "required key is missing"
        got = item.get("input")
        shown = (
            ""
            if kind in ("missing", "extra_forbidden", "value_error") or isinstance(got, dict | list)
            else f" (got {got!r})"
        )
        lines.append(f"{where}: {who}: `{loc}`: {msg}{shown}")
    return lines


def _raise(problems: list[str]) -> None:
    if problems:
        more = len(problems) - _MAX_MESSAGES
        text = "\n".join(problems[:_MAX_MESSAGES]) + (f"\n… and {more} more" if more > 0 else "")
        raise InferenceError(text)


def validate_sample(
    data: Mapping[str, Any], *, base_dir: Path | None = None, where: str = "(in memory)"
) -> MultiviewInferenceArguments:
    """Validate one sample dict with NVIDIA's rules; relative paths are taken from ``base_dir``.

    Raises InferenceError whose lines name ``where``, the sample and the field.
    """
    if not isinstance(data, Mapping):
        raise InferenceError(f"{where}: a sample must be a JSON object, got {type(data).__name__}")
    context = {"base_dir": Path(base_dir).absolute() if base_dir is not None else None}
    try:
        sample = MultiviewInferenceArguments.model_validate(dict(data), context=context)
    except ValidationError as e:
        raise InferenceError("\n".join(_format_validation(e, where, data.get("name")))) from e
    sample._origin = where
    return sample


def _relative(path: Path, spec_dir: Path) -> str:
    """``path`` relative to ``spec_dir`` as a POSIX string (absolute when no relative path exists)."""
    full = Path(os.path.abspath(path))
    try:
        return Path(os.path.relpath(full, spec_dir)).as_posix()
    except ValueError:  # another drive on Windows
        return full.as_posix()


def build_sample(
    name: str,
    videos: Mapping[str | CameraName, Path],
    cfg: InferConfig,
    spec_dir: Path,
    *,
    inputs: Mapping[str | CameraName, Path] | None = None,
    prompt: str | None = None,
    seed: int | None = None,
) -> dict[str, Any]:
    """The spec dict of one sample, as NVIDIA's model accepts it.

    Args:
        name: output base name (``<name>.mp4``), e.g. the clip id.
        videos: rig camera name (``camera_front_wide_120fov``) → control video.
        cfg: the inference settings (prompt, fps, chunks, …).
        spec_dir: the folder the spec file will be written to; paths are written relative to it.
        inputs: optional camera name → RGB video, needed when ``cfg.num_conditional_frames > 0``.
        prompt: this sample's prompt (default ``cfg.prompt``).
        seed: this sample's seed (default ``cfg.seed``).

    Returns:
        A JSON-ready dict: every top-level field explicitly, the active views only, in NVIDIA's
        field order. It has been validated against the files under ``spec_dir``.
    """
    check_sample_name(name)
    spec_dir = Path(os.path.abspath(spec_dir))
    if not videos:
        raise InferenceError(f"sample {name!r}: no control videos given; pass camera name → control mp4")
    inputs = dict(inputs or {})
    views: dict[str, dict[str, Any]] = {}
    for camera, path in videos.items():
        key = view_for_camera(camera).key
        if key in views:
            raise InferenceError(f"sample {name!r}: camera {camera!s} given twice")
        views[key] = {"control_path": _relative(Path(path), spec_dir)}
    for camera, path in inputs.items():
        key = view_for_camera(camera).key
        if key not in views:
            raise InferenceError(
                f"sample {name!r}: input video for {camera!s} has no control video; a view is active only "
                "with a control video"
            )
        views[key] = {"input_path": _relative(Path(path), spec_dir), **views[key]}
    if cfg.num_conditional_frames > 0:
        missing = [k for k, v in views.items() if "input_path" not in v]
        if missing:
            raise InferenceError(
                f"sample {name!r}: `infer.num_conditional_frames` = {cfg.num_conditional_frames} needs an RGB "
                f"input video for every active view; missing: {', '.join(missing)}. Set "
                "`infer.num_conditional_frames=0` for control-only generation."
            )
    sample: dict[str, Any] = {"name": name, "prompt": cfg.prompt if prompt is None else prompt}
    if cfg.negative_prompt is not None:
        sample["negative_prompt"] = cfg.negative_prompt
    sample.update(
        seed=cfg.seed if seed is None else seed,
        guidance=cfg.guidance,
        num_conditional_frames=cfg.num_conditional_frames,
        control_weight=float(cfg.control_weight),
    )
    for key in SPEC_VIEW_FIELDS:
        if key in views:
            sample[key] = views[key]
    sample.update(
        fps=cfg.fps,
        num_steps=cfg.num_steps,
        enable_autoregressive=cfg.enable_autoregressive,
        num_chunks=cfg.num_chunks,
        chunk_overlap=cfg.chunk_overlap,
        save_combined_views=cfg.save_combined_views,
    )
    validate_sample(sample, base_dir=spec_dir, where=f"sample {name!r} (spec folder {spec_dir})")
    return sample


PATH_FIELDS = ("control_path", "input_path")
"""The path fields of a view object (``prompt_path`` is the top-level one)."""


def rebase_paths(
    data: Mapping[str, Any], *, old_dir: Path, old_root: Path, new_root: Path, new_dir: Path
) -> dict[str, Any]:
    """A copy of the sample dict ``data`` whose files moved from under ``old_root`` to ``new_root``.

    Every path (``prompt_path`` and each view's ``control_path``/``input_path``) must be absolute or
    relative to ``old_dir`` (the folder of the file ``data`` was read from) and lie under
    ``old_root``; it is rewritten relative to ``new_dir`` (the
    folder of the file the sample will be written to), so NVIDIA's loader, which resolves paths from
    the spec file's folder, finds it. Field order and every other value are kept.
    Raises InferenceError for a path outside ``old_root``.
    """
    old_dir, old_root, new_root, new_dir = (Path(os.path.abspath(p)) for p in (old_dir, old_root, new_root, new_dir))

    def move(value: Any, fld: str) -> Any:
        if value is None:
            return None
        path = Path(value)
        full = Path(os.path.abspath(path if path.is_absolute() else old_dir / path))
        if not full.is_relative_to(old_root):
            full = full.resolve()
            if not full.is_relative_to(old_root.resolve()):
                raise InferenceError(f"sample {data.get('name')!r}: `{fld}` {value} is not under {old_root}")
            full = old_root / full.relative_to(old_root.resolve())
        return _relative(new_root / full.relative_to(old_root), new_dir)

    out = dict(data)
    if "prompt_path" in out:
        out["prompt_path"] = move(out["prompt_path"], "prompt_path")
    for key in SPEC_VIEW_FIELDS:
        view = out.get(key)
        if isinstance(view, Mapping):
            out[key] = {k: (move(v, f"{key}.{k}") if k in PATH_FIELDS else v) for k, v in view.items()}
    return out


def write_sidecar(data: Mapping[str, Any], path: Path) -> Path:
    """Write a ``<name>.json`` sample dump the way Cosmos does (one compact line), atomically."""
    atomic_write_text(Path(path), json.dumps(dict(data), separators=(",", ":"), ensure_ascii=False))
    return Path(path)


def _duplicates(names: Sequence[tuple[str, str]]) -> list[str]:
    """Messages for repeated sample names; ``names`` holds (name, where) pairs."""
    seen: dict[str, str] = {}
    problems = []
    for name, where in names:
        if name in seen:
            problems.append(
                f"{where}: sample name {name!r} already used at {seen[name]}; names must be unique "
                "(they are the output file names)"
            )
        else:
            seen[name] = where
    return problems


def write_spec(samples: Sequence[Mapping[str, Any] | MultiviewInferenceArguments], path: Path) -> Path:
    """Write ``samples`` as a Cosmos spec: ``.json`` for exactly one sample, ``.jsonl`` for one or more.

    Every sample is validated against the files relative to ``path``'s folder first, names must be
    unique; the file is written atomically. Returns ``path``.
    """
    path = Path(path)
    _check_suffix(path)
    if not samples:
        raise InferenceError(f"{path}: no samples to write")
    if path.suffix == ".json" and len(samples) != 1:
        raise InferenceError(
            f"{path}: a .json spec holds exactly one sample, got {len(samples)}; write a .jsonl (one per line)"
        )
    dicts: list[dict[str, Any]] = []
    problems: list[str] = []
    names: list[tuple[str, str]] = []
    for i, sample in enumerate(samples, start=1):
        data = sample.model_dump(mode="json") if isinstance(sample, MultiviewInferenceArguments) else dict(sample)
        where = f"{path} sample {i}"
        try:
            validate_sample(data, base_dir=path.parent, where=where)
            check_sample_name(data["name"])
        except InferenceError as e:
            problems.append(str(e))
            continue
        names.append((data["name"], where))
        dicts.append(data)
    problems += _duplicates(names)
    _raise(problems)
    if path.suffix == ".json":
        text = json.dumps(dicts[0], indent=4, ensure_ascii=False) + "\n"
    else:
        text = "".join(json.dumps(d, separators=(",", ":"), ensure_ascii=False) + "\n" for d in dicts)
    atomic_write_text(path, text)
    return path


def _read_records(path: Path) -> list[tuple[str, Any]]:
    """(where, parsed JSON) per sample of a spec file; InferenceError on unreadable JSON."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise InferenceError(f"{path}: spec file not found") from e
    except (OSError, UnicodeDecodeError) as e:
        raise InferenceError(f"{path}: cannot read the spec file: {e}") from e
    if path.suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise InferenceError(f"{path} line {e.lineno} column {e.colno}: invalid JSON: {e.msg}") from e
        if isinstance(data, list):
            raise InferenceError(
                f"{path}: a .json spec holds one sample object, got a list of {len(data)}; "
                "write one object per line to a .jsonl file instead"
            )
        return [(str(path), data)]
    records, problems = [], []
    lines = text.splitlines()
    if not lines:
        raise InferenceError(f"{path}: the spec file is empty; write one JSON sample object per line")
    for lineno, line in enumerate(lines, start=1):
        where = f"{path} line {lineno}"
        if not line.strip():
            problems.append(f"{where}: blank line (NVIDIA's loader crashes on it); remove it")
            continue
        try:
            records.append((where, json.loads(line)))
        except json.JSONDecodeError as e:
            problems.append(f"{where} column {e.colno}: invalid JSON: {e.msg} (one sample object per line)")
    _raise(problems)
    return records


def load_spec(path: Path) -> list[MultiviewInferenceArguments]:
    """Load a ``.json`` (one sample) or ``.jsonl`` (one per line) spec with NVIDIA's rules.

    Relative paths are taken from the spec file's folder; prompts are resolved; names must be
    unique. Raises InferenceError listing every problem with file, line (from 1), sample and field.
    """
    path = Path(path)
    _check_suffix(path)
    base_dir = path.parent.absolute()
    samples: list[MultiviewInferenceArguments] = []
    problems: list[str] = []
    for where, data in _read_records(path):
        try:
            samples.append(validate_sample(data, base_dir=base_dir, where=where))
        except InferenceError as e:
            problems.append(str(e))
    problems += _duplicates([(s.name, s.origin) for s in samples])
    _raise(problems)
    return samples
