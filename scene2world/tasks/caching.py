"""Prefect's task cache driven by scene2world's own step keys.

Prefect's default policy never hits across runs and its INPUTS policy hashes paths by name
(reference/prefect.md §3). Here a task's cache key is the step key the plain step function
uses for its output folder, so a hit in the Prefect UI and a hit in the CLI are the same
thing. A key whose output folder is missing or altered must not be served from Prefect's
record: :func:`call_step` asks for a refresh in that case.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect.cache_policies import CachePolicy

from scene2world import cache

KeyOf = Callable[[dict[str, Any]], "tuple[str, Path] | None"]
"""Maps a task's bound inputs to (step key, output folder), or None when unknowable up front."""


@dataclass
class StepKey(CachePolicy):
    """A cache policy whose key is the step key computed by ``key_of`` from the task's inputs."""

    key_of: KeyOf | None = None

    def compute_key(self, task_ctx: Any, inputs: dict[str, Any], flow_parameters: Any, **kwargs: Any) -> str | None:
        """The step key, or None (do not cache) when it cannot be known before running."""
        if self.key_of is None:
            return None
        try:
            found = self.key_of(inputs)
        except Exception:
            return None
        return None if found is None else found[0]


def output_is_valid(key_of: KeyOf, inputs: dict[str, Any]) -> bool:
    """True when the output folder for these inputs exists and matches its manifest."""
    try:
        found = key_of(inputs)
    except Exception:
        return False
    if found is None:
        return False
    key, out_dir = found
    return cache.lookup(out_dir, key) is not None


def call_step(task: Any, key_of: KeyOf, **inputs: Any) -> Any:
    """Run ``task`` with ``inputs``, refreshing Prefect's record when the cached output is gone.

    Returns the task's final state (so the flow can tell Cached from Completed).
    """
    refresh = True if not output_is_valid(key_of, inputs) else None
    return task.with_options(refresh_cache=refresh)(**inputs, return_state=True)
