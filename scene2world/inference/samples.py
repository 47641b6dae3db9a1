"""Samples of an inference run: one per clip x prompt variant x seed, each with its own cache key.

Where the prompt variants come from (``docs/cosmos.md``, "Prompt variants"):

1. ``infer.prompts: {name: text}`` when set (it overrides the dataset);
2. else the variants the dataset carries for the clip (``prompts/<clip>.json``);
3. else one variant ``default`` holding ``infer.prompt``.

``{caption}`` in a text is replaced by the clip's caption (``captions/<clip>.txt``). Seeds are
``infer.seeds`` or ``[infer.seed]``. A sample is named ``<clip>.<variant>.<seed>``, with every
character Cosmos cannot take in a file name replaced by ``_`` (``Golden hour`` → ``Golden_hour``).

A sample's key covers what shapes its output and nothing else: the name (Cosmos writes
``<name>.mp4``), the spec fields (prompt text, seed, fps, chunks, ...), the engine and its model
settings, and the sha256 of each view's control video. Rank count, backend, timeouts and paths are
not in it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from scene2world import cache
from scene2world.config import InferConfig
from scene2world.errors import InferenceError

SAMPLE_STEP = "infer-sample"
SAMPLE_VERSION = "1"
DEFAULT_VARIANT = "default"
CAPTION_FIELD = "{caption}"

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def name_token(text: str) -> str:
    """``text`` as one part of a sample name: letters, digits, ``_`` and ``-`` (others become ``_``)."""
    token = _UNSAFE.sub("_", text.strip())
    return token.lstrip("-") or "_"


def sample_name(clip_id: str, variant: str, seed: int) -> str:
    """``<clip>.<variant>.<seed>`` with unsafe characters replaced (the clip id keeps its dots)."""
    clip = re.sub(r"[^A-Za-z0-9_.-]", "_", clip_id).lstrip(".-") or "_"
    return f"{clip}.{name_token(variant)}.{seed}"


@dataclass(frozen=True)
class SampleRequest:
    """One sample to produce: which clip, which prompt, which seed, and its controls' content."""

    name: str
    clip_id: str
    variant: str
    variant_label: str
    seed: int
    prompt: str
    prompt_source: str
    controls: Mapping[str, str]
    """camera → control video path relative to the render output (``<clip>/<clip>.<camera>.mp4``)."""
    control_sha256: Mapping[str, str]
    """camera → sha256 of its control video."""

    def data(self) -> dict[str, Any]:
        """The manifest entry's fixed part."""
        return {
            "clip_id": self.clip_id,
            "variant": self.variant,
            "variant_label": self.variant_label,
            "seed": self.seed,
            "prompt": self.prompt,
            "prompt_source": self.prompt_source,
        }


def engine_settings(cfg: InferConfig) -> dict[str, Any]:
    """The engine settings that shape a sample's pixels (not where the checkout lies, nor how it launches)."""
    cosmos = cfg.cosmos.model_dump(mode="json", include={"checkpoint_path", "experiment", "disable_guardrails"})
    return {"engine": cfg.engine, **({"cosmos": cosmos} if cfg.engine == "cosmos" else {})}


def spec_settings(cfg: InferConfig) -> dict[str, Any]:
    """The spec fields every sample shares (all but name, prompt, seed and the views)."""
    return cfg.model_dump(
        mode="json",
        include={
            "negative_prompt",
            "guidance",
            "num_conditional_frames",
            "control_weight",
            "fps",
            "num_steps",
            "enable_autoregressive",
            "num_chunks",
            "chunk_overlap",
            "save_combined_views",
        },
    )


def sample_key(cfg: InferConfig, request: SampleRequest) -> str:
    """The cache key of one sample (see the module docstring)."""
    return cache.step_key(
        SAMPLE_STEP,
        SAMPLE_VERSION,
        name=request.name,
        prompt=request.prompt,
        seed=request.seed,
        spec=spec_settings(cfg),
        engine=engine_settings(cfg),
        controls=dict(sorted(request.control_sha256.items())),
    )


def _fill_caption(text: str, caption: str | None, clip_id: str, where: str) -> str:
    if CAPTION_FIELD not in text:
        return text
    if caption is None:
        raise InferenceError(
            f"{where} uses {CAPTION_FIELD} but clip {clip_id!r} has no caption (captions/{clip_id}.txt); "
            f"add the caption file or remove {CAPTION_FIELD} from the prompt"
        )
    return text.replace(CAPTION_FIELD, caption)


def variants_for(
    cfg: InferConfig, clip_id: str, dataset_variants: Mapping[str, str] | None, caption: str | None
) -> list[tuple[str, str, str]]:
    """(label, prompt text, source) per variant of a clip, by the precedence of the module docstring."""
    if cfg.prompts:
        return [
            (label, _fill_caption(text, caption, clip_id, f"`infer.prompts.{label}`"), "config")
            for label, text in cfg.prompts.items()
        ]
    if dataset_variants:
        return [
            (label, _fill_caption(text, caption, clip_id, f"prompts/{clip_id}.json `{label}`"), "dataset")
            for label, text in dataset_variants.items()
        ]
    return [(DEFAULT_VARIANT, _fill_caption(cfg.prompt, caption, clip_id, "`infer.prompt`"), "config")]


def build_requests(
    cfg: InferConfig,
    clips: Mapping[str, Mapping[str, Any]],
    control_sha256: Mapping[str, str],
    clip_text: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[SampleRequest]:
    """Every sample of a run, sorted by name.

    Args:
        cfg: the inference settings (prompt, prompts, seed, seeds, ...).
        clips: the render manifest's ``data["clips"]`` (clip id → {"cameras": {camera: rel path}, ...}).
        control_sha256: render-relative path → sha256 (from the render manifest's file records).
        clip_text: clip id → {"caption": str | None, "prompts": {variant: text} | None} from the dataset.

    Raises InferenceError when two samples would get the same name or a control video is unrecorded.
    """
    requests: dict[str, SampleRequest] = {}
    for clip_id, clip in sorted(clips.items()):
        text = (clip_text or {}).get(clip_id) or {}
        cameras = dict(clip["cameras"])
        missing = [rel for rel in cameras.values() if rel not in control_sha256]
        if missing:
            raise InferenceError(
                f"render manifest: clip {clip_id!r}: {missing} not among its recorded files; re-run the render step"
            )
        shas = {cam: control_sha256[rel] for cam, rel in cameras.items()}
        for label, prompt, source in variants_for(cfg, clip_id, text.get("prompts"), text.get("caption")):
            for seed in cfg.seed_list():
                name = sample_name(clip_id, label, seed)
                if name in requests:
                    other = requests[name]
                    raise InferenceError(
                        f"clip {clip_id!r}: variants {other.variant_label!r} and {label!r} both give the sample name "
                        f"{name!r}; rename one of them (names keep letters, digits, `_` and `-`)"
                    )
                requests[name] = SampleRequest(
                    name=name,
                    clip_id=clip_id,
                    variant=name_token(label),
                    variant_label=label,
                    seed=seed,
                    prompt=prompt,
                    prompt_source=source,
                    controls=cameras,
                    control_sha256=shas,
                )
    return [requests[n] for n in sorted(requests)]
