"""Progress artifacts in Prefect for the render (camera-frames) and the inference (samples, chunks).

The counting is plain Python (:mod:`scene2world.progress`); here the counts become a Prefect
progress artifact, updated at most every :data:`MIN_INTERVAL_S` so a fast render does not flood
the API. An artifact that cannot be written (no API) never stops the work.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from types import TracebackType
from typing import Any, cast
from uuid import UUID

from prefect.artifacts import create_progress_artifact, update_progress_artifact

from scene2world.progress import CameraFrames, InferLog

log = logging.getLogger(__name__)

MIN_INTERVAL_S = 1.0
"""Smallest time between two updates of one progress artifact."""

RENDER_KEY = "scene2world-render-progress"
INFER_KEY = "scene2world-infer-progress"

_RENDER: CameraFrames | None = None


def current_render() -> CameraFrames | None:
    """The camera-frame counter of the render running in this process (None on a Dask worker)."""
    return _RENDER


class _Artifact:
    """One progress artifact, created on first use and updated with throttling."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.artifact_id: UUID | None = None
        self._last = 0.0
        self._sent: float | None = None
        self._lock = threading.Lock()

    def update(self, percent: float, description: str, *, force: bool = False) -> None:
        now = time.monotonic()
        with self._lock:
            if not force and (now - self._last < MIN_INTERVAL_S or percent == self._sent):
                return
            self._last = now
            self._sent = percent
            try:
                if self.artifact_id is None:
                    created = create_progress_artifact(percent, key=self.key, description=description)
                    self.artifact_id = cast(UUID, created)
                else:
                    update_progress_artifact(self.artifact_id, percent, description=description)
            except Exception as e:  # progress must never break a run
                log.debug("progress artifact %s not updated: %s", self.key, e)


class RenderProgressArtifact:
    """Camera-frames done / total of a mapped render; the render tasks of this process report into
    it through :func:`current_render`, the flow calls :meth:`flush` while it waits."""

    def __init__(self, totals: dict[tuple[str, str], int]) -> None:
        self.frames = CameraFrames(totals)
        self._artifact = _Artifact(RENDER_KEY)

    def __enter__(self) -> RenderProgressArtifact:
        global _RENDER
        _RENDER = self.frames
        self.flush(force=True)
        return self

    def __exit__(self, *exc: Any) -> None:
        global _RENDER
        _RENDER = None
        self.flush(force=True)

    def flush(self, *, force: bool = False) -> None:
        """Send the current count (throttled unless ``force``)."""
        self._artifact.update(
            self.frames.percent(),
            f"render: {self.frames.done}/{self.frames.total} camera-frames",
            force=force,
        )


class InferProgressArtifact:
    """Samples and chunks of an inference, from the log lines it is given (:meth:`line`)."""

    def __init__(self) -> None:
        self.log = InferLog()
        self._artifact = _Artifact(INFER_KEY)

    def __enter__(self) -> InferProgressArtifact:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._artifact.artifact_id is not None:  # only for a run that got as far as its plan
            with contextlib.suppress(Exception):
                self._artifact.update(self.log.percent(), f"inference: {self.log.describe()}", force=True)

    def line(self, text: str) -> None:
        """Take one line of the engine's log."""
        if self.log.line(text):
            self._artifact.update(self.log.percent(), f"inference: {self.log.describe()}")
