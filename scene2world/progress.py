"""Progress counters for long steps, without Prefect: camera-frames of a render, samples and
chunks of an inference (read from the engine's log lines).

The Prefect side (:mod:`scene2world.tasks.progress`) turns these into progress artifacts.
"""

from __future__ import annotations

import re
import threading


class CameraFrames:
    """Camera-frames done out of a known total, per (clip, camera); safe to update from threads.

    :meth:`camera` records how many frames of one camera are done (a later, smaller count is
    ignored), so reports from a running task and from its completion never add up twice.
    """

    def __init__(self, totals: dict[tuple[str, str], int]) -> None:
        self._totals = dict(totals)
        self._done: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    @property
    def total(self) -> int:
        """Camera-frames in all."""
        return sum(self._totals.values())

    @property
    def done(self) -> int:
        """Camera-frames finished so far."""
        with self._lock:
            return sum(self._done.values())

    def camera(self, clip_id: str, camera: str, frames_done: int) -> None:
        """``frames_done`` frames of ``camera`` of ``clip_id`` are finished."""
        key = (clip_id, camera)
        limit = self._totals.get(key, 0)
        with self._lock:
            self._done[key] = max(self._done.get(key, 0), min(int(frames_done), limit))

    def finished(self, clip_id: str, camera: str) -> None:
        """Every frame of ``camera`` of ``clip_id`` is done (rendered or reused)."""
        self.camera(clip_id, camera, self._totals.get((clip_id, camera), 0))

    def percent(self) -> float:
        """Done / total in percent (100 when there is nothing to do)."""
        total = self.total
        return 100.0 if total == 0 else 100.0 * self.done / total


_PLAN = re.compile(r": (?P<n>\d+) sample\(s\), engine ")
_SAMPLE = re.compile(r"^\s+(?P<name>\S+): \d+ view\(s\), .*?, (?P<chunks>\d+) chunk\(s\) ")
_CHUNK = re.compile(r"(?P<name>[^\s:]+) \S+: chunk (?P<i>\d+), source frames")
_WROTE = re.compile(r"(?:^|\s)(?P<name>[^\s:]+): wrote ")


class InferLog:
    """Samples and chunks of an inference, parsed from the lines ``inference.run`` emits: the plan
    summary (``N sample(s)``, one line per sample with its chunk count), the preview engine's
    ``<sample> <view>: chunk i`` (debug) and ``<sample>: wrote ...`` lines (torchrun may prefix
    lines with ``[rank]:``). Lines it does not know are ignored."""

    def __init__(self) -> None:
        self.samples_total = 0
        self.chunks: dict[str, int] = {}
        self.chunks_seen: dict[str, int] = {}
        self.samples_done: set[str] = set()

    def line(self, text: str) -> bool:
        """Take one log line; True when the counts changed."""
        if m := _PLAN.search(text):
            self.samples_total = int(m["n"])
            return True
        if m := _SAMPLE.match(text):
            self.chunks[m["name"]] = int(m["chunks"])
            return True
        if m := _CHUNK.search(text):
            seen = max(self.chunks_seen.get(m["name"], 0), int(m["i"]) + 1)
            changed = seen != self.chunks_seen.get(m["name"])
            self.chunks_seen[m["name"]] = seen
            return changed
        if (m := _WROTE.search(text)) and m["name"] in self.chunks and m["name"] not in self.samples_done:
            self.samples_done.add(m["name"])
            self.chunks_seen[m["name"]] = self.chunks[m["name"]]
            return True
        return False

    @property
    def chunks_total(self) -> int:
        """Chunks of every sample (from the plan)."""
        return sum(self.chunks.values())

    @property
    def chunks_done(self) -> int:
        """Chunks prepared so far (a finished sample counts all its chunks)."""
        return sum(min(v, self.chunks.get(k, v)) for k, v in self.chunks_seen.items())

    def percent(self) -> float:
        """Chunks done / total in percent (samples when no chunk count is known)."""
        if self.chunks_total:
            return 100.0 * self.chunks_done / self.chunks_total
        if self.samples_total:
            return 100.0 * len(self.samples_done) / self.samples_total
        return 0.0

    def describe(self) -> str:
        """``samples 1/3, chunks 4/6``."""
        return (
            f"samples {len(self.samples_done)}/{self.samples_total or len(self.chunks)}, "
            f"chunks {self.chunks_done}/{self.chunks_total}"
        )
