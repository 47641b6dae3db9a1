"""Prefect's task cache driven by scene2world's own step keys.

Prefect's default policy never hits across runs and its INPUTS policy hashes paths by name
(docs/caching.md). Here a task's cache key is the step key the plain step function uses for
its output folder, *together with that folder's absolute path*: Prefect's records hold
absolute manifest paths and every data root shares one ``PREFECT_HOME``, so a record made
for another data root (or another ``runs_dir``) must never be served. A key whose output
folder is missing or altered must not be served from Prefect's record either:
:func:`call_step` asks for a refresh in that case, and a record whose result points at a
folder other than this run's is refused and re-run.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect.cache_policies import CachePolicy
from prefect.states import State

from scene2world import cache
from scene2world.locks import output_lock
from scene2world.manifest import sha256_json

KeyOf = Callable[[dict[str, Any]], "tuple[str, Path] | None"]
"""Maps a task's bound inputs to (step key, output folder), or None when unknowable up front."""


def record_key(step_key: str, out_dir: Path) -> str:
    """Prefect's cache key for a step key whose output lives in ``out_dir`` (absolute path)."""
    return sha256_json({"step_key": step_key, "out_dir": os.path.abspath(out_dir)})


@dataclass
class StepKey(CachePolicy):
    """A cache policy keyed by the step key that ``key_of`` computes and the output folder it names."""

    key_of: KeyOf | None = None

    def compute_key(self, task_ctx: Any, inputs: dict[str, Any], flow_parameters: Any, **kwargs: Any) -> str | None:
        """The record key, or None (do not cache) when it cannot be known before running."""
        if self.key_of is None:
            return None
        try:
            found = self.key_of(inputs)
        except Exception:
            return None
        return None if found is None else record_key(*found)


def _expected(key_of: KeyOf, inputs: dict[str, Any]) -> tuple[str, Path] | None:
    try:
        return key_of(inputs)
    except Exception:
        return None


def output_is_valid(key_of: KeyOf, inputs: dict[str, Any]) -> bool:
    """True when the output folder for these inputs exists and matches its manifest."""
    return _is_valid(_expected(key_of, inputs))


def _is_valid(found: tuple[str, Path] | None) -> bool:
    if found is None:
        return False
    key, out_dir = found
    return cache.lookup(out_dir, key) is not None


def _serves_elsewhere(state: Any, found: tuple[str, Path] | None) -> bool:
    """True when a Cached state's result names a manifest outside this run's output folder."""
    if found is None or getattr(state, "name", None) != "Cached":
        return False
    try:
        result = state.result()
        manifest = Path(result["manifest"]).absolute()
    except Exception:
        return True
    return manifest.parent != Path(found[1]).absolute() or not manifest.is_file()


def call_step(task: Any, key_of: KeyOf, **inputs: Any) -> State[Any]:
    """Run ``task`` with ``inputs``, refreshing Prefect's record when it cannot be trusted.

    A refresh is asked for when the output folder is missing or altered, and when a cached
    record names another folder than this run's (a record written by an older scene2world).
    The whole call holds the output folder's lock (:mod:`scene2world.locks`): a second run
    needing the same output waits for the first, then hits. Returns the task's final state
    (so the flow can tell Cached from Completed).
    """
    found = _expected(key_of, inputs)
    lock = output_lock(found[1], on_wait=_say_waiting) if found is not None else contextlib.nullcontext()
    with lock:  # a concurrent run building the same output finishes first; this one then hits
        refresh = True if not _is_valid(found) else None  # the key computed once (it reads the upstream manifests)
        state = task.with_options(refresh_cache=refresh)(**inputs, return_state=True)
        if _serves_elsewhere(state, found):
            state = task.with_options(refresh_cache=True)(**inputs, return_state=True)
    return state


def _say_waiting(lock: Path) -> None:
    logging.getLogger(__name__).info("another run is building this output; waiting for it (%s)", lock)
