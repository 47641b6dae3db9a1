"""RenderPool: real spawn processes rendering the bundled example with EGL (llvmpipe) and ffmpeg."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from scene2world.renderer.pool import RenderPool
from scene2world.scene.discover import discover_clips
from tests.conftest import EXAMPLE, process_alive

pytestmark = pytest.mark.timeout(180)

CAMERA = "camera_front_wide_120fov"


def test_stop_ends_a_running_camera_at_once_and_a_ctrl_c_to_the_workers_does_not(tmp_path):
    (clip,) = discover_clips(EXAMPLE)
    out = tmp_path / "out"
    frames: list[int] = []
    outcome: dict[str, BaseException | object] = {}
    pool = RenderPool(1)

    def render() -> None:
        try:
            outcome["result"] = pool.render(
                clip, CAMERA, out, {"msaa": 1, "preset": "ultrafast"}, lambda done, total: frames.append(done)
            )
        except BaseException as e:  # the worker's stop comes back as its exception
            outcome["error"] = e

    thread = threading.Thread(target=render)
    thread.start()
    deadline = time.monotonic() + 120
    while len(frames) < 3:
        assert thread.is_alive(), outcome
        assert time.monotonic() < deadline, "no frame rendered"
        time.sleep(0.05)
    (worker,) = sorted(pool._pids)

    # a terminal's Ctrl-C reaches the whole group: the render process goes on, the parent decides
    os.kill(worker, signal.SIGINT)
    seen = len(frames)
    while len(frames) < seen + 3:
        assert thread.is_alive() and process_alive(worker), f"SIGINT stopped the render process: {outcome}"
        assert time.monotonic() < deadline, "the render stalled after SIGINT"
        time.sleep(0.05)

    t0 = time.monotonic()
    pool.close(stop=True)
    thread.join(timeout=30)
    took = time.monotonic() - t0
    assert not thread.is_alive()
    assert "result" not in outcome, "the camera should have been stopped, not finished"
    assert "stopped by SIGTERM" in str(outcome["error"]) or type(outcome["error"]).__name__ == "Stopped", outcome
    assert took < 10, f"close(stop=True) took {took:.1f} s"
    assert not [p for p in tmp_path.rglob("*") if p.is_file()], "a stopped camera left files"
    assert not process_alive(worker)
