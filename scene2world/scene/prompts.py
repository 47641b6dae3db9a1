"""Prompt variants and captions a dataset carries for its clips (Cosmos-Drive-Dreams layout).

Cosmos-Drive-Dreams ships, beside each RDS-HQ clip folder, ``prompts/<clip>.json`` (a JSON object
``{variant name: prompt text}``, e.g. "Original", "Golden hour", "Night") and
``captions/<clip>.txt`` (the clip's caption). Both are looked for in the clip's folder and in its
parent, so the dataset root (``prompts/``) and the clip folder (``clip/captions/``) both work;
``docs/cosmos.md`` describes how they become samples.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from scene2world.errors import SceneError

PROMPTS_DIR = "prompts"
CAPTIONS_DIR = "captions"


@dataclass(frozen=True)
class ClipText:
    """The text a dataset gives one clip: its caption and its prompt variants (in file order)."""

    caption: str | None = None
    variants: dict[str, str] = field(default_factory=dict)


def _candidates(folder: Path, sub: str, name: str) -> list[Path]:
    return [folder / sub / name, folder.parent / sub / name]


def read_variants(path: Path) -> dict[str, str]:
    """``{variant: text}`` from a ``prompts/<clip>.json``; SceneError naming the file and the fix."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise SceneError(f"{path}: cannot read the prompt variants: {e}") from e
    except json.JSONDecodeError as e:
        raise SceneError(f'{path} line {e.lineno}: invalid JSON ({e.msg}); write {{"variant": "prompt", ...}}') from e
    if not isinstance(data, dict) or not data:
        raise SceneError(f'{path}: expected a non-empty JSON object {{"variant name": "prompt text", ...}}')
    bad = [k for k, v in data.items() if not isinstance(v, str) or not v.strip() or not k.strip()]
    if bad:
        raise SceneError(f"{path}: variants {bad} need a non-empty name and prompt text (a string)")
    return {k: v.strip() for k, v in data.items()}


def find_clip_text(folder: Path, clip_id: str) -> ClipText:
    """The caption and prompt variants of ``clip_id`` whose data lies in ``folder`` (none when absent)."""
    folder = Path(folder)
    caption = None
    for path in _candidates(folder, CAPTIONS_DIR, f"{clip_id}.txt"):
        if path.is_file():
            try:
                caption = path.read_text(encoding="utf-8").strip() or None
            except (OSError, UnicodeDecodeError) as e:
                raise SceneError(f"{path}: cannot read the caption: {e}") from e
            break
    variants: dict[str, str] = {}
    for path in _candidates(folder, PROMPTS_DIR, f"{clip_id}.json"):
        if path.is_file():
            variants = read_variants(path)
            break
    return ClipText(caption, variants)
